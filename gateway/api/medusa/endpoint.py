"""A Medusa admin call: its API token (a gateway merchant key), its scope, its Idempotency-Key."""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from typing import TypeVar

import structlog
from starlette.requests import Request
from starlette.responses import Response

from gateway.api.medusa.errors import INVALID_DATA, NOT_ALLOWED, UNAUTHORIZED, MedusaError
from gateway.http.auth import authenticate, one_header
from gateway.http.errors import InvalidIdempotencyKey
from gateway.http.idempotency import validate_key
from gateway.http.merchant import MerchantRequest
from gateway.services import Services
from workflows import tracing

T = TypeVar("T")


class MedusaCall(MerchantRequest):
    """A Medusa admin call: its idempotency key is Medusa's `Idempotency-Key` header."""


def _token(request: Request) -> str | None:
    """The API token as Medusa's clients send it: `x-medusa-access-token`, or a bearer token."""
    token = one_header(request, "x-medusa-access-token")
    if token:
        return token
    authorization = one_header(request, "authorization") or ""
    scheme, _, credentials = authorization.partition(" ")
    if scheme.lower() != "bearer":
        return None
    return credentials.strip() or None


def _idempotency_key(request: Request) -> str | None:
    try:
        return validate_key(request.headers.get("idempotency-key"))
    except InvalidIdempotencyKey:
        raise MedusaError(
            400, INVALID_DATA, "The Idempotency-Key header must be 1-255 visible ASCII characters"
        ) from None


Handler = Callable[[MedusaCall], Awaitable[Response]]


def medusa_endpoint(scope: str) -> Callable[[Handler], Callable[[Request], Awaitable[Response]]]:
    def wrap(handler: Handler) -> Callable[[Request], Awaitable[Response]]:
        @functools.wraps(handler)
        async def endpoint(request: Request) -> Response:
            services: Services = request.app.state.services
            one_header(request, "idempotency-key")
            principal = await authenticate(
                request, services, _token(request), header="x-medusa-access-token"
            )
            if principal.kind != "merchant":
                raise MedusaError(401, UNAUTHORIZED, "Operator keys cannot call the admin API")
            structlog.contextvars.bind_contextvars(merchant_id=principal.merchant_id)
            tracing.annotate(merchant_id=principal.merchant_id)
            if scope not in principal.scopes:
                raise MedusaError(400, NOT_ALLOWED, f"This API token lacks the scope {scope!r}")
            call = MedusaCall(
                request=request,
                principal=principal,
                services=services,
                idempotency_key=_idempotency_key(request),
            )
            return await handler(call)

        return endpoint

    return wrap
