"""What every operator endpoint does before its own work: an operator key, or 401."""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable

import structlog
from starlette.requests import Request
from starlette.responses import Response

from gateway import accounts
from gateway.http.auth import authenticate
from gateway.http.errors import Unauthorized

OperatorHandler = Callable[[Request, accounts.Principal], Awaitable[Response]]


def operator_endpoint(handler: OperatorHandler) -> Callable[[Request], Awaitable[Response]]:
    @functools.wraps(handler)
    async def endpoint(request: Request) -> Response:
        principal = await authenticate(request, request.app.state.services)
        if principal.kind != "operator":
            raise Unauthorized("Merchant keys are not valid on operator endpoints.")
        structlog.contextvars.bind_contextvars(operator_key_id=principal.key_id)
        return await handler(request, principal)

    return endpoint
