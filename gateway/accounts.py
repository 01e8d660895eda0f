"""API keys: creation, listing, revocation, and authentication of a presented key.

A key reads `gw_<kind>_<id>_<secret>`: `kind` is `sandbox`, `live` or `operator`, so a glance tells
which it is; `id` (16 base32 characters) is stored in clear and finds the row; `secret` is 256
random bits, stored only as its SHA-256 and compared in constant time. A slow password hash would
add nothing: the secret is random, not chosen by a person.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

import psycopg
from psycopg.rows import dict_row

from gateway import GatewayError
from gateway.db import QUERIES
from workflows.merchants import Merchant

Mode = Literal["sandbox", "live"]
Kind = Literal["merchant", "operator"]

# Primer's scope names. A merchant key has all of them unless created with fewer.
SCOPES = (
    "transactions:authorize",
    "transactions:capture",
    "transactions:cancel",
    "transactions:refund",
    "transactions:retrieve",
    "payment_instrument:read",
    "payment_instrument:write",
)
_KEY_PREFIX = "gw"


class AccountError(GatewayError):
    """A merchant or key operation could not be done."""


class UnknownScope(AccountError):
    """A scope is not one of Primer's scope names."""


class UnknownKey(AccountError):
    """No API key has this id."""


@dataclass(frozen=True)
class NewKey:
    id: str
    kind: Kind
    mode: Mode | None
    merchant_id: str | None
    scopes: tuple[str, ...]
    secret: str  # the whole key, shown once


@dataclass(frozen=True)
class Principal:
    """Who is calling: what a valid key proves."""

    key_id: str
    kind: Kind
    merchant_id: str | None
    mode: Mode | None
    scopes: frozenset[str]


@dataclass(frozen=True)
class KeyListing:
    id: str
    kind: Kind
    merchant_name: str | None
    mode: Mode | None
    scopes: tuple[str, ...]
    created_at: datetime
    revoked_at: datetime | None
    last_used_at: datetime | None


@dataclass(frozen=True)
class AuditEntry:
    at: datetime
    actor: str
    action: str
    subject: str
    merchant_name: str | None
    detail: dict[str, Any]


def _base32(raw: bytes) -> str:
    return base64.b32encode(raw).decode().rstrip("=").lower()


def _hash(secret: str) -> bytes:
    return hashlib.sha256(secret.encode()).digest()


def parse_key(presented: str) -> tuple[str, str, str] | None:
    """Split a presented key into (kind label, id, secret), or None if it is not shaped like one."""
    parts = presented.split("_", 3)
    if len(parts) != 4 or parts[0] != _KEY_PREFIX:
        return None
    _, label, key_id, secret = parts
    if label not in ("sandbox", "live", "operator") or len(key_id) != 16 or len(secret) < 32:
        return None
    return label, key_id, secret


async def create_key(
    conn: psycopg.AsyncConnection,
    *,
    kind: Kind,
    merchant: Merchant | None = None,
    mode: Mode | None = None,
    scopes: tuple[str, ...] = SCOPES,
    actor: str = "gateway",
) -> NewKey:
    """A new key, and its line in the audit log naming `actor` (who created it)."""
    if kind == "operator":
        merchant, mode, scopes = None, None, ()
    else:
        if merchant is None or mode is None:
            raise AccountError("a merchant key needs a merchant and a mode")
        unknown = sorted(set(scopes) - set(SCOPES))
        if unknown:
            raise UnknownScope(f"unknown scope(s) {', '.join(unknown)}; known: {', '.join(SCOPES)}")
    key_id = _base32(secrets.token_bytes(10))
    secret = secrets.token_urlsafe(32)
    label = mode if kind == "merchant" else "operator"
    await conn.execute(
        QUERIES["create_api_key"],
        {
            "id": key_id,
            "kind": kind,
            "merchant_id": merchant.id if merchant else None,
            "mode": mode,
            "scopes": list(scopes),
            "secret_hash": _hash(secret),
            "actor": actor,
        },
    )
    return NewKey(
        id=key_id,
        kind=kind,
        mode=mode,
        merchant_id=merchant.id if merchant else None,
        scopes=tuple(scopes),
        secret=f"{_KEY_PREFIX}_{label}_{key_id}_{secret}",
    )


