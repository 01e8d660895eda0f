"""Stripe's answers, as far as the connector reads them (unknown fields are ignored)."""

from __future__ import annotations

import msgspec


class IntentRef(msgspec.Struct):
    id: str | None = None


class Error(msgspec.Struct):
    type: str | None = None
    code: str | None = None
    decline_code: str | None = None
    message: str | None = None
    payment_intent: IntentRef | None = None


class ErrorBody(msgspec.Struct):
    error: Error = msgspec.field(default_factory=Error)


class PaymentIntent(msgspec.Struct):
    id: str | None = None
    status: str = ""
    amount: int = 0
    amount_received: int = 0
    last_payment_error: Error | None = None
    metadata: dict[str, str] = msgspec.field(default_factory=dict)


class SearchResult(msgspec.Struct):
    data: list[PaymentIntent] = msgspec.field(default_factory=list)
    has_more: bool = False
    next_page: str | None = None


class Refund(msgspec.Struct):
    id: str | None = None
    amount: int = 0
    status: str | None = None
    failure_reason: str | None = None
    metadata: dict[str, str] = msgspec.field(default_factory=dict)


class RefundList(msgspec.Struct):
    data: list[Refund] = msgspec.field(default_factory=list)
    has_more: bool = False


class EventObject(msgspec.Struct):
    """What an event is about: a PaymentIntent, a Charge or a Refund (the fields read)."""

    id: str | None = None
    object: str | None = None
    payment_intent: str | None = None  # a charge's or a refund's
    metadata: dict[str, str] = msgspec.field(default_factory=dict)


class EventData(msgspec.Struct):
    object: EventObject = msgspec.field(default_factory=EventObject)


class Event(msgspec.Struct):
    id: str
    type: str
    data: EventData = msgspec.field(default_factory=EventData)
