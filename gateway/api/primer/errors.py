"""Primer's answers to the payment domain's refusals: one ApiError class per errorId, and the one
table that maps each domain error to its answer."""

from __future__ import annotations

from gateway.http.errors import (
    ApiError,
    IdempotencyKeyAlreadyExists,
    IdempotencyKeyInProgress,
    IdempotencyKeyReused,
    InternalError,
    validation_error,
)
from workflows import errors as domain
from workflows.instruments import InvalidPaymentInstrument
from workflows.sessions import PaymentFieldMissing, SessionNotFound


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


class PaymentAlreadyAuthorized(ApiError):
    status = 400
    error_id = "PaymentAlreadyAuthorized"


class MerchantAccountNotFound(ApiError):
    status = 400
    error_id = "MerchantAccountNotFound"


class MerchantAccountConflict(ApiError):
    status = 400
    error_id = "MerchantAccountConflict"


class ClientSessionValidationError(ApiError):
    """No client session of this merchant has this client token (or it has expired)."""

    status = 400
    error_id = "ClientSessionValidationError"
    recovery = "Please provide a valid client token."


class InvalidPaymentInstrumentToken(ApiError):
    """No saved payment method of this merchant has this token."""

    status = 400
    error_id = "InvalidPaymentInstrumentToken"


class NoActionsToHandle(ApiError):
    """The payment is not waiting for the customer: there is nothing to resume."""

    status = 202
    error_id = "NoActionsToHandle"


class ResumeInProgress(ApiError):
    """The payment is being checked with the processor right now: resume it again shortly."""

    status = 409
    error_id = "ResumeInProgress"


class IncorrectPaymentAuthorizationType(ApiError):
    status = 400
    error_id = "IncorrectPaymentAuthorizationType"


class PaymentIsNotAuthorized(ApiError):
    status = 400
    error_id = "PaymentIsNotAuthorized"


class AdjustAuthorizationNotSupported(ApiError):
    status = 400
    error_id = "AdjustAuthorizationNotSupported"


class ProcessorUnavailable(ApiError):
    """The payment's processor cannot be used right now; nothing was done."""

    status = 503
    error_id = "ProcessorUnavailable"
    recovery = "The gateway's operator must complete the processor account's set-up."


# A new payment's required fields: the domain's names, as Primer's request names them.
_CREATION_FIELDS = {"order_id": "orderId", "currency_code": "currencyCode", "amount": "amount"}

_DOMAIN: dict[type[domain.PaymentError], type[ApiError]] = {
    domain.ProcessorUnavailable: ProcessorUnavailable,
    domain.PaymentNotFound: PaymentNotFound,
    domain.InvalidPaymentStatus: InvalidPaymentStatus,
    SessionNotFound: ClientSessionValidationError,
    domain.NoActionsToHandle: NoActionsToHandle,
    domain.ResumeInProgress: ResumeInProgress,
    domain.IncorrectPaymentAuthorizationType: IncorrectPaymentAuthorizationType,
    domain.PaymentIsNotAuthorized: PaymentIsNotAuthorized,
    domain.AdjustAuthorizationNotSupported: AdjustAuthorizationNotSupported,
    InvalidPaymentInstrument: InvalidPaymentInstrumentToken,
    domain.PaymentAlreadyAuthorized: PaymentAlreadyAuthorized,
    domain.MerchantAccountNotFound: MerchantAccountNotFound,
    domain.MerchantAccountConflict: MerchantAccountConflict,
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
    if isinstance(error, PaymentFieldMissing):
        return validation_error(
            "PaymentCreationAPIRequest",
            "Field required: neither the request nor the payment method's client session gives "
            f"it - at `$.{_CREATION_FIELDS[error.field]}`",
        )
    answer = _DOMAIN.get(type(error), InternalError)
    return answer(str(error), payment_id=error.payment_id, payment_status=error.payment_status)
