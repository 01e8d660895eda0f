"""The payment domain's records, as read from PostgreSQL."""

from __future__ import annotations

import dataclasses
import uuid
from datetime import datetime
from typing import Any, TypeVar

R = TypeVar("R")


def from_row(cls: type[R], row: dict[str, Any]) -> R:
    names = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    return cls(**{name: value for name, value in row.items() if name in names})


@dataclasses.dataclass(frozen=True, kw_only=True)
class Payment:
    merchant_id: str
    id: str
    mode: str
    status: str
    status_reason: dict[str, Any] | None
    order_id: str
    currency_code: str
    amount: int
    customer_id: str | None
    customer: dict[str, Any] | None
    order_details: dict[str, Any] | None
    metadata: dict[str, Any] | None
    payment_options: dict[str, Any] | None
    payment_method_token: str
    card_token_type: str
    card: dict[str, Any] | None
    processor: str
    processor_account: str | None
    processor_merchant_id: str
    amount_authorized: int
    amount_captured: int
    amount_refunded: int
    capture_reserved: int
    refund_reserved: int
    captures_closed: bool
    required_action: dict[str, Any] | None
    created_at: datetime
    updated_at: datetime

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


@dataclasses.dataclass(frozen=True, kw_only=True)
class Transaction:
    id: str
    payment_id: str
    type: str
    amount: int
    currency_code: str
    order_id: str | None
    reason: str | None
    processor_transaction_id: str | None
    processor_status: str
    status_reason: dict[str, Any] | None
    outcome_unknown: bool
    created_at: datetime


@dataclasses.dataclass(frozen=True, kw_only=True)
class Event:
    id: uuid.UUID
    transaction_id: str
    type: str
    amount: int | None
    final: bool | None
    created_at: datetime


@dataclasses.dataclass(frozen=True, kw_only=True)
class PaymentView:
    """A payment with its transactions and their events: what the API shows."""

    payment: Payment
    transactions: list[Transaction]
    events: list[Event]
    processor_name: str


@dataclasses.dataclass(frozen=True, kw_only=True)
class Run:
    merchant_id: str
    id: str
    payment_id: str
    kind: str
    idempotency_key: str | None
    input: dict[str, Any]
    amount: int
    transaction_id: str
    capture_event_id: uuid.UUID | None
    processor_key: str
    state: str
    recovery_point: str
    attempts: int
    recoveries: int
    lease_owner: str | None
    lease_expires_at: datetime | None
    next_attempt_at: datetime | None
    outcome: dict[str, Any] | None
    last_error: str | None
    created_at: datetime
    updated_at: datetime


@dataclasses.dataclass(frozen=True, kw_only=True)
class HistoryEntry:
    at: datetime
    event: str
    detail: dict[str, Any]
