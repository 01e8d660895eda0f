"""The operator API's bodies and queries, as msgspec Structs: the handlers encode these, and the
OpenAPI document is generated from them.

Answers keep a field that has no value as null (operators read these with jq), except where a
field is named as left out (`UNSET`).
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any, Literal, get_args

import msgspec
from msgspec import UNSET, Meta, UnsetType

from workflows import notifications, routing
from workflows.model import HistoryEntry, RecoveryPoint, Run, RunState
from workflows.rules import RuleSet

# What an id can look like: anything else (a NUL, a megabyte) names nothing.
Id = Annotated[str, Meta(pattern="^[A-Za-z0-9_-]{1,64}$")]


def _at(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment else None


# ------------------------------------------------------------------ workflow runs


class WorkflowRunQuery(msgspec.Struct, frozen=True, kw_only=True):
    """GET /admin/workflows: runs in a state, or a payment's runs."""

    state: RunState | None = None
    payment: Id | None = None


class ResolveRun(msgspec.Struct, forbid_unknown_fields=True):
    """What the operator found at the processor, when the processor cannot answer itself."""

    outcome: Literal["succeeded", "failed"] | None = None


class RunHistoryEntry(msgspec.Struct, frozen=True, kw_only=True):
    at: str
    event: str
    detail: dict[str, Any]


class WorkflowRun(msgspec.Struct, frozen=True, kw_only=True):
    """A workflow run; with its history when one run is asked for."""

    id: str
    merchantId: str
    paymentId: str
    kind: str
    state: RunState
    recoveryPoint: RecoveryPoint | None
    amount: int | None
    attempts: int
    recoveries: int
    processorKey: str | None
    processorAccount: str | None
    leaseOwner: str | None
    leaseExpiresAt: str | None
    nextAttemptAt: str | None
    outcome: dict[str, Any] | None
    lastError: str | None
    createdAt: str
    updatedAt: str
    history: list[RunHistoryEntry] | UnsetType = UNSET

    @classmethod
    def of(cls, run: Run, history: list[HistoryEntry] | None = None) -> WorkflowRun:
        return cls(
            id=run.id,
            merchantId=run.merchant_id,
            paymentId=run.payment_id,
            kind=run.kind,
            state=run.state,
            recoveryPoint=run.recovery_point,
            amount=run.amount,
            attempts=run.attempts,
            recoveries=run.recoveries,
            processorKey=run.processor_key,
            processorAccount=run.account,
            leaseOwner=run.lease_owner,
            leaseExpiresAt=_at(run.lease_expires_at),
            nextAttemptAt=_at(run.next_attempt_at),
            outcome=None if run.outcome is None else msgspec.to_builtins(run.outcome),
            lastError=run.last_error,
            createdAt=run.created_at.isoformat(),
            updatedAt=run.updated_at.isoformat(),
            history=UNSET
            if history is None
            else [
                RunHistoryEntry(at=entry.at.isoformat(), event=entry.event, detail=entry.detail)
                for entry in history
            ],
        )


class WorkflowRunList(msgspec.Struct, frozen=True):
    data: list[WorkflowRun]


# ------------------------------------------------------------------ routing rules


class PaymentToExplain(msgspec.Struct, frozen=True):
    """What `explain` reads of a POST /payments body."""

    currencyCode: Annotated[str, Meta(pattern=r"^[A-Z]{3}$")]
    amount: Annotated[int, Meta(ge=0, le=2**63 - 1)]
    paymentMethodToken: Annotated[str, Meta(max_length=255)] = ""
    customerId: Annotated[str, Meta(max_length=255)] | None = None
    metadata: dict[str, Any] | None = None
    order: dict[str, Any] | None = None  # its countryCode, for order_country


class RulesVersion(msgspec.Struct, frozen=True, kw_only=True):
    version: int
    createdBy: str
    createdAt: str
    rules: RuleSet | None

    @classmethod
    def of(cls, version: routing.RulesVersion) -> RulesVersion:
        return cls(
            version=version.version,
            createdBy=version.created_by,
            createdAt=version.created_at.isoformat(),
            rules=routing.rules_of(version.rules),
        )


