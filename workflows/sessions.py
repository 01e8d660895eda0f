"""Client sessions (Primer's): an order's details kept under a client token, before there is a
payment. The token is a bearer secret: only its SHA-256 is stored. It expires (a day by
default) and belongs to one merchant. A card tokenized with it belongs to the session, and a
payment made with that card takes the session's details where the request leaves them out.
"""

from __future__ import annotations

import hashlib
import secrets
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import msgspec
from psycopg.rows import dict_row

from workflows.db import Connection, Q, jsonb
from workflows.errors import PaymentError
from workflows.model import Customer, PaymentOptions


class SessionNotFound(PaymentError):
    """No client session of this merchant has this token (unknown, or expired)."""


class PaymentFieldMissing(PaymentError):
    """A new payment lacks a field that neither its request nor its card's session gives."""

    def __init__(self, field: str) -> None:
        super().__init__(f"{field} is required: neither the request nor the session gives it")
        self.field = field  # the domain's name: order_id, currency_code or amount


class SessionFields(msgspec.Struct, frozen=True, kw_only=True, rename="camel", omit_defaults=True):
    """What a session holds (every field optional: they are known as checkout goes on)."""

    order_id: str | None = None
    currency_code: str | None = None
    amount: int | None = None
    order: dict[str, Any] | None = None  # line items, country, fees, shipping: as given
    customer_id: str | None = None
    customer: Customer | None = None
    metadata: dict[str, Any] | None = None
    payment_options: PaymentOptions | None = None
    # The checkout's own options (allowed card networks, per-method options), passed through.
    checkout_options: dict[str, Any] | None = None


@dataclass(frozen=True)
class Session:
    id: uuid.UUID
    fields: SessionFields
    expires_at: datetime


def _hash(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


def _session(row: dict[str, Any]) -> Session:
    return Session(row["id"], msgspec.convert(row["fields"], SessionFields), row["expires_at"])


async def create(
    conn: Connection, merchant_id: str, mode: str, fields: SessionFields, ttl_seconds: float
) -> tuple[str, Session]:
    """A new session and its client token (shown once)."""
    token = f"cst_{secrets.token_urlsafe(32)}"
    cur = conn.cursor(row_factory=dict_row)
    await cur.execute(
        Q["create_client_session"],
        {
            "merchant_id": merchant_id,
            "id": uuid.uuid4(),
            "mode": mode,
            "token_hash": _hash(token),
            "fields": jsonb(fields),
            "ttl_seconds": ttl_seconds,
        },
    )
    row = await cur.fetchone()
    assert row is not None
    return token, _session(row)


async def find(conn: Connection, merchant_id: str, mode: str, token: str) -> Session:
    """The merchant's session of this mode (a sandbox key's are not a live key's)."""
    cur = conn.cursor(row_factory=dict_row)
    await cur.execute(
        Q["find_client_session"],
        {"merchant_id": merchant_id, "mode": mode, "token_hash": _hash(token)},
    )
    row = await cur.fetchone()
    if row is None:
        raise SessionNotFound()
    return _session(row)


async def update(
    conn: Connection,
    merchant_id: str,
    mode: str,
    token: str,
    change: Callable[[SessionFields], SessionFields],
) -> Session:
    """The session with `change` applied to its fields, the session locked meanwhile."""
    async with conn.transaction():
        cur = conn.cursor(row_factory=dict_row)
        await cur.execute(
            Q["lock_client_session"],
            {"merchant_id": merchant_id, "mode": mode, "token_hash": _hash(token)},
        )
        row = await cur.fetchone()
        if row is None:
            raise SessionNotFound()
        fields = change(_session(row).fields)
        await cur.execute(
            Q["update_client_session"],
            {"merchant_id": merchant_id, "id": row["id"], "fields": jsonb(fields)},
        )
        updated = await cur.fetchone()
    assert updated is not None
    return _session(updated)
