"""What a processor's answer (or its absence) changes: `outcomes.decide`, no I/O."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from msgspec.structs import replace

from processors.base import (
    DeclineCode,
    DeclineType,
    Outcome,
    Result,
    StatusReason,
    StatusReasonType,
)
from workflows import outcomes
from workflows.model import (
    INPUTS,
    CancelInput,
    CaptureInput,
    EventType,
    Payment,
    PaymentStatus,
    RecoveryPoint,
    RefundInput,
    Run,
    RunInput,
    RunKind,
    RunState,
)

NOW = datetime.now(UTC)
DECLINE = StatusReason(
    StatusReasonType.ISSUER_DECLINED, DeclineType.SOFT_DECLINE, DeclineCode.DECLINED, "no"
)


def payment(**figures: Any) -> Payment:
    base: dict[str, Any] = dict(
        merchant_id="mer_1",
        id="pay_1",
        mode="sandbox",
        status=PaymentStatus.AUTHORIZED,
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
        processor_merchant_id="mer_1",
        amount_authorized=1000,
        amount_captured=0,
        amount_refunded=0,
        capture_reserved=0,
        refund_reserved=0,
        captures_closed=False,
        required_action=None,
        created_at=NOW,
        updated_at=NOW,
    )
    return Payment(**{**base, **figures})


def run(kind: RunKind, amount: int, run_input: RunInput | None = None, **fields: Any) -> Run:
    base: dict[str, Any] = dict(
        merchant_id="mer_1",
        id="run_1",
        payment_id="pay_1",
        kind=kind,
        idempotency_key=None,
        input=run_input or INPUTS[kind](),
        amount=amount,
        transaction_id="txn_1",
        capture_event_id=None,
        processor_key="k",
        state=RunState.RUNNING,
        recovery_point=RecoveryPoint.CALL_PROCESSOR,
        attempts=0,
        recoveries=0,
        lease_owner="me",
        lease_expires_at=None,
        next_attempt_at=None,
        outcome=None,
        last_error=None,
        created_at=NOW,
        updated_at=NOW,
    )
    return Run(**{**base, **fields})


def decide(r: Run, p: Payment, result: Result | None) -> outcomes.Changes:
    return outcomes.decide(r, p, result, recovery_backoff_seconds=5, poll_seconds=7)


def test_no_answer_keeps_the_status_says_why_and_waits_for_recovery() -> None:
    p = payment(capture_reserved=400)
    changes = decide(run(RunKind.CAPTURE, 400), p, None)
    assert (changes.state, changes.recovery_point) == (
        RunState.RUNNING,
        RecoveryPoint.CALL_PROCESSOR,
    )
    assert changes.retry_after_seconds == 5 and changes.history_event == "outcome_unknown"
    assert changes.payment is not None
    assert changes.payment.status is PaymentStatus.AUTHORIZED
    assert changes.payment.capture_reserved == 400  # still reserved: it may have been captured
    assert changes.payment.status_reason == outcomes.TIMEOUT_REASON
    assert changes.transaction == outcomes.TransactionChange(status=None, outcome_unknown=True)
    assert changes.event is None


def test_an_authorization_authorizes_the_whole_amount_with_an_event() -> None:
    p = payment(status=PaymentStatus.PENDING, amount_authorized=0)
    changes = decide(run(RunKind.AUTHORIZE, 1000), p, Result(Outcome.AUTHORIZED, "ptx_1"))
    assert changes.state is RunState.SUCCEEDED and changes.recovery_point is RecoveryPoint.FINISHED
    assert changes.payment is not None
    assert (changes.payment.status, changes.payment.amount_authorized) == (
        PaymentStatus.AUTHORIZED,
        1000,
    )
    assert changes.transaction == outcomes.TransactionChange(
        PaymentStatus.AUTHORIZED, None, "ptx_1"
    )
    assert changes.event == outcomes.EventChange(EventType.AUTHORIZATION_SUCCEEDED, 1000, None)


@pytest.mark.parametrize(
    ("outcome", "status"), [(Outcome.DECLINED, "DECLINED"), (Outcome.FAILED, "FAILED")]
)
def test_a_refused_authorization_is_final_with_the_processors_reason(
    outcome: Outcome, status: str
) -> None:
    p = payment(status=PaymentStatus.PENDING, amount_authorized=0)
    changes = decide(run(RunKind.AUTHORIZE, 1000), p, Result(outcome, "ptx_1", DECLINE))
    assert changes.state is RunState.FAILED
    assert changes.payment is not None
    assert changes.payment.status == status and changes.payment.status_reason == DECLINE
    assert changes.payment.amount_authorized == 0 and changes.event is None


def test_an_authorization_answered_after_a_cancel_changes_nothing_of_the_payment() -> None:
    p = payment(status=PaymentStatus.CANCELLED, amount_authorized=0)
    changes = decide(run(RunKind.AUTHORIZE, 1000), p, Result(Outcome.AUTHORIZED, "ptx_1"))
    assert changes.state is RunState.SUCCEEDED
    assert changes.payment is None and changes.transaction is None and changes.event is None


def test_3ds_waits_for_the_customer_with_a_required_action() -> None:
    p = payment(status=PaymentStatus.PENDING, amount_authorized=0)
    answer = Result(Outcome.PENDING, "pi_1", required_action="3DS_AUTHENTICATION")
    changes = decide(run(RunKind.AUTHORIZE, 1000), p, answer)
    assert (changes.state, changes.recovery_point) == (RunState.RUNNING, RecoveryPoint.AWAIT_ACTION)
    assert changes.retry_after_seconds == 7
    assert changes.payment is not None and changes.payment.required_action is not None
    assert changes.payment.required_action.name == "3DS_AUTHENTICATION"
    assert changes.payment.status is PaymentStatus.PENDING
    assert changes.transaction == outcomes.TransactionChange(PaymentStatus.PENDING, None, "pi_1")


@pytest.mark.parametrize(
    ("captured_before", "amount", "final", "status"),
    [
        (0, 400, False, PaymentStatus.PARTIALLY_SETTLED),
        (400, 600, True, PaymentStatus.SETTLED),
        (0, 1000, True, PaymentStatus.SETTLED),
        (0, 300, True, PaymentStatus.PARTIALLY_SETTLED),  # final, short: the rest is released
    ],
)
def test_a_capture_adds_to_what_is_captured_and_releases_its_reservation(
    captured_before: int, amount: int, final: bool, status: PaymentStatus
) -> None:
    p = payment(amount_captured=captured_before, capture_reserved=amount, captures_closed=final)
    r = run(RunKind.CAPTURE, amount, CaptureInput(amount=amount, final=final))
    changes = decide(r, p, Result(Outcome.CAPTURED, "ptx_1"))
    assert changes.payment is not None
    assert changes.payment.amount_captured == captured_before + amount
    assert changes.payment.capture_reserved == 0 and changes.payment.status is status
    assert changes.event == outcomes.EventChange(EventType.CAPTURE_SUCCEEDED, amount, final)


@pytest.mark.parametrize("was_closed", [False, True])
def test_a_refused_final_capture_releases_the_amount_and_undoes_its_closing(
    was_closed: bool,
) -> None:
    p = payment(capture_reserved=300, captures_closed=True)
    r = run(RunKind.CAPTURE, 300, CaptureInput(amount=300, final=True, was_closed=was_closed))
    changes = decide(r, p, Result(Outcome.DECLINED, None, DECLINE))
    assert changes.state is RunState.FAILED
    assert changes.payment is not None
    assert changes.payment.capture_reserved == 0 and changes.payment.amount_captured == 0
    assert changes.payment.captures_closed is was_closed
    assert changes.payment.status is PaymentStatus.AUTHORIZED  # still capturable
    assert changes.transaction == outcomes.TransactionChange(status=None, outcome_unknown=False)


def test_a_capture_settling_later_waits_for_the_settlement() -> None:
    p = payment(capture_reserved=1000)
    changes = decide(run(RunKind.CAPTURE, 1000), p, Result(Outcome.SETTLING, "ptx_1"))
    assert changes.recovery_point is RecoveryPoint.AWAIT_SETTLEMENT
    assert changes.payment is not None and changes.payment.status is PaymentStatus.SETTLING
    assert changes.payment.amount_captured == 0  # not counted until it settles


@pytest.mark.parametrize(
    ("captured", "status"), [(0, PaymentStatus.CANCELLED), (400, PaymentStatus.PARTIALLY_SETTLED)]
)
def test_a_cancel_closes_captures(captured: int, status: PaymentStatus) -> None:
    p = payment(amount_captured=captured, captures_closed=True)
    changes = decide(run(RunKind.CANCEL, 0, CancelInput()), p, Result(Outcome.CANCELLED, "ptx"))
    assert changes.payment is not None and changes.payment.status is status
    assert changes.event == outcomes.EventChange(EventType.CANCELLATION_SUCCEEDED, None, None)


def test_a_refused_cancel_reopens_captures_as_they_were() -> None:
    p = payment(captures_closed=True)
    changes = decide(
        run(RunKind.CANCEL, 0, CancelInput(was_closed=False)), p, Result(Outcome.FAILED)
    )
    assert changes.payment is not None
    assert changes.payment.captures_closed is False
    assert changes.payment.status is PaymentStatus.AUTHORIZED
    assert changes.payment.status_reason is not None


@pytest.mark.parametrize("targeted", [False, True])
def test_a_refund_moves_the_reservation_to_what_is_refunded(targeted: bool) -> None:
    p = payment(amount_captured=1000, status=PaymentStatus.SETTLED, refund_reserved=250)
    event = uuid.uuid4() if targeted else None
    r = run(RunKind.REFUND, 250, RefundInput(amount=250), capture_event_id=event)
    changes = decide(r, p, Result(Outcome.REFUNDED, "re_1"))
    assert changes.payment is not None
    assert (changes.payment.amount_refunded, changes.payment.refund_reserved) == (250, 0)
    assert changes.transaction == outcomes.TransactionChange(PaymentStatus.SETTLED, None, "re_1")
    assert changes.refunded_of_capture == ((250, 250) if targeted else None)


def test_a_refused_refund_releases_the_reservation_and_refunds_nothing() -> None:
    p = payment(amount_captured=1000, status=PaymentStatus.SETTLED, refund_reserved=250)
    r = run(RunKind.REFUND, 250, RefundInput(amount=250), capture_event_id=uuid.uuid4())
    changes = decide(r, p, Result(Outcome.DECLINED, "re_1", DECLINE))
    assert changes.payment is not None
    assert (changes.payment.amount_refunded, changes.payment.refund_reserved) == (0, 0)
    assert changes.transaction == outcomes.TransactionChange(
        PaymentStatus.DECLINED, DECLINE, "re_1"
    )
    assert changes.refunded_of_capture == (250, 0)


def test_an_operation_the_processor_never_saw_failed() -> None:
    p = payment(capture_reserved=400)
    changes = decide(run(RunKind.CAPTURE, 400), p, Result(Outcome.NOT_FOUND))
    assert changes.state is RunState.FAILED
    assert changes.payment is not None and changes.payment.capture_reserved == 0
    assert changes.payment.status_reason is not None
    assert changes.payment.status_reason.type is StatusReasonType.APPLICATION_ERROR


ANSWERS = st.sampled_from(
    [None, Outcome.CAPTURED, Outcome.DECLINED, Outcome.FAILED, Outcome.NOT_FOUND, Outcome.REFUNDED]
)


@given(
    authorized=st.integers(1, 10_000),
    data=st.data(),
    answer=ANSWERS,
)
def test_no_answer_ever_captures_more_than_authorized_or_refunds_more_than_captured(
    authorized: int, data: st.DataObject, answer: Outcome | None
) -> None:
    captured = data.draw(st.integers(0, authorized))
    reserved = data.draw(st.integers(0, authorized - captured))
    refunded = data.draw(st.integers(0, captured))
    refund_reserved = data.draw(st.integers(0, captured - refunded))
    kind = data.draw(st.sampled_from([RunKind.CAPTURE, RunKind.REFUND]))
    amount = reserved if kind is RunKind.CAPTURE else refund_reserved
    p = payment(
        status=PaymentStatus.PARTIALLY_SETTLED if captured else PaymentStatus.AUTHORIZED,
        amount_authorized=authorized,
        amount_captured=captured,
        capture_reserved=reserved,
        amount_refunded=refunded,
        refund_reserved=refund_reserved,
    )
    result = None if answer is None else Result(answer, "ptx")
    changes = decide(run(kind, amount), p, result)
    after = changes.payment or p
    assert after.capture_reserved >= 0 and after.refund_reserved >= 0
    assert after.amount_captured + after.capture_reserved <= after.amount_authorized
    assert after.amount_refunded + after.refund_reserved <= after.amount_captured
    # Money is counted once: what is captured or refunded grows by the run's amount at most.
    assert after.amount_captured - p.amount_captured in (0, amount)
    assert after.amount_refunded - p.amount_refunded in (0, amount)
    if answer is None:
        assert replace(after, status_reason=None) == replace(p, status_reason=None)
