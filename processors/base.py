"""What every processor answers, in one vocabulary.

Every processor implements the same verbs (authorize, capture, cancel, refund, status) and
returns a `Result`: a canonical `Outcome` plus, for declines and failures, a closed decline
vocabulary (the codes Primer uses, which every processor maps into). A decline is a value, never
an exception. Exceptions (`processors.errors`) are for transport only: `TransientError` (nothing
happened, safe to retry) and `OutcomeUnknown` (the request may have been done; retry with the
same key or ask for the status).

Every call carries the processor idempotency key the engine committed before the first attempt;
a processor must do the operation at most once per key, for as long as it declares it honours
the key (`key_lifetime`). Past that, a repeat could act twice, so the engine asks first
(`status`, per verb) and re-sends only on a definite "did not happen".
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, Protocol

import httpx
import msgspec
from psycopg_pool import AsyncConnectionPool


class Outcome(enum.StrEnum):
    AUTHORIZED = "AUTHORIZED"
    PENDING = "PENDING"  # needs an action (3DS) or an asynchronous answer
    CAPTURED = "CAPTURED"
    SETTLING = "SETTLING"  # capture accepted, settlement confirmed later
    CANCELLED = "CANCELLED"
    REFUNDED = "REFUNDED"
    DECLINED = "DECLINED"
    FAILED = "FAILED"
    NOT_FOUND = "NOT_FOUND"  # status: the operation asked about did not happen
    # status: the processor's figures are not the gateway's (the payment was changed outside
    # it, e.g. captured in the processor's dashboard): for an operator to reconcile, never
    # taken as this operation's outcome.
    MISMATCH = "MISMATCH"


class StatusReasonType(enum.StrEnum):
    """Primer's PaymentStatusTypeEnum."""

    APPLICATION_ERROR = "APPLICATION_ERROR"
    GATEWAY_REJECTED = "GATEWAY_REJECTED"
    GATEWAY_TIMEOUT = "GATEWAY_TIMEOUT"
    ISSUER_DECLINED = "ISSUER_DECLINED"


class DeclineType(enum.StrEnum):
    SOFT_DECLINE = "SOFT_DECLINE"
    HARD_DECLINE = "HARD_DECLINE"


class DeclineCode(enum.StrEnum):
    """Primer's TransactionDeclineReasonV2Enum: the closed set every processor maps into."""

    ERROR = "ERROR"
    INVALID_CARD_NUMBER = "INVALID_CARD_NUMBER"
    EXPIRED_CARD = "EXPIRED_CARD"
    LOST_OR_STOLEN_CARD = "LOST_OR_STOLEN_CARD"
    SUSPECTED_FRAUD = "SUSPECTED_FRAUD"
    UNKNOWN = "UNKNOWN"
    DECLINED = "DECLINED"
    REFER_TO_CARD_ISSUER = "REFER_TO_CARD_ISSUER"
    DO_NOT_HONOR = "DO_NOT_HONOR"
    INSUFFICIENT_FUNDS = "INSUFFICIENT_FUNDS"
    WITHDRAWAL_LIMIT_EXCEEDED = "WITHDRAWAL_LIMIT_EXCEEDED"
    ISSUER_TEMPORARILY_UNAVAILABLE = "ISSUER_TEMPORARILY_UNAVAILABLE"
    AUTHENTICATION_REQUIRED = "AUTHENTICATION_REQUIRED"


class StatusReason(msgspec.Struct, frozen=True, rename="camel", omit_defaults=True):
    """Why an operation was refused or is not settled: the gateway's closed vocabulary (each API
    surface renders it in its own shape)."""

    type: StatusReasonType
    decline_type: DeclineType | None = None
    code: DeclineCode | None = None
    message: str | None = None


@dataclass(frozen=True)
class Result:
    outcome: Outcome
    # The processor's id of the operation: the same in every answer about it (its first one is
    # the one the gateway keeps, and follow-ups are sent with it).
    processor_transaction_id: str | None = None
    reason: StatusReason | None = None
    required_action: str | None = None  # e.g. "3DS_AUTHENTICATION" with PENDING

    @property
    def definitive_no(self) -> bool:
        return self.outcome in (Outcome.DECLINED, Outcome.FAILED)


