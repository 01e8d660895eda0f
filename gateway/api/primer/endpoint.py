"""What every endpoint of Primer's API does before its own work.

`merchant_endpoint(scope=...)` wraps a handler: X-API-KEY (401 unless a live merchant key),
the scope (403), X-API-VERSION (400 unless absent or 2.4), X-Idempotency-Key (400 unless 1-255
visible ASCII). The handler receives a `MerchantCall` that decodes the body with msgspec (422
`RequestValidationError` on anything malformed) and runs money-moving work under the
idempotency guard.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

import msgspec
import structlog
from starlette.requests import Request
from starlette.responses import Response

from gateway import accounts
from gateway.http.auth import authenticate, one_header
from gateway.http.errors import (
    Forbidden,
    Unauthorized,
    UnsupportedApiVersion,
)
from gateway.http.idempotency import Claim, IdempotencyScope, fingerprint, validate_key
from gateway.http.merchant import MerchantRequest
from gateway.services import Services
from workflows import tracing

SUPPORTED_API_VERSIONS = ("2.4",)
# Primer: a request without X-API-VERSION is served by the earliest supported version.
DEFAULT_API_VERSION = SUPPORTED_API_VERSIONS[0]

T = TypeVar("T")
_canonical = msgspec.json.Encoder(order="sorted")


def api_version(request: Request) -> str:
    version = request.headers.get("x-api-version")
    if version is None:
        return DEFAULT_API_VERSION
    if version not in SUPPORTED_API_VERSIONS:
        raise UnsupportedApiVersion(
            f"API version {version!r} is not supported. "
            f"Supported versions: {', '.join(SUPPORTED_API_VERSIONS)}."
        )
    return version


@dataclass(kw_only=True)
class MerchantCall(MerchantRequest):
    api_version: str

    async def once(
        self,
        operation: str,
        command: object,
        work: Callable[[Claim], Awaitable[Response]],
        *,
        target: str = "",
        durable: bool = True,
    ) -> Response:
        """Run `work` at most once per idempotency key (just once, if the request has none).

        `durable=False` when `work` keeps the durable record of the key itself (payments: the
        workflow engine's one run per key, with the claim's fingerprint).
        """
        if self.idempotency_key is None:
            return await work(Claim())
        scope = IdempotencyScope(self.merchant_id, operation, target)
        body_fp = fingerprint(scope, _canonical.encode(command))
        hold = self.services.idempotency.hold(scope, self.idempotency_key, body_fp, durable=durable)
        async with hold as claim:
            return await work(claim)


Handler = Callable[[MerchantCall], Awaitable[Response]]


def merchant_endpoint(scope: str) -> Callable[[Handler], Callable[[Request], Awaitable[Response]]]:
    if scope not in accounts.SCOPES:
        raise ValueError(f"unknown scope {scope!r}")

    def wrap(handler: Handler) -> Callable[[Request], Awaitable[Response]]:
        @functools.wraps(handler)
        async def endpoint(request: Request) -> Response:
            services: Services = request.app.state.services
            for name in ("x-api-key", "x-idempotency-key", "x-api-version"):
                one_header(request, name)
            principal = await authenticate(request, services)
            if principal.kind != "merchant":
                raise Unauthorized("Operator keys are not valid on merchant endpoints.")
            structlog.contextvars.bind_contextvars(merchant_id=principal.merchant_id)
            tracing.annotate(merchant_id=principal.merchant_id)
            if scope not in principal.scopes:
                raise Forbidden(f"This API key lacks the scope {scope!r}.")
            call = MerchantCall(
                request=request,
                principal=principal,
                services=services,
                api_version=api_version(request),
                idempotency_key=validate_key(request.headers.get("x-idempotency-key")),
            )
            return await handler(call)

        return endpoint

    return wrap
