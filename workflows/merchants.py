"""Merchants: who payments belong to, where their payments go, and whether create captures.

Every payment-side row is keyed by the merchant's id (a ready distribution key for Citus); ids are
random, never a sequence, so any machine makes them with no coordination.
"""

from __future__ import annotations

import base64
import secrets
from dataclasses import dataclass
from datetime import datetime

from processors import registry
from workflows.db import Connection, Q, translated
from workflows.errors import AccountError, Conflict, UnknownMerchant

__all__ = ["Merchant", "MerchantDetail", "UnknownMerchant"]


class MerchantExists(AccountError):
    """A merchant with this name already exists."""


class InvalidMerchantName(AccountError):
    """A merchant name is 1-63 letters, digits, '.', '_' or '-', starting with a letter or digit."""


class UnknownRoute(AccountError):
    """The processor is neither built in nor an account of the merchant."""


@dataclass(frozen=True)
class Merchant:
    id: str
    name: str


@dataclass(frozen=True)
class MerchantDetail:
    id: str
    name: str
    processor: str  # the kind, or the account routed to
    capture_on_create: bool
    created_at: datetime
    accounts: tuple[str, ...]  # its processor accounts, "name (kind)"
    active_keys: int


def new_id(prefix: str) -> str:
    """A random, URL-safe identifier such as `mer_5n2k...`."""
    raw = base64.b32encode(secrets.token_bytes(10)).decode().rstrip("=").lower()
    return f"{prefix}_{raw}"


async def create_merchant(conn: Connection, name: str) -> Merchant:
    try:
        with translated():
            cur = await conn.execute(Q["create_merchant"], {"id": new_id("mer"), "name": name})
    except Conflict as conflict:
        if conflict.constraint == "merchants_name_key":
            raise MerchantExists(f"a merchant named {name!r} already exists") from None
        raise InvalidMerchantName(InvalidMerchantName.__doc__) from None
    row = await cur.fetchone()
    assert row is not None
    return Merchant(id=row[0], name=row[1])


async def find_merchant(conn: Connection, name: str) -> Merchant:
    cur = await conn.execute(Q["find_merchant_by_name"], {"name": name})
    row = await cur.fetchone()
    if row is None:
        raise UnknownMerchant(f"no merchant named {name!r}")
    return Merchant(id=row[0], name=row[1])


async def list_merchants(conn: Connection, name: str | None = None) -> list[MerchantDetail]:
    """Every merchant (or the one named), with its routing, accounts and live key count."""
    cur = await conn.execute(Q["list_merchants"], {"name": name})
    return [
        MerchantDetail(
            id=row[0],
            name=row[1],
            processor=row[2],
            capture_on_create=row[3],
            created_at=row[4],
            accounts=tuple(row[5]),
            active_keys=row[6],
        )
        for row in await cur.fetchall()
    ]


async def show_merchant(conn: Connection, name: str) -> MerchantDetail:
    found = await list_merchants(conn, name)
    if not found:
        raise UnknownMerchant(f"no merchant named {name!r}")
    return found[0]


async def configure(
    conn: Connection, name: str, *, processor: str | None, capture_on_create: bool | None
) -> MerchantDetail:
    """Route a merchant's new payments to a built-in processor or one of its accounts, and/or set
    whether create captures at once."""
    merchant = await find_merchant(conn, name)
    builtin = processor is None or processor in registry.BUILTIN
    if not builtin:
        cur = await conn.execute(
            Q["route_merchant_to_account"], {"merchant_name": merchant.name, "account": processor}
        )
        if await cur.fetchone() is None:
            raise UnknownRoute(
                f"{processor!r} is neither {', '.join(registry.BUILTIN)}, nor a processor "
                f"account of {merchant.name} (see gateway processors list)"
            )
    await conn.execute(
        Q["configure_merchant"],
        {
            "name": merchant.name,
            "processor": processor if builtin else None,
            "capture_on_create": capture_on_create,
        },
    )
    return await show_merchant(conn, merchant.name)
