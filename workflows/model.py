"""The payment domain's own shapes: statuses as enums, and typed records of what is stored.

Nothing here is any API's wire format. What the domain keeps as JSON (a card, a status reason, a
run's input) is these types' own encoding; each API surface renders them in its shape.
"""

from __future__ import annotations

import dataclasses
import enum
import uuid
from datetime import datetime
from typing import Any, TypeVar

import msgspec

from processors.base import Card, StatusReason

__all__ = ["Card", "StatusReason"]  # re-exported: the domain's words for them


class PaymentStatus(enum.StrEnum):
    PENDING = "PENDING"
    FAILED = "FAILED"
    AUTHORIZED = "AUTHORIZED"
    SETTLING = "SETTLING"
    PARTIALLY_SETTLED = "PARTIALLY_SETTLED"
    SETTLED = "SETTLED"
    DECLINED = "DECLINED"
    CANCELLED = "CANCELLED"


class TransactionType(enum.StrEnum):
    SALE = "SALE"
    REFUND = "REFUND"


class EventType(enum.StrEnum):
    AUTHORIZATION_SUCCEEDED = "AUTHORIZATION_SUCCEEDED"
    CAPTURE_SUCCEEDED = "CAPTURE_SUCCEEDED"
    CANCELLATION_SUCCEEDED = "CANCELLATION_SUCCEEDED"


class RunKind(enum.StrEnum):
    AUTHORIZE = "authorize"
    CAPTURE = "capture"
    CANCEL = "cancel"
    REFUND = "refund"
    ADJUST = "adjust"  # an authorization's amount changed (ESTIMATED, incremental)


class RunState(enum.StrEnum):
    RUNNING = "running"  # to be driven (now, or when due)
    SUCCEEDED = "succeeded"
    FAILED = "failed"  # a definitive no
    STUCK = "stuck"  # recoveries exhausted: an operator replays it

    @property
    def finished(self) -> bool:
        return self in (RunState.SUCCEEDED, RunState.FAILED)


class RecoveryPoint(enum.StrEnum):
    CALL_PROCESSOR = "call_processor"  # (again) with the same processor key
    AWAIT_ACTION = "await_action"  # the customer acts (3-D Secure): ask for the status
    AWAIT_SETTLEMENT = "await_settlement"  # a capture settles later: ask for the status
    FINISHED = "finished"

    @property
    def asks_status(self) -> bool:
        return self in (RecoveryPoint.AWAIT_ACTION, RecoveryPoint.AWAIT_SETTLEMENT)


class _Doc(msgspec.Struct, frozen=True, kw_only=True, rename="camel", omit_defaults=True):
    """A value the domain keeps as JSON, in its own (camelCase) encoding."""


class Address(_Doc, frozen=True):
    first_name: str | None = None
    last_name: str | None = None
    address_line1: str | None = None
    address_line2: str | None = None
    city: str | None = None
    state: str | None = None
    country_code: str | None = None
    postal_code: str | None = None


class Customer(_Doc, frozen=True):
    email_address: str | None = None
    mobile_number: str | None = None
    first_name: str | None = None
    last_name: str | None = None
    billing_address: Address | None = None
    shipping_address: Address | None = None
    tax_id: str | None = None
    national_document_id: str | None = None


class PaymentOptions(_Doc, frozen=True):
    vault_on_success: bool | None = None
    vault_on3_ds: bool | None = msgspec.field(default=None, name="vaultOn3DS")
    vault_on_agreement: bool | None = None
    descriptor: str | None = None
    payment_type: str | None = None
    authorization_type: str | None = None
    first_payment_reason: str | None = None


class RequiredAction(_Doc, frozen=True):
    name: str  # e.g. "3DS_AUTHENTICATION"
    description: str


class _Record(msgspec.Struct, frozen=True, kw_only=True, rename="camel"):
    """A value kept on a run for operators: every field written, null included."""


class RunOutcome(_Record, frozen=True):
    """What the processor answered a run (kept on the run, for operators)."""

    outcome: str
    processor_transaction_id: str | None = None
    reason: StatusReason | None = None


# A run's input: what the request asked for, beyond the run's amount.
class AuthorizeInput(_Record, frozen=True):
    capture_on_create: bool = False
    rule: str | None = None  # the routing rule that chose the account (None: no rules)
    accounts: list[str] = msgspec.field(default_factory=list)  # as the rule ordered them
    # Accounts of the rule that could not be tried when the payment was created, and why.
    passed_over: dict[str, str] = msgspec.field(default_factory=dict)


class CaptureInput(_Record, frozen=True):
    amount: int | None = None
    final: bool = True
    was_closed: bool = False  # captures were closed before this one (a final one closes them)


class CancelInput(_Record, frozen=True):
    reason: str | None = None
    was_closed: bool = False


