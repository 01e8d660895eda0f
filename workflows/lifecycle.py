"""The payment lifecycle's rules, as pure functions over a payment's figures.

- capture: from AUTHORIZED, or PARTIALLY_SETTLED after a non-final capture. All that was
  authorized captured: SETTLED; less: PARTIALLY_SETTLED; an asynchronous processor: SETTLING first.
  After a final capture, no further capture.
- cancel: from PENDING, AUTHORIZED, or PARTIALLY_SETTLED after a non-final capture: CANCELLED; a
  partially settled payment stays PARTIALLY_SETTLED and the uncaptured rest is released.
- refund: from SETTLED or PARTIALLY_SETTLED; the status stays, amountRefunded grows.
- authorize on a named processor: only a payment its routing rule held (PENDING, never sent).
- adjust an authorization: an ESTIMATED one, AUTHORIZED with nothing captured or in flight, on
  a processor that supports it; to any positive amount (what the customer will be charged).

Amounts in flight count (`capture_reserved`, `refund_reserved`): the checks here give the
merchant a precise error; the database's CHECK constraints make passing a limit impossible even
if a check were wrong.
"""

from __future__ import annotations

from workflows.errors import (
    AdjustAuthorizationNotSupported,
    IncorrectPaymentAuthorizationType,
    InvalidPaymentStatus,
    PaymentAlreadyAuthorized,
    PaymentAlreadyRefunded,
    PaymentIsNotAuthorized,
    UnprocessableCaptureAmount,
    UnprocessableRefundAmount,
)
from workflows.model import Payment, PaymentStatus

CAPTURABLE_STATUSES = frozenset({PaymentStatus.AUTHORIZED, PaymentStatus.PARTIALLY_SETTLED})
CANCELLABLE_STATUSES = frozenset(
    {PaymentStatus.PENDING, PaymentStatus.AUTHORIZED, PaymentStatus.PARTIALLY_SETTLED}
)
REFUNDABLE_STATUSES = frozenset({PaymentStatus.SETTLED, PaymentStatus.PARTIALLY_SETTLED})


def _refuse(payment: Payment, operation: str) -> InvalidPaymentStatus:
    return InvalidPaymentStatus(
        f"A payment with status {payment.status} cannot be {operation}.",
        payment_id=payment.id,
        payment_status=payment.status,
    )


def capture_amount(payment: Payment, requested: int | None) -> int:
    """The amount a capture reserves, or the reason it is refused."""
    if payment.status not in CAPTURABLE_STATUSES or payment.captures_closed:
        raise _refuse(payment, "captured")
    capturable = payment.capturable
    amount = capturable if requested is None else requested
    if amount <= 0 or amount > capturable:
        raise UnprocessableCaptureAmount(
            f"Cannot capture {amount}: {capturable} is left to capture.",
            payment_id=payment.id,
            payment_status=payment.status,
        )
    return amount


AUTHORIZED_STATUSES = frozenset(
    {
        PaymentStatus.AUTHORIZED,
        PaymentStatus.SETTLING,
        PaymentStatus.PARTIALLY_SETTLED,
        PaymentStatus.SETTLED,
    }
)


def check_authorize(payment: Payment, *, attempted: bool) -> None:
    """Only a payment never sent to a processor (held by its routing rule) is authorized on
    the processor the merchant names."""
    if payment.status in AUTHORIZED_STATUSES:
        raise PaymentAlreadyAuthorized(payment_id=payment.id, payment_status=payment.status)
    if payment.status is not PaymentStatus.PENDING:
        raise _refuse(payment, "authorized")
    if attempted:
        raise InvalidPaymentStatus(
            "The authorization of this payment is already in progress.",
            payment_id=payment.id,
            payment_status=payment.status,
        )


def check_adjust(
    payment: Payment, amount: int, *, supported: bool, processor: str, authorization_known: bool
) -> None:
    options = payment.payment_options
    if options is None or options.authorization_type != "ESTIMATED":
        raise IncorrectPaymentAuthorizationType(
            payment_id=payment.id, payment_status=payment.status
        )
    if (
        payment.status is not PaymentStatus.AUTHORIZED
        or payment.amount_captured
        or payment.capture_reserved
        or payment.captures_closed
        or not authorization_known  # (no processor id of it: nothing there to adjust)
    ):
        raise PaymentIsNotAuthorized(payment_id=payment.id, payment_status=payment.status)
    if not supported:
        raise AdjustAuthorizationNotSupported(
            f"Adjust Authorization for processor {processor} is not supported.",
            payment_id=payment.id,
            payment_status=payment.status,
        )
    if amount <= 0:
        raise UnprocessableCaptureAmount(
            "The adjusted amount must be more than zero.",
            payment_id=payment.id,
            payment_status=payment.status,
        )


def check_cancel(payment: Payment, *, authorization_known: bool, held: bool = False) -> None:
    """`held`: sent to no processor (its routing rule held it): cancelled with nothing to void."""
    if payment.status not in CANCELLABLE_STATUSES or payment.captures_closed:
        raise _refuse(payment, "cancelled")
    if held:
        return
    if not authorization_known:
        # The authorization's answer has not come back (in flight, or its outcome unknown):
        # there is nothing at the processor to void yet, and voiding nothing would leave the
        # authorization, once it lands, holding the customer's funds.
        raise InvalidPaymentStatus(
            "The authorization of this payment is still in progress; cancel it once it is done.",
            payment_id=payment.id,
            payment_status=payment.status,
        )
    if payment.capture_reserved:
        raise InvalidPaymentStatus(
            "A capture of this payment is in progress; it cannot be cancelled now.",
            payment_id=payment.id,
            payment_status=payment.status,
        )


def refund_amount(payment: Payment, requested: int | None, event_refundable: int | None) -> int:
    """The amount a refund reserves (of one capture event, if targeted), or why it is refused."""
    if payment.status not in REFUNDABLE_STATUSES:
        raise _refuse(payment, "refunded")
    refundable = payment.refundable
    if event_refundable is not None:
        refundable = min(refundable, event_refundable)
    if refundable <= 0:
        raise PaymentAlreadyRefunded(payment_id=payment.id, payment_status=payment.status)
    amount = refundable if requested is None else requested
    if amount <= 0 or amount > refundable:
        raise UnprocessableRefundAmount(
            f"Cannot refund {amount}: {refundable} is left to refund.",
            payment_id=payment.id,
            payment_status=payment.status,
        )
    return amount


def status_after_capture(amount_authorized: int, amount_captured: int) -> PaymentStatus:
    if amount_captured >= amount_authorized:
        return PaymentStatus.SETTLED
    return PaymentStatus.PARTIALLY_SETTLED


def status_after_cancel(amount_captured: int) -> PaymentStatus:
    return PaymentStatus.PARTIALLY_SETTLED if amount_captured else PaymentStatus.CANCELLED
