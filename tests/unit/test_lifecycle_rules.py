"""The lifecycle's rules over any figures: a reservation never passes a limit."""

from __future__ import annotations

from datetime import UTC, datetime

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st

from workflows import lifecycle
from workflows.errors import (
    InvalidPaymentStatus,
    PaymentAlreadyRefunded,
    UnprocessableCaptureAmount,
    UnprocessableRefundAmount,
)
from workflows.model import Payment

NOW = datetime.now(UTC)
STATUSES = [
    "PENDING",
    "FAILED",
    "AUTHORIZED",
    "SETTLING",
    "PARTIALLY_SETTLED",
    "SETTLED",
    "DECLINED",
    "CANCELLED",
]


def payment(**figures: object) -> Payment:
    base = dict(
        merchant_id="mer_x",
        id="pay_x",
        mode="sandbox",
        status="AUTHORIZED",
        status_reason=None,
        order_id="o",
        currency_code="EUR",
        amount=1000,
        customer_id=None,
        customer=None,
        order_details=None,
        metadata=None,
        payment_options=None,
        payment_method_token="tok",
        card=None,
        processor="sandbox",
        processor_account=None,
        required_action=None,
        processor_merchant_id="mer_x",
        amount_authorized=1000,
        amount_captured=0,
        amount_refunded=0,
        capture_reserved=0,
        refund_reserved=0,
        captures_closed=False,
        created_at=NOW,
        updated_at=NOW,
    )
    base.update(figures)
    return Payment(**base)  # type: ignore[arg-type]


@st.composite
def figures(draw: st.DrawFn) -> Payment:
    authorized = draw(st.integers(0, 10_000))
    captured = draw(st.integers(0, authorized))
    capture_reserved = draw(st.integers(0, authorized - captured))
    refunded = draw(st.integers(0, captured))
    refund_reserved = draw(st.integers(0, captured - refunded))
    return payment(
        status=draw(st.sampled_from(STATUSES)),
        amount_authorized=authorized,
        amount_captured=captured,
        capture_reserved=capture_reserved,
        amount_refunded=refunded,
        refund_reserved=refund_reserved,
        captures_closed=draw(st.booleans()),
    )


@given(figures(), st.one_of(st.none(), st.integers(-5, 12_000)))
def test_a_capture_reserves_only_what_is_left_and_only_where_allowed(
    p: Payment, requested: int | None
) -> None:
    try:
        amount = lifecycle.capture_amount(p, requested)
    except InvalidPaymentStatus:
        assert p.status not in lifecycle.CAPTURABLE_STATUSES or p.captures_closed
        return
    except UnprocessableCaptureAmount:
        assert p.capturable <= 0 or (requested is not None and not 0 < requested <= p.capturable)
        return
    assert p.status in lifecycle.CAPTURABLE_STATUSES and not p.captures_closed
    assert 0 < amount <= p.capturable
    assert p.amount_captured + p.capture_reserved + amount <= p.amount_authorized
    assert requested is None or amount == requested


@given(
    figures(),
    st.one_of(st.none(), st.integers(-5, 12_000)),
    st.one_of(st.none(), st.integers(0, 5000)),
)
def test_a_refund_reserves_only_what_is_left_and_only_where_allowed(
    p: Payment, requested: int | None, event_left: int | None
) -> None:
    # The rule, written out: what is left to refund (of the targeted capture, if any) bounds it.
    left = p.refundable if event_left is None else min(p.refundable, event_left)
    expected: type[Exception] | int
    if p.status not in lifecycle.REFUNDABLE_STATUSES:
        expected = InvalidPaymentStatus
    elif left <= 0:
        expected = PaymentAlreadyRefunded
    elif requested is not None and not 0 < requested <= left:
        expected = UnprocessableRefundAmount
    else:
        expected = left if requested is None else requested
    if isinstance(expected, int):
        amount = lifecycle.refund_amount(p, requested, event_left)
        assert amount == expected
        assert p.amount_refunded + p.refund_reserved + amount <= p.amount_captured
    else:
        with pytest.raises(expected):
            lifecycle.refund_amount(p, requested, event_left)


@given(st.lists(st.integers(1, 400), max_size=40))
def test_captures_one_after_another_are_taken_while_they_fit_and_refused_after(
    requests: list[int],
) -> None:
    p = payment(amount_authorized=1000)
    reserved = 0
    for requested in requests:
        fits = requested <= 1000 - reserved
        try:
            amount = lifecycle.capture_amount(p, requested)
        except UnprocessableCaptureAmount:
            assert not fits
            continue
        assert fits and amount == requested
        reserved += amount
        p = msgspec.structs.replace(p, capture_reserved=reserved, status="PARTIALLY_SETTLED")
    assert reserved <= 1000


@pytest.mark.parametrize(
    ("authorized", "captured", "status"),
    [(1000, 1000, "SETTLED"), (1000, 999, "PARTIALLY_SETTLED"), (0, 0, "SETTLED")],
)
def test_the_status_after_a_capture_follows_the_figures(
    authorized: int, captured: int, status: str
) -> None:
    assert lifecycle.status_after_capture(authorized, captured) == status


def test_a_cancel_keeps_a_partially_settled_payment_partially_settled() -> None:
    assert lifecycle.status_after_cancel(0) == "CANCELLED"
    assert lifecycle.status_after_cancel(1) == "PARTIALLY_SETTLED"


def test_a_cancel_waits_for_a_capture_in_flight() -> None:
    with pytest.raises(InvalidPaymentStatus):
        lifecycle.check_cancel(payment(capture_reserved=10), authorization_known=True)
    lifecycle.check_cancel(payment(), authorization_known=True)


def test_a_cancel_waits_for_the_authorization_to_be_known_at_the_processor() -> None:
    with pytest.raises(InvalidPaymentStatus, match="still in progress"):
        lifecycle.check_cancel(payment(status="PENDING"), authorization_known=False)
