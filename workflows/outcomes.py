"""Phase 3, decided: what a processor's answer (or its absence) changes, as pure values.

`decide` reads the run, the payment as locked in phase 3, and the answer, and returns the
`Changes` that one statement (`record_outcome`) then writes: the run's new state and history
line, and, only if this process still holds the run's lease, the payment's figures, the
transaction, an event, and a targeted refund's capture event.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from processors.base import Outcome, Result, StatusReason, StatusReasonType
from workflows import lifecycle
from workflows.records import Payment, Run

TIMEOUT_REASON = StatusReason(
    StatusReasonType.GATEWAY_TIMEOUT,
    message="The processor did not answer in time; the outcome is being confirmed.",
)
_NOT_FOUND = StatusReason(StatusReasonType.APPLICATION_ERROR, message="unknown to the processor")
_WAITING_EVENTS = {
    "call_processor": "outcome_unknown",
    "await_action": "awaiting_customer_action",
    "await_settlement": "awaiting_settlement",
}


@dataclass(frozen=True)
class TransactionChange:
    status: str | None  # None: keep the status, only mark the outcome unknown
    reason: dict[str, Any] | None = None
    processor_transaction_id: str | None = None
    outcome_unknown: bool = False


# A definitive "no" to a capture or cancel: the SALE keeps its status, its outcome is known again.
_KNOWN_NOW = TransactionChange(status=None, outcome_unknown=False)


@dataclass(frozen=True)
class EventChange:
    type: str
    amount: int | None
    final: bool | None


@dataclass(frozen=True)
class Changes:
    state: str  # the run's: running (to be asked again), succeeded, failed
    recovery_point: str
    retry_after_seconds: int
    history_event: str
    outcome: dict[str, Any] | None
    payment: Payment | None = None  # the payment's new figures; None: unchanged
    transaction: TransactionChange | None = None
    event: EventChange | None = None
    refunded_of_capture: tuple[int, int] | None = None  # (released, refunded) of its capture


def decide(
    run: Run,
    payment: Payment,
    result: Result | None,
    *,
    recovery_backoff_seconds: int,
    poll_seconds: int,
) -> Changes:
    if result is None:
        # Unknown outcome: the payment keeps its status and says why; the run waits.
        return Changes(
            state="running",
            recovery_point=run.recovery_point,
            retry_after_seconds=recovery_backoff_seconds,
            history_event=_WAITING_EVENTS[run.recovery_point],
            outcome=None,
            payment=dataclasses.replace(payment, status_reason=TIMEOUT_REASON.to_api()),
            transaction=TransactionChange(status=None, outcome_unknown=True),
        )
    outcome = _outcome(result)
    if result.outcome is Outcome.SETTLING:
        return Changes(
            state="running",
            recovery_point="await_settlement",
            retry_after_seconds=poll_seconds,
            history_event="awaiting_settlement",
            outcome=outcome,
            payment=dataclasses.replace(payment, status="SETTLING", status_reason=None),
        )
    if result.outcome is Outcome.PENDING and run.kind == "authorize":
        # The customer has something to do (3-D Secure): ask again later. The processor's id is
        # kept now, because the questions need it.
        action = None
        if result.required_action:
            action = {
                "name": result.required_action,
                "description": "The customer must complete an action (3-D Secure).",
            }
        return Changes(
            state="running",
            recovery_point="await_action",
            retry_after_seconds=poll_seconds,
            history_event="awaiting_customer_action",
            outcome=outcome,
            payment=dataclasses.replace(payment, status_reason=None, required_action=action)
            if action
            else None,
            transaction=TransactionChange("PENDING", None, result.processor_transaction_id),
        )
    if result.outcome is Outcome.NOT_FOUND:
        # Asked about an operation the processor does not know: it was not done.
        result = Result(Outcome.FAILED, reason=_NOT_FOUND)
    succeeded = not result.definitive_no
    finished = Changes(
        state="succeeded" if succeeded else "failed",
        recovery_point="finished",
        retry_after_seconds=0,
        history_event="succeeded" if succeeded else "failed",
        outcome=_outcome(result),
    )
    deciders = {
        "authorize": _authorized,
        "capture": _captured,
        "cancel": _cancelled,
        "refund": _refunded,
    }
    return deciders[run.kind](finished, run, payment, result, succeeded)


def _outcome(result: Result) -> dict[str, Any]:
    return {
        "outcome": result.outcome.value,
        "processorTransactionId": result.processor_transaction_id,
        "reason": result.reason.to_api() if result.reason else None,
    }


def _reason(result: Result) -> dict[str, Any]:
    return (result.reason or StatusReason(StatusReasonType.APPLICATION_ERROR)).to_api()


def _refused_status(result: Result) -> str:
    return "DECLINED" if result.outcome is Outcome.DECLINED else "FAILED"


def _authorized(
    changes: Changes, run: Run, payment: Payment, result: Result, succeeded: bool
) -> Changes:
    if payment.status != "PENDING":
        return changes  # cancelled meanwhile: the cancel's own run answered for it
    ptid = result.processor_transaction_id
    if result.outcome is Outcome.AUTHORIZED:
        return dataclasses.replace(
            changes,
            payment=dataclasses.replace(
                payment,
                status="AUTHORIZED",
                status_reason=None,
                amount_authorized=payment.amount,
                required_action=None,
            ),
            transaction=TransactionChange("AUTHORIZED", None, ptid),
            event=EventChange("AUTHORIZATION_SUCCEEDED", payment.amount, None),
        )
    status, reason = _refused_status(result), _reason(result)
    return dataclasses.replace(
        changes,
        payment=dataclasses.replace(
            payment, status=status, status_reason=reason, required_action=None
        ),
        transaction=TransactionChange(status, reason, ptid),
    )


def _captured(
    changes: Changes, run: Run, payment: Payment, result: Result, succeeded: bool
) -> Changes:
    final = bool(run.input.get("final", True))
    released = payment.capture_reserved - run.amount
    if succeeded:
        captured = payment.amount_captured + run.amount
        status = lifecycle.status_after_capture(payment.amount_authorized, captured)
        return dataclasses.replace(
            changes,
            payment=dataclasses.replace(
                payment,
                status=status,
                status_reason=None,
                amount_captured=captured,
                capture_reserved=released,
            ),
            transaction=TransactionChange(status, None, result.processor_transaction_id),
            event=EventChange("CAPTURE_SUCCEEDED", run.amount, final),
        )
    # Not captured: the reservation is released, and a final capture's closing undone.
    closed = bool(run.input.get("wasClosed")) if final else payment.captures_closed
    return dataclasses.replace(
        changes,
        payment=dataclasses.replace(
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
    if succeeded:
        status = lifecycle.status_after_cancel(payment.amount_captured)
        return dataclasses.replace(
            changes,
            payment=dataclasses.replace(
                payment, status=status, status_reason=None, captures_closed=True
            ),
            transaction=TransactionChange(status, None, result.processor_transaction_id),
            event=EventChange("CANCELLATION_SUCCEEDED", None, None),
        )
    return dataclasses.replace(
        changes,
        payment=dataclasses.replace(
            payment,
            status_reason=_reason(result),
            captures_closed=bool(run.input.get("wasClosed")),
        ),
        transaction=_KNOWN_NOW,
    )


def _refunded(
    changes: Changes, run: Run, payment: Payment, result: Result, succeeded: bool
) -> Changes:
    refunded = run.amount if succeeded else 0
    status, reason = ("SETTLED", None) if succeeded else (_refused_status(result), _reason(result))
    return dataclasses.replace(
        changes,
        payment=dataclasses.replace(
            payment,
            amount_refunded=payment.amount_refunded + refunded,
            refund_reserved=payment.refund_reserved - run.amount,
        ),
        transaction=TransactionChange(status, reason, result.processor_transaction_id),
        refunded_of_capture=(run.amount, refunded) if run.capture_event_id else None,
    )
