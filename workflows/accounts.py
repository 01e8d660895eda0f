"""Processor accounts: adding and listing them, and finding the processor client of a payment.

An account is a merchant's own contract with a processor: a kind (processors/registry.py), its
credentials sealed at rest, its settings in clear. The built-in kinds (sandbox, manual) need no
account. The directory builds each connector once per process, credentials decrypted in memory.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import httpx
import msgspec
from psycopg_pool import AsyncConnectionPool

from processors import registry
from processors.base import Processor, Resources
from processors.errors import Misconfigured
from workflows.credentials import CredentialBox
from workflows.db import Connection, Database, Q, jsonb
from workflows.errors import (
    AccountError,
    Conflict,
    ProcessorAccountExists,
    UnknownProcessorAccount,
)


@dataclass(frozen=True)
class AccountListing:
    merchant_name: str
    name: str
    kind: str
    settings: dict[str, Any]
    created_at: datetime


async def add_account(
    conn: Connection,
    box: CredentialBox,
    *,
    merchant_id: str,
    name: str,
    kind: str,
    credentials: dict[str, Any],
    settings: dict[str, Any],
) -> None:
    """Add an account of `kind`; its credentials and settings are checked against the kind's."""
    try:
        found = registry.kind(kind)
        if found.builtin:
            raise AccountError(f"{kind} is built in: it needs no account")
        assert found.credentials is not None
        sealed_credentials = msgspec.convert(credentials, found.credentials)
        checked = found.read_settings(settings)
    except (Misconfigured, msgspec.ValidationError) as error:
        raise AccountError(str(error)) from None
    if name in registry.KINDS:
        raise AccountError(f"{name!r} is the name of a built-in processor: choose another name")
    sealed = box.seal(msgspec.json.encode(sealed_credentials).decode())
    try:
        await conn.execute(
            Q["add_processor_account"],
            {
                "merchant_id": merchant_id,
                "name": name,
                "kind": kind,
                "settings": jsonb(checked),
                "secret_ciphertext": sealed,
            },
        )
    except Conflict as conflict:
        if conflict.constraint == "processor_accounts_pkey":
            raise ProcessorAccountExists(
                f"the merchant already has an account named {name!r}"
            ) from None
        raise AccountError(
            "an account name is 1-63 lower-case letters, digits, '.', '_' or '-'"
        ) from None


async def list_accounts(conn: Connection) -> list[AccountListing]:
    cur = await conn.execute(Q["list_processor_accounts"])
    return [AccountListing(*row) for row in await cur.fetchall()]


class ProcessorDirectory:
    """The processor of a payment, by the merchant's routing recorded on it."""

    def __init__(self, pool: AsyncConnectionPool, box: CredentialBox) -> None:
        self._db = Database(pool)
        self._box = box
        # One pooled HTTP client for every connector of this process.
        self._http = httpx.AsyncClient(
            timeout=httpx.Timeout(connect=5.0, read=30.0, write=10.0, pool=5.0),
            limits=httpx.Limits(max_connections=200, max_keepalive_connections=50),
        )
        self._resources = Resources(pool=pool, http=self._http)
        self._builtin: dict[str, Processor] = {}
        self._accounts: dict[tuple[str, str], Processor] = {}

    def display_name(self, kind: str) -> str:
        return registry.display_name(kind)

    async def get(self, merchant_id: str, kind: str, account: str | None) -> Processor:
        if account is None:
            builtin = self._builtin.get(kind)
            if builtin is None:
                builtin = self._builtin[kind] = registry.kind(kind).build(
                    self._resources, None, None
                )
            return builtin
        cached = self._accounts.get((merchant_id, account))
        if cached is not None:
            return cached
        async with self._db.connection() as conn:
            cur = await conn.execute(
                Q["find_processor_account"], {"merchant_id": merchant_id, "name": account}
            )
            row = await cur.fetchone()
        if row is None:
            raise UnknownProcessorAccount(f"no processor account {account!r}")
        stored_kind, settings, sealed = row
        found = registry.kind(stored_kind)
        processor = found.build(
            self._resources,
            found.open_credentials(self._box.open(sealed)),
            found.read_settings(settings),
        )
        self._accounts[(merchant_id, account)] = processor
        return processor

    async def aclose(self) -> None:
        await self._http.aclose()