async def list_keys(conn: psycopg.AsyncConnection) -> list[KeyListing]:
    cur = conn.cursor(row_factory=dict_row)
    await cur.execute(QUERIES["list_api_keys"])
    return [
        KeyListing(
            id=row["id"],
            kind=row["kind"],
            merchant_name=row["merchant_name"],
            mode=row["mode"],
            scopes=tuple(row["scopes"]),
            created_at=row["created_at"],
            revoked_at=row["revoked_at"],
            last_used_at=row["last_used_at"],
        )
        for row in await cur.fetchall()
    ]


async def audit_log(conn: psycopg.AsyncConnection, limit: int = 100) -> list[AuditEntry]:
    """What was done to keys, most recent first."""
    cur = await conn.execute(QUERIES["audit_log"], {"limit": limit})
    return [AuditEntry(*row) for row in await cur.fetchall()]


async def touch(conn: psycopg.AsyncConnection, key_id: str) -> None:
    """Record the key's use (at most once a minute)."""
    await conn.execute(QUERIES["touch_api_key"], {"id": key_id})


async def revoke_key(
    conn: psycopg.AsyncConnection, key: str, actor: str = "gateway"
) -> tuple[str, datetime | None]:
    """Revoke a key given by its id or whole (the secret is only parsed for the id, never kept
    or shown), with its line in the audit log. Returns the id and, if it was revoked before,
    when."""
    parsed = parse_key(key)
    key_id = parsed[1] if parsed else key
    cur = await conn.execute(QUERIES["revoke_api_key"], {"id": key_id, "actor": actor})
    row = await cur.fetchone()
    if row is None:
        # Named by its id only: the secret (which may hold '_') is never shown, even in part.
        shown = key_id if parsed is None else f"{_KEY_PREFIX}_{parsed[0]}_{key_id}_..."
        raise UnknownKey(f"no API key with id {shown!r}")
    return key_id, row[2]


async def operator_key_active(conn: psycopg.AsyncConnection, key_id: str) -> bool:
    """Whether `key_id` is an operator key that is not revoked (a console session holds only
    its key's id, and asks this at every request)."""
    cur = await conn.execute(QUERIES["find_api_key"], {"id": key_id})
    row = await cur.fetchone()
    return row is not None and row[1] == "operator" and row[6] is None


# A well-formed hash to compare against when the id is unknown, so that an unknown id and a
# wrong secret take the same path.
_NO_SUCH_KEY = _hash("no such key")


@dataclass(frozen=True)
class StoredKey:
    """A key as PostgreSQL holds it: its secret only as a hash."""

    key_id: str
    kind: Kind
    merchant_id: str | None
    mode: Mode | None
    scopes: frozenset[str]
    secret_hash: bytes
    revoked: bool


async def find_key(conn: psycopg.AsyncConnection, key_id: str) -> StoredKey | None:
    cur = await conn.execute(QUERIES["find_api_key"], {"id": key_id})
    row = await cur.fetchone()
    if row is None:
        return None
    _, kind, merchant_id, mode, scopes, secret_hash, revoked_at = row
    return StoredKey(
        key_id,
        kind,
        merchant_id,
        mode,
        frozenset(scopes),
        bytes(secret_hash),
        revoked_at is not None,
    )


def check(stored: StoredKey | None, presented: str) -> Principal | None:
    """The principal `presented` proves against the key stored under its id, or None (unknown,
    wrong secret, revoked, malformed). The hashes are compared in constant time, and an unknown
    id takes the same path as a wrong secret."""
    parsed = parse_key(presented)
    if parsed is None:
        return None
    label, key_id, secret = parsed
    matches = hmac.compare_digest(
        _hash(secret), stored.secret_hash if stored is not None else _NO_SUCH_KEY
    )
    if stored is None or stored.key_id != key_id or not matches or stored.revoked:
        return None
    if label != (stored.mode if stored.kind == "merchant" else "operator"):
        return None  # a key whose readable prefix was edited is not the key that was issued
    return Principal(
        key_id=key_id,
        kind=stored.kind,
        merchant_id=stored.merchant_id,
        mode=stored.mode,
        scopes=stored.scopes,
    )


async def authenticate(conn: psycopg.AsyncConnection, presented: str) -> Principal | None:
    """The principal a presented key proves, or None (unknown, wrong secret, revoked, malformed)."""
    parsed = parse_key(presented)
    if parsed is None:
        return None
    return check(await find_key(conn, parsed[1]), presented)
