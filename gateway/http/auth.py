"""Who is calling: the X-API-KEY header, checked against the hashed keys (any surface)."""

from __future__ import annotations

from starlette.requests import Request

from gateway import accounts
from gateway.http.errors import (
    DuplicateHeader,
    TooManyFailedAuthentications,
    TooManyRequests,
    Unauthorized,
)
from gateway.services import Services


def one_header(request: Request, name: str) -> str | None:
    """A header that must be sent at most once: two of them (even equal) are refused, since
    proxies and clients disagree on which one wins."""
    values = request.headers.getlist(name)
    if len(values) > 1:
        raise DuplicateHeader(f"The {name} header was sent {len(values)} times; send it once.")
    return values[0] if values else None


async def authenticate(
    request: Request, services: Services, presented: str | None = None, *, header: str = ""
) -> accounts.Principal:
    """The key's principal; 401 when the header is missing or the key unknown or revoked, 429
    past the throttle's limits (a database that cannot be reached is the surface's 503, via
    StorageUnavailable). `presented`: a key a surface read from its own header (`header`, for
    the message); else the X-API-KEY header."""
    if not header:
        presented, header = one_header(request, "x-api-key"), "X-API-KEY"
    if not presented:
        raise Unauthorized(f"The {header} header is missing.")
    address = request.client.host if request.client else "unknown"
    parsed = accounts.parse_key(presented)
    if parsed is None:  # malformed: known bad without a lookup
        await services.auth_throttle.failed(address)
        raise Unauthorized()
    admission = await services.auth_throttle.admit(address, parsed[1])
    if admission.retry_after is not None:
        retry = {"Retry-After": str(admission.retry_after)}
        if admission.by_address:
            raise TooManyFailedAuthentications(headers=retry)
        raise TooManyRequests(headers=retry)
    key_id = parsed[1]
    stored = services.keys.get(key_id)
    generation = services.keys.generation()
    if stored is None or admission.first_of_minute:
        # (Once a minute a kept key is read again too: its connection is open for `touch`.)
        async with services.engine.db.connection() as conn:
            stored = await accounts.find_key(conn, key_id)
            principal = accounts.check(stored, presented)
            if principal is not None and admission.first_of_minute:
                await accounts.touch(conn, principal.key_id)
        if principal is not None and stored is not None:
            services.keys.put(stored, generation)
    else:
        principal = accounts.check(stored, presented)
    if principal is None:
        await services.auth_throttle.failed(address)
        raise Unauthorized()
    return principal