class RefundInput(_Record, frozen=True):
    amount: int | None = None
    reason: str | None = None
    order_id: str | None = None
    note: str | None = None  # a surface's free text beside the reason (Medusa's note)


class AdjustInput(_Record, frozen=True):
    previous: int  # the amount authorized before (held from captures while it is adjusted)


RunInput = AuthorizeInput | CaptureInput | CancelInput | RefundInput | AdjustInput
INPUTS: dict[RunKind, type[RunInput]] = {
    RunKind.AUTHORIZE: AuthorizeInput,
    RunKind.CAPTURE: CaptureInput,
    RunKind.CANCEL: CancelInput,
    RunKind.REFUND: RefundInput,
    RunKind.ADJUST: AdjustInput,
}


class Payment(msgspec.Struct, frozen=True, kw_only=True):
    merchant_id: str
    id: str
    mode: str
    status: PaymentStatus
    status_reason: StatusReason | None
    order_id: str
    currency_code: str
    amount: int
    customer_id: str | None
    customer: Customer | None
    order_details: dict[str, Any] | None
    metadata: dict[str, Any] | None
    payment_options: PaymentOptions | None
    payment_method_token: str
    card: Card | None  # None: the processor's own token; the gateway never saw the card
    processor: str  # the kind (processors.registry)
    processor_account: str | None  # None: the built-in processor of that kind
    processor_merchant_id: str
    amount_authorized: int
    amount_captured: int
    amount_refunded: int
    capture_reserved: int
    refund_reserved: int
    captures_closed: bool
    required_action: RequiredAction | None
    created_at: datetime
    updated_at: datetime
    sale_id: str | None = None  # the SALE in force (None: held by its routing rule)

    @property
    def capturable(self) -> int:
        """What is left to capture, counting captures in flight."""
        if self.captures_closed:
            return 0
        return self.amount_authorized - self.amount_captured - self.capture_reserved

    @property
    def refundable(self) -> int:
        """What is left to refund, counting refunds in flight."""
        return self.amount_captured - self.amount_refunded - self.refund_reserved


class Transaction(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    payment_id: str
    type: TransactionType
    amount: int
    currency_code: str
    order_id: str | None
    reason: str | None
    processor_transaction_id: str | None
    processor_status: PaymentStatus
    status_reason: StatusReason | None
    outcome_unknown: bool
    created_at: datetime
    # The account that handled it (None: rows from before migration 0018, the payment's).
    processor: str | None = None
    processor_account: str | None = None


class Event(msgspec.Struct, frozen=True, kw_only=True):
    id: uuid.UUID
    transaction_id: str
    type: EventType
    amount: int | None
    final: bool | None
    created_at: datetime


class PaymentView(msgspec.Struct, frozen=True, kw_only=True):
    """A payment with its transactions and (when asked for) their events."""

    payment: Payment
    transactions: list[Transaction]
    events: list[Event]
    processor_name: str  # as merchants see it (processors.registry)


@dataclasses.dataclass(frozen=True, kw_only=True)
class Run:
    merchant_id: str
    id: str
    payment_id: str
    kind: RunKind
    idempotency_key: str | None
    input: RunInput
    amount: int
    transaction_id: str
    capture_event_id: uuid.UUID | None
    processor_key: str
    state: RunState
    recovery_point: RecoveryPoint
    attempts: int
    recoveries: int
    lease_owner: str | None
    lease_expires_at: datetime | None
    next_attempt_at: datetime | None
    outcome: RunOutcome | None
    last_error: str | None
    created_at: datetime
    updated_at: datetime
    # Whether any call may have reached the processor (False: each failed before it did).
    may_have_reached_processor: bool = True
    # Taken over from a holder whose lease ran out, which may still be sending until then.
    quiet_until: datetime | None = None
    # Of the merchant's request that made it (its idempotency key's), to tell a repeat from reuse.
    request_fingerprint: bytes | None = None
    # The processor account its transaction went to, as read for operators (None: not read).
    account: str | None = None


class HistoryEntry(msgspec.Struct, frozen=True, kw_only=True):
    at: datetime
    event: str
    detail: dict[str, Any]


R = TypeVar("R")


def from_row(cls: type[R], row: dict[str, Any]) -> R:
    """A record from a row (extra columns ignored; JSON columns become their types)."""
    if cls is Run:
        kind = RunKind(row["kind"])
        names = {f.name for f in dataclasses.fields(Run)}
        values = {name: value for name, value in row.items() if name in names}
        values.update(
            kind=kind,
            state=RunState(row["state"]),
            recovery_point=RecoveryPoint(row["recovery_point"]),
            input=msgspec.convert(row["input"] or {}, INPUTS[kind]),
            outcome=None if row["outcome"] is None else msgspec.convert(row["outcome"], RunOutcome),
        )
        return Run(**values)  # type: ignore[return-value]
    return msgspec.convert(row, cls)
