"""Why a domain operation was refused: one root, `DomainError`. Each API surface maps the classes
it can meet to its own answer."""

from __future__ import annotations


class DomainError(Exception):
    """A domain operation was refused or could not be done."""


class StorageUnavailable(DomainError):
    """The database could not be reached; nothing was decided."""


class Conflict(DomainError):
    """A write broke one of the database's constraints (named `constraint`)."""

    def __init__(self, constraint: str | None, message: str = "") -> None:
        super().__init__(message or f"constraint {constraint} refused the write")
        self.constraint = constraint


class PaymentError(DomainError):
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


class PaymentAlreadyAuthorized(InvalidPaymentStatus):
    """The payment has already been authorized."""


class NoActionsToHandle(PaymentError):
    """The payment is not waiting for the customer: there is nothing to resume."""


class ResumeInProgress(PaymentError):
    """The payment's authorization is being checked with the processor right now: resume it
    again in a moment."""


class IncorrectPaymentAuthorizationType(PaymentError):
    """Adjust authorization is only allowed on payments whose authorizationType is ESTIMATED."""


class PaymentIsNotAuthorized(PaymentError):
    """Adjust authorization is only allowed on authorized payments (nothing captured yet)."""


class AdjustAuthorizationNotSupported(PaymentError):
    """The payment's processor does not support adjusting an authorization."""


class MerchantAccountNotFound(PaymentError):
    """The merchant has no processor account with this processor merchant id."""


class MerchantAccountConflict(PaymentError):
    """More than one processor account has this processor merchant id: name the processor."""


class UnprocessableCaptureAmount(PaymentError):
    """The capture amount is more than what is left to capture."""


class UnprocessableRefundAmount(PaymentError):
    """The refund amount is more than what is left to refund."""


class PaymentAlreadyRefunded(PaymentError):
    """Nothing is left to refund on this payment."""


class PaymentMethodTokenNotFound(PaymentError):
    """The payment method token is unknown, or belongs to another mode."""


class ProcessorUnavailable(PaymentError):
    """The payment's processor cannot be used: its account's set-up is incomplete (a missing
    or different GATEWAY_SECRET_KEY, an account removed). Nothing was done."""


class TransactionEventNotFound(PaymentError):
    """The transactionEventId does not name a capture of this payment."""


class RunAlreadyExists(PaymentError):
    """This idempotency key already has a workflow run for this operation."""

    def __init__(self, *, payment_id: str, payment_status: str, finished: bool) -> None:
        super().__init__(payment_id=payment_id, payment_status=payment_status)
        self.finished = finished


class IdempotencyKeyReused(PaymentError):
    """This idempotency key was already used with a different request."""


class RunError(DomainError):
    """A workflow run operation was refused."""


class RunNotFound(RunError):
    """No workflow run has this id."""


class RunNotReplayable(RunError):
    """This run cannot be replayed."""


class AccountError(DomainError):
    """A merchant or processor account operation was refused."""


class UnknownMerchant(AccountError):
    """No merchant has this name."""


class UnknownProcessorAccount(AccountError):
    """No processor account of this merchant has this name."""


class ProcessorAccountExists(AccountError):
    """The merchant already has a processor account with this name."""