class MerchantRules(msgspec.Struct, frozen=True, kw_only=True):
    """A merchant's rules in force (`rules` null, and no version, when it has none)."""

    merchant: str
    rules: RuleSet | None
    version: int | UnsetType = UNSET
    createdBy: str | UnsetType = UNSET
    createdAt: str | UnsetType = UNSET

    @classmethod
    def of(cls, merchant: str, version: routing.RulesVersion | None) -> MerchantRules:
        if version is None:
            return cls(merchant=merchant, rules=None)
        shown = RulesVersion.of(version)
        return cls(
            merchant=merchant,
            rules=shown.rules,
            version=shown.version,
            createdBy=shown.createdBy,
            createdAt=shown.createdAt,
        )


class RulesHistory(msgspec.Struct, frozen=True):
    merchant: str
    data: list[RulesVersion]


class Branch(msgspec.Struct, frozen=True):
    percent: int
    accounts: list[str]


class Explanation(msgspec.Struct, frozen=True, kw_only=True):
    """Which rule a payment would match, and the accounts it would be tried on."""

    merchant: str
    version: int | None
    rule: str | None
    branches: list[Branch]


# ------------------------------------------------------------------ webhooks


class NewEndpoint(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    url: Annotated[str, Meta(pattern=r"^https?://\S+$", max_length=2048)]
    mode: Literal["sandbox", "live"] = "sandbox"
    description: Annotated[str, Meta(max_length=255)] | None = None


class Redelivery(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """One event again (`eventId`), or every dead-lettered delivery since `failedSince`."""

    eventId: uuid.UUID | None = None
    failedSince: datetime | None = None


class WebhookEndpoint(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    merchantId: str
    mode: str
    url: str
    description: str | None
    state: Annotated[str, Meta(extra_json_schema={"enum": ["active", "disabled"]})]
    rotatedAt: str | None
    createdAt: str
    # Its signing secret: in the answer that creates the endpoint only (it is stored sealed).
    secret: str | UnsetType = UNSET

    @classmethod
    def of(cls, e: notifications.Endpoint, secret: str | None = None) -> WebhookEndpoint:
        return cls(
            id=str(e.id),
            merchantId=e.merchant_id,
            mode=e.mode,
            url=e.url,
            description=e.description,
            state=e.state,
            rotatedAt=_at(e.rotated_at),
            createdAt=e.created_at.isoformat(),
            secret=UNSET if secret is None else secret,
        )


class WebhookEndpointList(msgspec.Struct, frozen=True):
    data: list[WebhookEndpoint]


class RotatedSecret(msgspec.Struct, frozen=True):
    """The endpoint's new signing secret (the old one signs too, for 24 h)."""

    id: str
    secret: str


DeliveryState = Literal["pending", "delivered", "dead"]


class DeliveryQuery(msgspec.Struct, frozen=True, kw_only=True):
    """GET /admin/webhooks/{merchant}/deliveries."""

    state: DeliveryState | None = None
    limit: Annotated[int, Meta(ge=1, le=500)] = 50
    endpoint: uuid.UUID | None = None
    payment: Id | None = None


class Delivery(msgspec.Struct, frozen=True, kw_only=True):
    eventId: str
    endpointId: str
    paymentId: str
    sequence: int
    type: str
    state: Annotated[str, Meta(extra_json_schema={"enum": list(get_args(DeliveryState))})]
    attempts: int
    nextAttemptAt: str | None
    createdAt: str
    finishedAt: str | None

    @classmethod
    def of(cls, r: notifications.DeliveryRow) -> Delivery:
        return cls(
            eventId=str(r.event_id),
            endpointId=str(r.endpoint_id),
            paymentId=r.payment_id,
            sequence=r.sequence,
            type=r.type,
            state=r.state,
            attempts=r.attempts,
            nextAttemptAt=_at(r.next_attempt_at),
            createdAt=r.created_at.isoformat(),
            finishedAt=_at(r.finished_at),
        )


class DeliveryList(msgspec.Struct, frozen=True):
    data: list[Delivery]


class DeliveryAttempt(msgspec.Struct, frozen=True, kw_only=True):
    number: int
    at: str
    statusCode: int | None
    latencyMs: int
    error: str | None
    answer: str | None

    @classmethod
    def of(cls, a: notifications.Attempt) -> DeliveryAttempt:
        return cls(
            number=a.number,
            at=a.at.isoformat(),
            statusCode=a.status_code,
            latencyMs=a.latency_ms,
            error=a.error,
            answer=a.answer,
        )


class DeliveryAttemptList(msgspec.Struct, frozen=True):
    data: list[DeliveryAttempt]


class Redelivered(msgspec.Struct, frozen=True):
    redelivered: int
