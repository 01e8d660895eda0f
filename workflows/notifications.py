"""Notifications to merchants (webhooks out), as the domain keeps them.

- Endpoints: a merchant's receivers, per mode, each with a signing secret sealed under the master
  key (and, for a day after a rotation, the secret it replaced).
- The outbox: `emit` writes an event, and one delivery per active endpoint of the payment's mode,
  in the transaction of the change that causes it (the payment locked), so no change commits
  without its events and no event outlives a change that rolled back. Each event keeps the
  payment as the change left it (a snapshot, rendered by the API surface at delivery) and a
  sequence per payment.
- Deliveries: claimed by any number of workers (`FOR UPDATE SKIP LOCKED`), one payment's in
  order per endpoint (a later event waits while an earlier one is still pending), retried on a
  schedule (`Schedule`), then dead-lettered; an operator redelivers.

Sending them is HTTP, the gateway's (gateway/webhooks/).
"""

from __future__ import annotations

import enum
import random
import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import msgspec
from psycopg.rows import dict_row

from workflows.credentials import Binding, CredentialBox
from workflows.db import Connection, Database, Q, jsonb
from workflows.errors import DomainError
from workflows.model import PaymentView

# A secret the endpoint replaced still signs (a second signature) this long after a rotation.
ROTATION_OVERLAP = timedelta(hours=24)


class EventType(enum.StrEnum):
    PAYMENT_STATUS = "PAYMENT.STATUS"
    PAYMENT_REFUND = "PAYMENT.REFUND"


class EndpointError(DomainError):
    """An endpoint that cannot be added or changed as asked."""


@dataclass(frozen=True)
class Endpoint:
    merchant_id: str
    id: uuid.UUID
    mode: str
    url: str
    description: str | None
    state: str
    rotated_at: datetime | None
    created_at: datetime


@dataclass(frozen=True)
class Secrets:
    """What signs an endpoint's deliveries now: its secret, and the one it replaced if that
    was less than a day ago."""

    current: str
    previous: str | None


@dataclass(frozen=True)
class Delivery:
    """A claimed delivery: the event, and the endpoint it goes to."""

    merchant_id: str
    event_id: uuid.UUID
    endpoint_id: uuid.UUID
    payment_id: str
    sequence: int
    type: EventType
    view: PaymentView  # the payment as the change left it
    transaction_id: str | None
    attempts: int  # this one's number
    claim: uuid.UUID  # this worker's: only the latest claim records the outcome
    first_attempt_at: datetime | None
    url: str
    mode: str
    description: str | None


@dataclass(frozen=True)
class DeliveryRow:
    merchant_id: str
    event_id: uuid.UUID
    endpoint_id: uuid.UUID
    payment_id: str
    sequence: int
    type: str
    state: str
    attempts: int
    next_attempt_at: datetime | None
    created_at: datetime
    finished_at: datetime | None


@dataclass(frozen=True)
class Attempt:
    number: int
    at: datetime
    status_code: int | None
    latency_ms: int
    error: str | None
    answer: str | None


@dataclass(frozen=True)
class Schedule:
    """When a failed delivery is tried again: `base_seconds`, doubling up to `max_seconds`,
    jittered by up to a half either way, for at least `give_up_seconds` after its first attempt:
    the attempt that fails after that is the last (dead-lettered)."""

    base_seconds: float = 30.0
    max_seconds: float = 3600.0
    give_up_seconds: float = 86400.0

    def next_delay(self, attempts: int, since_first: timedelta, draw: float) -> float | None:
        """Seconds until the next attempt after `attempts` failed ones; None: give up."""
        if since_first.total_seconds() >= self.give_up_seconds:
            return None
        doublings = min(max(attempts - 1, 0), 40)  # (past the cap long before)
        delay = min(self.base_seconds * float(2**doublings), self.max_seconds)
        return delay * (0.5 + draw)  # jitter: [0.5, 1.5)


def _binding(merchant_id: str, endpoint_id: uuid.UUID, mode: str, url: str) -> Binding:
    # The secret opens only for its own endpoint row, URL and mode.
    return Binding(merchant_id, f"webhook:{endpoint_id}", "webhook", {"url": url, "mode": mode})


def new_secret() -> str:
    return f"whsec_{secrets.token_urlsafe(32)}"


async def add_endpoint(
    conn: Connection,
    box: CredentialBox,
    *,
    merchant_id: str,
    mode: str,
    url: str,
    description: str | None,
) -> tuple[Endpoint, str]:
    """A new endpoint and its signing secret (shown once: only its sealed form is kept)."""
    endpoint_id = uuid.uuid4()
    secret = new_secret()
    sealed = box.seal(secret, bound_to=_binding(merchant_id, endpoint_id, mode, url))
    cur = conn.cursor(row_factory=dict_row)
    await cur.execute(
        Q["add_webhook_endpoint"],
        {
            "merchant_id": merchant_id,
            "id": endpoint_id,
            "mode": mode,
            "url": url,
            "description": description,
            "secret_ciphertext": sealed.ciphertext,
            "secret_key_id": sealed.key_id,
        },
    )
    row = await cur.fetchone()
    assert row is not None
    return _endpoint(row), secret


