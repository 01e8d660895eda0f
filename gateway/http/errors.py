"""The errors every API surface can answer (authentication, idempotency, validation, limits),
one class per condition, and the error envelope the gateway's JSON APIs share.

A class's docstring is its default description. Each surface renders them with its own handlers
(`gateway/api/*/__init__.py`) and adds the errors of its own domain (`api/primer/errors.py`).
"""

from __future__ import annotations

from typing import Any, ClassVar

import msgspec

from gateway import GatewayError


class FieldError(msgspec.Struct, frozen=True):
    path: str
    description: str


class ModelErrors(msgspec.Struct, frozen=True):
    model: str
    errors: list[FieldError]


class ErrorObject(msgspec.Struct, frozen=True, omit_defaults=True, kw_only=True):
    errorId: str
    description: str
    diagnosticsId: str
    validationErrors: list[ModelErrors] = []
    recoverySuggestion: str | None = None
    paymentId: str | None = None
    paymentStatus: str | None = None


class ErrorEnvelope(msgspec.Struct, frozen=True):
    error: ErrorObject


_encoder = msgspec.json.Encoder()


class ApiError(GatewayError):
    """The request could not be completed."""

    status: ClassVar[int] = 400
    error_id: ClassVar[str] = "BadRequest"
    recovery: ClassVar[str | None] = None

    def __init__(
        self,
        description: str | None = None,
        *,
        validation_errors: list[ModelErrors] | None = None,
        payment_id: str | None = None,
        payment_status: str | None = None,
        headers: dict[str, str] | None = None,
        status: int | None = None,
    ) -> None:
        if status is not None:
            self.status = status  # type: ignore[misc]  # an HTTP error raised by Starlette itself
        self.description = description or (self.__doc__ or "").strip()
        super().__init__(self.description)
        self.validation_errors = validation_errors or []
        self.payment_id = payment_id
        self.payment_status = payment_status
        self.headers = headers or {}

    def body(self, diagnostics_id: str) -> bytes:
        return _encoder.encode(
            ErrorEnvelope(
                ErrorObject(
                    errorId=self.error_id,
                    description=self.description,
                    diagnosticsId=diagnostics_id,
                    validationErrors=self.validation_errors,
                    recoverySuggestion=self.recovery,
                    paymentId=self.payment_id,
                    paymentStatus=self.payment_status,
                )
            )
        )


class Unauthorized(ApiError):
    """The X-API-KEY header is missing, unknown or revoked."""

    status = 401
    error_id = "Unauthorized"
    recovery = "Send a valid API key in the X-API-KEY header."


class TooManyFailedAuthentications(ApiError):
    """Too many requests from this address failed authentication; wait before trying again."""

    status = 429
    error_id = "TooManyRequests"
    recovery = "Retry after the number of seconds in the Retry-After header, with a valid key."


class TooManyRequests(ApiError):
    """This API key has made too many requests this minute; wait before trying again."""

    status = 429
    error_id = "TooManyRequests"
    recovery = "Retry after the number of seconds in the Retry-After header."


class Forbidden(ApiError):
    """This API key may not call this endpoint."""

    status = 403
    error_id = "Forbidden"
    recovery = "Use a key with the scope this endpoint needs."


class UnsupportedApiVersion(ApiError):
    """This API version is not supported. Supported versions: 2.4."""

    status = 400
    error_id = "UnsupportedApiVersion"
    recovery = "Send X-API-VERSION: 2.4, or leave the header out."


class DuplicateHeader(ApiError):
    """A header that names one thing was sent more than once."""

    status = 400
    error_id = "DuplicateHeader"


class InvalidIdempotencyKey(ApiError):
    """X-Idempotency-Key must be 1 to 255 visible ASCII characters."""

    status = 400
    error_id = "InvalidIdempotencyKey"


class RequestValidationError(ApiError):
    """We were unable to validate your request, please check your payload against the API spec."""

    status = 422
    error_id = "RequestValidationError"


class PayloadTooLarge(ApiError):
    """The request body is larger than the gateway accepts."""

    status = 413
    error_id = "PayloadTooLarge"


class RouteNotFound(ApiError):
    """No such endpoint."""

    status = 404
    error_id = "NotFound"


class MethodNotAllowed(ApiError):
    """This endpoint does not accept this HTTP method."""

    status = 405
    error_id = "MethodNotAllowed"


class IdempotencyKeyAlreadyExists(ApiError):
    """A request with this idempotency key was already processed."""

    status = 409
    error_id = "IdempotencyKeyAlreadyExists"
    recovery = "Use a new idempotency key for a new request; fetch the payment for its state."


class IdempotencyKeyInProgress(ApiError):
    """A request with this idempotency key is still being processed."""

    status = 409
    error_id = "IdempotencyKeyInProgress"
    recovery = "Retry after the number of seconds in the Retry-After header."


class IdempotencyKeyReused(ApiError):
    """This idempotency key was already used with a different request body."""

    status = 422
    error_id = "IdempotencyKeyReused"
    recovery = "Use a new idempotency key for a different request."


class ServiceUnavailable(ApiError):
    """The gateway cannot reach its database right now."""

    status = 503
    error_id = "ServiceUnavailable"
    recovery = "Retry later with the same idempotency key."

    def __init__(self, description: str | None = None, **kwargs: Any) -> None:
        kwargs.setdefault("headers", {"Retry-After": "2"})
        super().__init__(description, **kwargs)


class InternalError(ApiError):
    """An unexpected error occurred. Quote the diagnosticsId when reporting it."""

    status = 500
    error_id = "InternalServerError"


def validation_error(model: str, message: str) -> RequestValidationError:
    """Turn a msgspec decode/validation message into Primer's validationErrors shape."""
    text, _, path = message.rpartition(" - at `")
    if not text:
        text, path = message, "$"
    return RequestValidationError(
        validation_errors=[ModelErrors(model, [FieldError(path.rstrip("`") or "$", text)])]
    )
