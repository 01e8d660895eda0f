"""Phase 3, decided: what a processor's answer (or its absence) changes, as pure values.

`decide` reads the run, the payment (as phase 1 left it, or as locked in phase 3: see
`runner._record`) and the answer, and returns the `Changes` that one statement
(`record_outcome`) then writes: the run's new state and history line, and, only if this process
still holds the run's lease, the payment's figures, the transaction, an event, and a targeted
refund's capture event.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from msgspec.structs import replace

from processors.base import (
    DeclineCode,
    DeclineType,
    Outcome,
    Result,
    StatusReason,
    StatusReasonType,
)
from workflows import lifecycle
from workflows.model import (
    AdjustInput,
    CancelInput,
    CaptureInput,
    EventType,
    Payment,
    PaymentStatus,
    RecoveryPoint,
    RequiredAction,
    Run,
    RunKind,
    RunOutcome,
    RunState,
)

TIMEOUT_REASON = StatusReason(
    StatusReasonType.GATEWAY_TIMEOUT,
    message="The processor did not answer in time; the outcome is being confirmed.",
)
_NOT_FOUND = StatusReason(StatusReasonType.APPLICATION_ERROR, message="unknown to the processor")
NOT_DONE = StatusReason(
    StatusReasonType.APPLICATION_ERROR,
    None,
    DeclineCode.ERROR,
    "The processor says this operation did not happen (resolved by an operator).",
)
_STATED_FAILED = StatusReason(
    StatusReasonType.APPLICATION_ERROR,
    None,
    DeclineCode.ERROR,
    "Resolved as not done by an operator, who checked with the processor.",
)
# What each kind of run does when it happens.
_DONE = {
    RunKind.AUTHORIZE: Outcome.AUTHORIZED,
    RunKind.CAPTURE: Outcome.CAPTURED,
    RunKind.CANCEL: Outcome.CANCELLED,
    RunKind.REFUND: Outcome.REFUNDED,
    RunKind.ADJUST: Outcome.AUTHORIZED,
}


def stated(run: Run, processor_transaction_id: str | None, *, happened: bool) -> Result:
    """An operator's word for a run's outcome, as if the processor had answered it."""
    if happened:
        return Result(_DONE[run.kind], processor_transaction_id)
    return Result(Outcome.FAILED, processor_transaction_id, _STATED_FAILED)


# Every call failed before reaching the processor (connection refused, DNS, 429): nothing was
# done, and the answer is that definite no, not an unknown outcome.
UNREACHABLE = Result(
    Outcome.FAILED,
    reason=StatusReason(
        StatusReasonType.APPLICATION_ERROR,
        None,
        DeclineCode.ERROR,
        "The processor could not be reached; nothing was sent to it.",
    ),
)
_WAITING_EVENTS = {
    RecoveryPoint.CALL_PROCESSOR: "outcome_unknown",
    RecoveryPoint.AWAIT_ACTION: "awaiting_customer_action",
    RecoveryPoint.AWAIT_SETTLEMENT: "awaiting_settlement",
}


@dataclass(frozen=True)
class TransactionChange:
    status: PaymentStatus | None  # None: keep the status, only mark the outcome unknown
    reason: StatusReason | None = None
    processor_transaction_id: str | None = None
    outcome_unknown: bool = False


# A definitive "no" to a capture or cancel: the SALE keeps its status, its outcome is known again.
_KNOWN_NOW = TransactionChange(status=None, outcome_unknown=False)


@dataclass(frozen=True)
class EventChange:
    type: EventType
    amount: int | None
    final: bool | None


@dataclass(frozen=True)
class Changes:
    state: RunState  # running (to be asked again), succeeded, failed
    recovery_point: RecoveryPoint
    retry_after_seconds: int
    history_event: str
    outcome: RunOutcome | None
    payment: Payment | None = None  # the payment's new figures; None: unchanged
    transaction: TransactionChange | None = None
    event: EventChange | None = None
    refunded_of_capture: tuple[int, int] | None = None  # (released, refunded) of its capture


def falls_back(result: Result) -> bool:
    """Whether an authorization's answer lets the next account try: a definite "not
    authorized" (a failure before the processor accepted it, or a "did not happen") that is not a
    decline, or a soft decline. A hard decline (stolen card, fraud, invalid number), or a decline
    whose kind is not said, stays final: the card is not shopped around."""
    if result.outcome in (Outcome.FAILED, Outcome.NOT_FOUND):
        return True
    return (
        result.outcome is Outcome.DECLINED
        and result.reason is not None
        and result.reason.decline_type is DeclineType.SOFT_DECLINE
    )


def fell_back(run: Run, payment: Payment, result: Result) -> Changes:
    """An attempt ended by `result` (which `falls_back`) with an account left to try: its SALE
    takes the answer, the payment stays pending (its status reason cleared), and the run goes on
    with the next attempt."""
    if result.outcome is Outcome.NOT_FOUND:
        result = Result(Outcome.FAILED, reason=_NOT_FOUND)
    status, reason = _refused_status(result), _reason(result)
    return Changes(
        state=RunState.RUNNING,
        recovery_point=RecoveryPoint.CALL_PROCESSOR,
        retry_after_seconds=0,
        history_event="fell_back",
        outcome=_outcome(result),
        payment=replace(payment, status_reason=None, required_action=None),
        transaction=TransactionChange(status, reason, result.processor_transaction_id),
    )


def decide(
    run: Run,
    payment: Payment,
    result: Result | None,
    *,
    recovery_backoff_seconds: int,
    poll_seconds: int,
) -> Changes:
    if result is None:
        # Unknown outcome: the payment keeps its status and says why; the run waits. (An
        # adjustment's transaction is the authorization's SALE, which stays known.)
        return Changes(
            state=RunState.RUNNING,
            recovery_point=run.recovery_point,
            retry_after_seconds=recovery_backoff_seconds,
            history_event=_WAITING_EVENTS[run.recovery_point],
            outcome=None,
            payment=replace(payment, status_reason=TIMEOUT_REASON),
            transaction=None
            if run.kind is RunKind.ADJUST
            else TransactionChange(status=None, outcome_unknown=True),
        )
    outcome = _outcome(result)
    if result.outcome is Outcome.SETTLING:
        return Changes(
            state=RunState.RUNNING,
            recovery_point=RecoveryPoint.AWAIT_SETTLEMENT,
            retry_after_seconds=poll_seconds,
            history_event="awaiting_settlement",
            outcome=outcome,
            payment=replace(payment, status=PaymentStatus.SETTLING, status_reason=None),
        )
    if result.outcome is Outcome.PENDING and run.kind is RunKind.AUTHORIZE:
        # The customer has something to do (3-D Secure): ask again later. The processor's id is
        # kept now, because the questions need it.
        action = None
        if result.required_action:
            action = RequiredAction(
                name=result.required_action,
                description="The customer must complete an action (3-D Secure).",
            )
        return Changes(
            state=RunState.RUNNING,
            recovery_point=RecoveryPoint.AWAIT_ACTION,
            retry_after_seconds=poll_seconds,
            history_event="awaiting_customer_action",
            outcome=outcome,
            payment=replace(payment, status_reason=None, required_action=action)
            if action
            else None,
            transaction=TransactionChange(
                PaymentStatus.PENDING, None, result.processor_transaction_id
            ),
        )
    if result.outcome is Outcome.MISMATCH:
        # The processor's figures are not ours (changed outside the gateway): nothing is taken
        # as this run's outcome; the run waits for an operator, its reservation kept.
        return Changes(
            state=RunState.STUCK,
            recovery_point=run.recovery_point,
            retry_after_seconds=0,
            history_event="reconciliation_needed",
            outcome=outcome,
            payment=replace(payment, status_reason=result.reason),
            transaction=TransactionChange(status=None, outcome_unknown=True),
        )
    if result.outcome is Outcome.NOT_FOUND:
        # Asked about an operation the processor does not know: it was not done.
        result = Result(Outcome.FAILED, reason=_NOT_FOUND)
    succeeded = not result.definitive_no
    finished = Changes(
        state=RunState.SUCCEEDED if succeeded else RunState.FAILED,
        recovery_point=RecoveryPoint.FINISHED,
        retry_after_seconds=0,
        history_event="succeeded" if succeeded else "failed",
        outcome=_outcome(result),
    )
    deciders = {
        RunKind.AUTHORIZE: _authorized,
        RunKind.CAPTURE: _captured,
        RunKind.CANCEL: _cancelled,
        RunKind.REFUND: _refunded,
        RunKind.ADJUST: _adjusted,
    }
    return deciders[run.kind](finished, run, payment, result, succeeded)


def _outcome(result: Result) -> RunOutcome:
    return RunOutcome(
        outcome=result.outcome.value,
        processor_transaction_id=result.processor_transaction_id,
        reason=result.reason,
    )


def _reason(result: Result) -> StatusReason:
    return result.reason or StatusReason(StatusReasonType.APPLICATION_ERROR)


def _refused_status(result: Result) -> PaymentStatus:
    return PaymentStatus.DECLINED if result.outcome is Outcome.DECLINED else PaymentStatus.FAILED


def _authorized(
    changes: Changes, run: Run, payment: Payment, result: Result, succeeded: bool
) -> Changes:
    if payment.status is not PaymentStatus.PENDING:
        return changes  # cancelled meanwhile: the cancel's own run answered for it
    ptid = result.processor_transaction_id
    if result.outcome is Outcome.AUTHORIZED:
        return dataclasses.replace(
            changes,
            payment=replace(
                payment,
                status=PaymentStatus.AUTHORIZED,
                status_reason=None,
                amount_authorized=payment.amount,
                required_action=None,
            ),
            transaction=TransactionChange(PaymentStatus.AUTHORIZED, None, ptid),
            event=EventChange(EventType.AUTHORIZATION_SUCCEEDED, payment.amount, None),
        )
    status, reason = _refused_status(result), _reason(result)
    return dataclasses.replace(
        changes,
        payment=replace(payment, status=status, status_reason=reason, required_action=None),
        transaction=TransactionChange(status, reason, ptid),
    )


def _captured(
    changes: Changes, run: Run, payment: Payment, result: Result, succeeded: bool
) -> Changes:
    assert isinstance(run.input, CaptureInput)
    final = run.input.final
    released = payment.capture_reserved - run.amount
    if succeeded:
        captured = payment.amount_captured + run.amount
        status = lifecycle.status_after_capture(payment.amount_authorized, captured)
        return dataclasses.replace(
            changes,
            payment=replace(
                payment,
                status=status,
                status_reason=None,
                amount_captured=captured,
                capture_reserved=released,
            ),
            transaction=TransactionChange(status, None, result.processor_transaction_id),
            event=EventChange(EventType.CAPTURE_SUCCEEDED, run.amount, final),
        )
    # Not captured: the reservation is released, and a final capture's closing undone.
    closed = run.input.was_closed if final else payment.captures_closed
    return dataclasses.replace(
        changes,
        payment=replace(
            payment,
            status_reason=_reason(result),
            capture_reserved=released,
            captures_closed=closed,
        ),
        transaction=_KNOWN_NOW,
    )


def _cancelled(
    changes: Changes, run: Run, payment: Payment, result: Result, succeeded: bool
) -> Changes:
    assert isinstance(run.input, CancelInput)
    if succeeded:
        status = lifecycle.status_after_cancel(payment.amount_captured)
        return dataclasses.replace(
            changes,
            payment=replace(payment, status=status, status_reason=None, captures_closed=True),
            transaction=TransactionChange(status, None, result.processor_transaction_id),
            event=EventChange(EventType.CANCELLATION_SUCCEEDED, None, None),
        )
    return dataclasses.replace(
        changes,
        payment=replace(
            payment,
            status_reason=_reason(result),
            captures_closed=run.input.was_closed,
        ),
        transaction=_KNOWN_NOW,
    )


def _adjusted(
    changes: Changes, run: Run, payment: Payment, result: Result, succeeded: bool
) -> Changes:
    """The authorization's new amount (what the payment will charge), or the old one kept; the
    hold that kept captures off while it changed is released either way."""
    assert isinstance(run.input, AdjustInput)
    released = payment.capture_reserved - run.input.previous
    if succeeded:
        return dataclasses.replace(
            changes,
            payment=replace(
                payment,
                amount=run.amount,
                amount_authorized=run.amount,
                capture_reserved=released,
                status_reason=None,
            ),
        )
    return dataclasses.replace(
        changes,
        payment=replace(payment, status_reason=_reason(result), capture_reserved=released),
    )


def _refunded(
    changes: Changes, run: Run, payment: Payment, result: Result, succeeded: bool
) -> Changes:
    refunded = run.amount if succeeded else 0
    status, reason = (
        (PaymentStatus.SETTLED, None) if succeeded else (_refused_status(result), _reason(result))
    )
    return dataclasses.replace(
        changes,
        payment=replace(
            payment,
            amount_refunded=payment.amount_refunded + refunded,
            refund_reserved=payment.refund_reserved - run.amount,
        ),
        transaction=TransactionChange(status, reason, result.processor_transaction_id),
        refunded_of_capture=(run.amount, refunded) if run.capture_event_id else None,
    )
