"""Medusa's error shape, `{"type", "message", "code"?}`, with Medusa's statuses: the edge's errors
and the payment domain's refusals as Medusa's admin API answers them (never Primer's envelope)."""

from __future__ import annotations

import msgspec

from gateway.http.errors import ApiError
from workflows import errors as domain

NOT_FOUND, INVALID_DATA, NOT_ALLOWED = "not_found", "invalid_data", "not_allowed"
UNAUTHORIZED, DUPLICATE, CONFLICT, UNEXPECTED = (
    "unauthorized",
    "duplicate_error",
    "conflict",
    "unexpected_state",
)


class ErrorBody(msgspec.Struct, frozen=True, omit_defaults=True):
    """An error as Medusa's admin API answers it."""

    type: str
    message: str
    code: str | None = None


_encode = msgspec.json.Encoder().encode

# The edge's errors (by errorId) -> Medusa's status, type and code.
_EDGE: dict[str, tuple[int, str, str | None]] = {
    "Unauthorized": (401, UNAUTHORIZED, None),
    # Medusa has no scopes: a key that may not do this is "not allowed" to.
    "Forbidden": (400, NOT_ALLOWED, None),
    "TooManyRequests": (429, NOT_ALLOWED, None),
    "DuplicateHeader": (400, INVALID_DATA, None),
    "InvalidIdempotencyKey": (400, INVALID_DATA, None),
    "RequestValidationError": (400, INVALID_DATA, None),
    "PayloadTooLarge": (413, INVALID_DATA, None),
    "NotFound": (404, NOT_FOUND, None),
    "PaymentNotFound": (404, NOT_FOUND, None),
    "MethodNotAllowed": (405, NOT_ALLOWED, None),
    # A repeat while the first request is in flight: Medusa's client retries a 409.
    "IdempotencyKeyInProgress": (409, CONFLICT, "invalid_state_error"),
    "IdempotencyKeyAlreadyExists": (409, CONFLICT, "invalid_state_error"),
    # The key with another body or payment: refused, and not retried by the client.
    "IdempotencyKeyReused": (422, DUPLICATE, None),
    "ServiceUnavailable": (503, UNEXPECTED, "service_unavailable"),
    "ProcessorUnavailable": (503, UNEXPECTED, "processor_unavailable"),
    "InternalServerError": (500, "unknown_error", "unknown_error"),
}


class MedusaError(ApiError):
    """A refusal in Medusa's own words."""

    error_id = "MedusaError"

    def __init__(self, status: int, kind: str, message: str, code: str | None = None) -> None:
        super().__init__(message, status=status)
        self.kind, self.code = kind, code


def shape(error: ApiError, diagnostics_id: str) -> tuple[int, bytes]:
    """An error in Medusa's shape (the request id is in the X-Request-Id header)."""
    if isinstance(error, MedusaError):
        return error.status, _encode(ErrorBody(error.kind, error.description, error.code))
    status, kind, code = _EDGE.get(error.error_id, (error.status, "unknown_error", None))
    message = error.description
    if error.validation_errors:
        message = "; ".join(
            f"{field.description} (at {field.path})"
            for model in error.validation_errors
            for field in model.errors
        )
    if kind == "unknown_error":
        message = "An unknown error occurred."  # never internals
    return status, _encode(ErrorBody(kind, message, code))


# The payment domain's refusals on this surface.
_DOMAIN: dict[type[domain.PaymentError], tuple[int, str]] = {
    domain.PaymentNotFound: (404, NOT_FOUND),
    domain.InvalidPaymentStatus: (400, NOT_ALLOWED),
    domain.PaymentAlreadyAuthorized: (400, NOT_ALLOWED),
    domain.MerchantAccountNotFound: (400, INVALID_DATA),
    domain.MerchantAccountConflict: (400, INVALID_DATA),
    domain.UnprocessableCaptureAmount: (400, NOT_ALLOWED),
    domain.UnprocessableRefundAmount: (400, INVALID_DATA),
    domain.PaymentAlreadyRefunded: (400, INVALID_DATA),
    domain.IdempotencyKeyReused: (422, DUPLICATE),
    domain.ProcessorUnavailable: (503, UNEXPECTED),
}


def from_domain(error: domain.PaymentError) -> ApiError:
    if isinstance(error, domain.PaymentNotFound):
        return MedusaError(404, NOT_FOUND, "Payment was not found")
    if isinstance(error, domain.RunAlreadyExists):
        return MedusaError(
            409, CONFLICT, "This request is already being processed", "invalid_state_error"
        )
    found = _DOMAIN.get(type(error))
    if found is None:
        return MedusaError(500, "unknown_error", "An unknown error occurred.", "unknown_error")
    return MedusaError(*found, str(error) or (type(error).__doc__ or "").strip())
