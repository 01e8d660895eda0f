"""Who is calling: the X-API-KEY header, checked against the hashed keys (any surface)."""

from __future__ import annotations

from starlette.requests import Request

from gateway import accounts
from gateway.http.errors import DuplicateHeader, TooManyFailedAuthentications, Unauthorized
from gateway.services import Services


def one_header(request: Request, name: str) -> str | None:
    """A header that must be sent at most once: two of them (even equal) are refused, since
    proxies and clients disagree on which one wins."""
    values = request.headers.getlist(name)
    if len(values) > 1:
        raise DuplicateHeader(f"The {name} header was sent {len(values)} times; send it once.")
    return values[0] if values else None


async def authenticate(request: Request, services: Services) -> accounts.Principal:
    """The key's principal; 401 when the header is missing or the key unknown or revoked (a
    database that cannot be reached is the surface's 503, via StorageUnavailable)."""
    presented = one_header(request, "x-api-key")
    if not presented:
        raise Unauthorized("The X-API-KEY header is missing.")
    address = request.client.host if request.client else "unknown"
    wait = await services.auth_throttle.retry_after(address)
    if wait is not None:
        raise TooManyFailedAuthentications(headers={"Retry-After": str(wait)})
    async with services.engine.db.connection() as conn:
        principal = await accounts.authenticate(conn, presented)
    if principal is None:
        await services.auth_throttle.failed(address)
        raise Unauthorized()
    return principal