class Card(msgspec.Struct, frozen=True, kw_only=True, rename="camel", omit_defaults=True):
    """The card data the gateway kept for a token (never the full number, never the CVV)."""

    network: str
    first6: str
    last4: str
    expiration_month: str
    expiration_year: str
    cardholder_name: str | None = msgspec.field(default=None, name="holder")
    issuer_country: str | None = None  # ISO 3166 alpha-2, where known (BIN data)


@dataclass(frozen=True)
class Call:
    """One processor call: the operation's key, what it is about, and the context it needs."""

    processor_key: str
    reference: str  # our payment id, for the processor's records
    amount: int = 0
    currency_code: str = ""
    card: Card | None = None
    payment_method_token: str | None = None
    # The processor's id of the authorization, for follow-ups.
    processor_transaction_id: str | None = None
    final: bool = True
    verb: str = ""  # for status: which operation's outcome is asked for
    # For a capture's or refund's status question, read against the processor's amounts: what
    # the gateway has recorded, and what other operations of the payment have in flight (whose
    # outcome is not known yet).
    captured_before: int = 0
    captures_in_flight: int = 0
    refunded_before: int = 0
    refunds_in_flight: int = 0
    # For status questions: how long ago the key was first sent (0: just now).
    key_age: timedelta = timedelta(0)
    metadata: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Notice:
    """A processor's event (its webhook), as the gateway reads it: which of its operations it
    may concern. Never taken as an outcome: it only says whom to ask."""

    event_id: str
    type: str
    object_id: str | None  # the processor's id of what changed (an authorization, a refund)
    payment_id: str | None  # the gateway's, when the processor echoes it (metadata)
    processor_key: str | None  # likewise


class Capabilities(msgspec.Struct, frozen=True, kw_only=True):
    """What a processor (as one account is set up) can do beyond the five verbs."""

    # Several partial captures of one authorization (a non-final capture keeps the rest).
    multicapture: bool = False
    # An authorization's amount changed after the fact (`adjust`: an ESTIMATED one).
    incremental_authorization: bool = False


class OwnTokens(msgspec.Struct, frozen=True, kw_only=True):
    """A processor whose payments take its own payment-method tokens, passed through untouched
    (the gateway never sees the card): what they look like, for a clear refusal."""

    prefix: str  # e.g. "pm_"
    name: str  # e.g. "a Stripe PaymentMethod id"


@dataclass(frozen=True)
class Resources:
    """What a processor may share with the others of its process."""

    pool: AsyncConnectionPool  # the gateway's database (the sandbox keeps its ledger there)
    http: httpx.AsyncClient  # one pooled HTTP client for every connector


class Processor(Protocol):
    capabilities: Capabilities

    def key_lifetime(self, call: Call) -> timedelta | None:
        """How long the processor honours `call`'s idempotency key (None: for ever). After
        that a repeat with the key may be executed as a new request."""
        ...

    async def authorize(self, call: Call) -> Result: ...
    async def capture(self, call: Call) -> Result: ...
    async def cancel(self, call: Call) -> Result: ...
    async def refund(self, call: Call) -> Result: ...

    async def adjust(self, call: Call) -> Result:
        """The authorization `call.processor_transaction_id` changed to `call.amount` in all
        (more or less than before): AUTHORIZED, or a decline. Only where the account's
        `capabilities.incremental_authorization` says so."""
        ...

    async def resume(self, call: Call, resume_token: str) -> Result:
        """The customer has done what an authorization waited for (3-D Secure, handed back by
        the checkout as `resume_token`): the authorization's answer now, as `status` gives it."""
        ...

    async def status(self, call: Call) -> Result:
        """Did the operation `call.verb` made with `call.processor_key` happen, and with what
        result? Its outcome if it did; NOT_FOUND only when it definitely did not; MISMATCH when
        the processor's figures are not the gateway's. Raises `OutcomeUnknown` when the
        processor cannot tell (yet)."""
        ...
