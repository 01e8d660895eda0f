"""Every error the edge answers, as one class per condition, and Primer's error envelope.

A class's docstring is its default description. Handlers are chosen by class in `app`.
"""

from __future__ import annotations

from typing import ClassVar

import msgspec

from workflows import errors as domain


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


class ApiError(Exception):
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


class PaymentNotFound(ApiError):
    """The payment could not be found."""

    status = 404
    error_id = "PaymentNotFound"


class InvalidPaymentStatus(ApiError):
    """The payment's status does not allow this operation."""

    status = 400
    error_id = "InvalidPaymentStatus"


class UnprocessableCaptureAmount(ApiError):
    """The capture amount is more than what is left to capture."""

    status = 422
    error_id = "UnprocessableCaptureAmount"


class UnprocessableRefundAmount(ApiError):
    """The refund amount is more than what is left to refund."""

    status = 422
    error_id = "UnprocessableRefundAmount"


class PaymentAlreadyRefunded(ApiError):
    """Nothing is left to refund on this payment."""

    status = 409
    error_id = "PaymentAlreadyRefunded"


class PaymentMethodTokenNotFound(ApiError):
    """The payment method token is unknown."""

    status = 400
    error_id = "PaymentMethodTokenNotFound"


class TransactionEventNotFound(ApiError):
    """The transactionEventId does not name a capture of this payment."""

    status = 400
    error_id = "TransactionEventNotFound"


_DOMAIN: dict[type[domain.PaymentError], type[ApiError]] = {
    domain.PaymentNotFound: PaymentNotFound,
    domain.InvalidPaymentStatus: InvalidPaymentStatus,
    domain.UnprocessableCaptureAmount: UnprocessableCaptureAmount,
    domain.UnprocessableRefundAmount: UnprocessableRefundAmount,
    domain.PaymentAlreadyRefunded: PaymentAlreadyRefunded,
    domain.PaymentMethodTokenNotFound: PaymentMethodTokenNotFound,
    domain.TransactionEventNotFound: TransactionEventNotFound,
    domain.IdempotencyKeyReused: IdempotencyKeyReused,
}


def from_payment_error(error: domain.PaymentError) -> ApiError:
    """The HTTP answer to a refusal of the payment domain."""
    if isinstance(error, domain.RunAlreadyExists):
        if error.finished:
            return IdempotencyKeyAlreadyExists(
                payment_id=error.payment_id, payment_status=error.payment_status
            )
        return IdempotencyKeyInProgress(headers={"Retry-After": "1"})
    if isinstance(error, domain.PaymentNotFound):
        return PaymentNotFound()  # never a hint about whose payment it might be
    answer = _DOMAIN.get(type(error), InternalError)
    return answer(str(error), payment_id=error.payment_id, payment_status=error.payment_status)