async def list_endpoints(conn: Connection, merchant_id: str | None = None) -> list[Endpoint]:
    cur = conn.cursor(row_factory=dict_row)
    await cur.execute(Q["list_webhook_endpoints"], {"merchant_id": merchant_id})
    return [_endpoint(row) for row in await cur.fetchall()]


async def _endpoint_row(
    conn: Connection, query: str, merchant_id: str, endpoint_id: uuid.UUID, **params: Any
) -> dict[str, Any]:
    """The merchant's endpoint as `query` reads (or changes) it; EndpointError if none."""
    cur = conn.cursor(row_factory=dict_row)
    await cur.execute(Q[query], {"merchant_id": merchant_id, "id": endpoint_id, **params})
    row = await cur.fetchone()
    if row is None:
        raise EndpointError(f"no webhook endpoint {endpoint_id}")
    return row


async def set_endpoint_state(
    conn: Connection, merchant_id: str, endpoint_id: uuid.UUID, state: str
) -> Endpoint:
    row = await _endpoint_row(
        conn, "set_webhook_endpoint_state", merchant_id, endpoint_id, state=state
    )
    return _endpoint(row)


async def rotate_endpoint_secret(
    conn: Connection, box: CredentialBox, merchant_id: str, endpoint_id: uuid.UUID
) -> str:
    """A new signing secret; the one it replaces still signs (second signature) for a day."""
    async with conn.transaction():
        row = await _endpoint_row(conn, "lock_webhook_endpoint", merchant_id, endpoint_id)
        bound = _binding(merchant_id, endpoint_id, row["mode"], row["url"])
        secret = new_secret()
        sealed = box.seal(secret, bound_to=bound)
        await conn.execute(
            Q["rotate_webhook_secret"],
            {
                "merchant_id": merchant_id,
                "id": endpoint_id,
                "secret_ciphertext": sealed.ciphertext,
                "secret_key_id": sealed.key_id,
            },
        )
    return secret


async def signing_secrets(
    conn: Connection, box: CredentialBox, merchant_id: str, endpoint_id: uuid.UUID
) -> Secrets:
    row = await _endpoint_row(conn, "webhook_endpoint_secrets", merchant_id, endpoint_id)
    bound = _binding(merchant_id, endpoint_id, row["mode"], row["url"])
    current = box.open(row["secret_ciphertext"], row["secret_key_id"], bound_to=bound)
    previous = None
    if row["previous_ciphertext"] is not None and row["previous_fresh"]:
        previous = box.open(row["previous_ciphertext"], row["previous_key_id"], bound_to=bound)
    return Secrets(current, previous)


async def reseal_endpoint_secrets(
    conn: Connection, box: CredentialBox, merchant_id: str | None = None
) -> int:
    """Re-seal every endpoint's secrets not sealed under the current master key (part of
    `gateway secret-key rotate`); how many endpoints were re-sealed."""
    cur = conn.cursor(row_factory=dict_row)
    await cur.execute(
        Q["webhook_endpoints_to_reseal"], {"key_id": box.key_id, "merchant_id": merchant_id}
    )
    rows = await cur.fetchall()
    for row in rows:
        bound = _binding(row["merchant_id"], row["id"], row["mode"], row["url"])
        current = box.seal(
            box.open(row["secret_ciphertext"], row["secret_key_id"], bound_to=bound),
            bound_to=bound,
        )
        previous = None
        if row["previous_ciphertext"] is not None:
            previous = box.seal(
                box.open(row["previous_ciphertext"], row["previous_key_id"], bound_to=bound),
                bound_to=bound,
            )
        await conn.execute(
            Q["reseal_webhook_endpoint"],
            {
                "merchant_id": row["merchant_id"],
                "id": row["id"],
                "secret_ciphertext": current.ciphertext,
                "secret_key_id": current.key_id,
                "previous_ciphertext": previous.ciphertext if previous else None,
                "previous_key_id": previous.key_id if previous else None,
            },
        )
    return len(rows)


# ---------------------------------------------------------------- the outbox


async def emit(
    conn: Connection,
    merchant_id: str,
    mode: str,
    payment_id: str,
    kind: EventType,
    view: Any,
    transaction_id: str | None = None,
    *,
    endpoints: bool | None = None,
) -> None:
    """The event of a change, in the change's transaction (the payment locked), with a delivery
    to each of the merchant's active endpoints of the payment's mode; nothing if it has none.
    `view`: the payment as the change left it, or a callable reading it (awaited only when
    there is an endpoint to deliver to). `endpoints`: whether there is one, when the
    transaction has read it already (with the payment it locked)."""
    if endpoints is None:
        cur = await conn.execute(
            Q["has_webhook_endpoints"], {"merchant_id": merchant_id, "mode": mode}
        )
        row = await cur.fetchone()
        endpoints = bool(row and row[0])
    if not endpoints:
        return
    if callable(view):
        view = await view()
    await conn.execute(
        Q["emit_webhook_event"],
        {
            "merchant_id": merchant_id,
            "id": uuid.uuid4(),
            "payment_id": payment_id,
            "mode": mode,
            "type": kind.value,
            "snapshot": jsonb(view),
            "transaction_id": transaction_id,
        },
    )


