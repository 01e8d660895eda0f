"""Why a payment operation was refused. The edge maps each class to an HTTP answer."""

from __future__ import annotations


class PaymentError(Exception):
    """A payment operation was refused."""

    def __init__(
        self,
        message: str | None = None,
        *,
        payment_id: str | None = None,
        payment_status: str | None = None,
    ) -> None:
        super().__init__(message or (self.__doc__ or "").strip())
        self.payment_id = payment_id
        self.payment_status = payment_status


class PaymentNotFound(PaymentError):
    """The payment could not be found."""


class InvalidPaymentStatus(PaymentError):
    """The payment's status does not allow this operation."""


class UnprocessableCaptureAmount(PaymentError):
    """The capture amount is more than what is left to capture."""


class UnprocessableRefundAmount(PaymentError):
    """The refund amount is more than what is left to refund."""


class PaymentAlreadyRefunded(PaymentError):
    """Nothing is left to refund on this payment."""


class PaymentMethodTokenNotFound(PaymentError):
    """The payment method token is unknown, or belongs to another mode."""


class TransactionEventNotFound(PaymentError):
    """The transactionEventId does not name a capture of this payment."""


class RunAlreadyExists(PaymentError):
    """This idempotency key already has a workflow run for this operation."""

    def __init__(self, *, payment_id: str, payment_status: str, finished: bool) -> None:
        super().__init__(payment_id=payment_id, payment_status=payment_status)
        self.finished = finished


class IdempotencyKeyReused(PaymentError):
    """This idempotency key was already used with a different request."""


class RunError(Exception):
    """A workflow run operation was refused."""


class RunNotFound(RunError):
    """No workflow run has this id."""


class RunNotReplayable(RunError):
    """This run cannot be replayed."""
