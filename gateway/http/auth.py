"""Who is calling: the X-API-KEY header, checked against the hashed keys (any surface)."""

from __future__ import annotations

from starlette.requests import Request

from gateway import accounts
from gateway.http.errors import Unauthorized
from gateway.services import Services


async def authenticate(request: Request, services: Services) -> accounts.Principal:
    """The key's principal; 401 when the header is missing or the key unknown or revoked (a
    database that cannot be reached is the surface's 503, via StorageUnavailable)."""
    presented = request.headers.get("x-api-key")
    if not presented:
        raise Unauthorized("The X-API-KEY header is missing.")
    async with services.engine.db.connection() as conn:
        principal = await accounts.authenticate(conn, presented)
    if principal is None:
        raise Unauthorized()
    return principal