# ---------------------------------------------------------------- deliveries


async def claim_deliveries(db: Database, limit: int, lease_seconds: float) -> list[Delivery]:
    """Due deliveries, each for this worker alone until its claim runs out (then due again:
    a worker that dies mid-delivery leaves it to another, delivered at least once)."""
    async with db.connection() as conn:
        cur = conn.cursor(row_factory=dict_row)
        await cur.execute(
            Q["claim_webhook_deliveries"], {"limit": limit, "lease_seconds": lease_seconds}
        )
        rows = await cur.fetchall()
    return [
        Delivery(
            merchant_id=row["merchant_id"],
            event_id=row["event_id"],
            endpoint_id=row["endpoint_id"],
            payment_id=row["payment_id"],
            sequence=row["sequence"],
            type=EventType(row["type"]),
            view=msgspec.convert(row["snapshot"], PaymentView),
            transaction_id=row["transaction_id"],
            attempts=row["attempts"],
            claim=row["claim"],
            first_attempt_at=row["first_attempt_at"],
            url=row["url"],
            mode=row["mode"],
            description=row["description"],
        )
        for row in rows
    ]


async def record_attempt(
    db: Database,
    delivery: Delivery,
    *,
    status_code: int | None,
    latency_ms: int,
    error: str | None,
    answer: str | None,
    schedule: Schedule,
    draw: float | None = None,
) -> str:
    """The attempt's answer, and what becomes of the delivery: delivered (a 2xx), due again on
    the schedule, or dead. Its new state."""
    delivered = status_code is not None and 200 <= status_code < 300
    async with db.transaction() as conn:
        cur = await conn.execute(
            Q["delivery_age"],
            {
                "merchant_id": delivery.merchant_id,
                "event_id": delivery.event_id,
                "endpoint_id": delivery.endpoint_id,
            },
        )
        row = await cur.fetchone()
        since_first = row[0] if row and row[0] is not None else timedelta(0)
        delay = None
        if not delivered:
            delay = schedule.next_delay(
                delivery.attempts, since_first, random.random() if draw is None else draw
            )
        state = "delivered" if delivered else ("pending" if delay is not None else "dead")
        await conn.execute(
            Q["record_webhook_attempt"],
            {
                "merchant_id": delivery.merchant_id,
                "event_id": delivery.event_id,
                "endpoint_id": delivery.endpoint_id,
                "number": delivery.attempts,
                "claim": delivery.claim,
                "status_code": status_code,
                "latency_ms": latency_ms,
                "error": error,
                "answer": answer,
                "state": state,
                "retry_after_seconds": delay or 0,
            },
        )
    return state


async def list_deliveries(
    conn: Connection,
    *,
    merchant_id: str | None = None,
    endpoint_id: uuid.UUID | None = None,
    payment_id: str | None = None,
    state: str | None = None,
    limit: int = 50,
) -> list[DeliveryRow]:
    cur = conn.cursor(row_factory=dict_row)
    await cur.execute(
        Q["list_webhook_deliveries"],
        {
            "merchant_id": merchant_id,
            "endpoint_id": endpoint_id,
            "payment_id": payment_id,
            "state": state,
            "limit": limit,
        },
    )
    return [DeliveryRow(**row) for row in await cur.fetchall()]


async def attempts_of(
    conn: Connection, merchant_id: str, event_id: uuid.UUID, endpoint_id: uuid.UUID
) -> list[Attempt]:
    cur = conn.cursor(row_factory=dict_row)
    await cur.execute(
        Q["webhook_attempts"],
        {"merchant_id": merchant_id, "event_id": event_id, "endpoint_id": endpoint_id},
    )
    return [Attempt(**row) for row in await cur.fetchall()]


async def redeliver(
    conn: Connection,
    *,
    event_id: uuid.UUID | None = None,
    failed_since: datetime | None = None,
    merchant_id: str | None = None,
) -> int:
    """Deliver again, now and on a fresh schedule: one event (to each of its endpoints), or
    every delivery dead-lettered since a time. How many deliveries were put back."""
    if (event_id is None) == (failed_since is None):
        raise EndpointError("give an event id, or a time to redeliver the failed ones since")
    cur = await conn.execute(
        Q["redeliver_webhooks"],
        {"event_id": event_id, "failed_since": failed_since, "merchant_id": merchant_id},
    )
    return len(await cur.fetchall())


def _endpoint(row: dict[str, Any]) -> Endpoint:
    return Endpoint(
        merchant_id=row["merchant_id"],
        id=row["id"],
        mode=row["mode"],
        url=row["url"],
        description=row["description"],
        state=row["state"],
        rotated_at=row["rotated_at"],
        created_at=row["created_at"],
    )
