"""Processor accounts: adding and listing them, and finding the processor client of a payment.

The engine asks the directory for a payment's processor: the built-in sandbox and manual
processors, or a merchant's Stripe account, whose client is built once per process with its
secret decrypted in memory.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import httpx
import psycopg
from psycopg_pool import AsyncConnectionPool

from gateway.credentials import CredentialBox
from processors import stripe
from processors.base import Processor
from processors.manual import ManualProcessor
from processors.sandbox import SandboxProcessor
from workflows.engine import Q


class AccountProblem(Exception):
    """A processor account operation could not be done."""


class UnknownProcessorAccount(AccountProblem):
    """No processor account of this merchant has this name."""


class ProcessorAccountExists(AccountProblem):
    """The merchant already has a processor account with this name."""


@dataclass(frozen=True)
class AccountListing:
    merchant_name: str
    name: str
    kind: str
    api_base_url: str
    multicapture: bool
    created_at: datetime


async def add_account(
    conn: psycopg.AsyncConnection,
    box: CredentialBox,
    *,
    merchant_id: str,
    name: str,
    kind: str,
    secret: str,
    api_base_url: str,
    multicapture: bool,
) -> None:
    sealed = box.seal(secret)
    try:
        await conn.execute(
            Q["add_processor_account"],
            {
                "merchant_id": merchant_id,
                "name": name,
                "kind": kind,
                "api_base_url": api_base_url,
                "secret_ciphertext": sealed,
                "multicapture": multicapture,
            },
        )
    except psycopg.errors.UniqueViolation:
        raise ProcessorAccountExists(
            f"the merchant already has an account named {name!r}"
        ) from None
    except psycopg.errors.CheckViolation:
        raise AccountProblem(
            "an account name is 1-63 lower-case letters, digits, '.', '_' or '-', and the API "
            "base an http(s) URL"
        ) from None


async def list_accounts(conn: psycopg.AsyncConnection) -> list[AccountListing]:
    cur = await conn.execute(Q["list_processor_accounts"])
    return [AccountListing(*row) for row in await cur.fetchall()]


class ProcessorDirectory:
    """The processor of a payment, by the merchant's routing recorded on it."""

    def __init__(self, pool: AsyncConnectionPool, box: CredentialBox) -> None:
        self._pool = pool
        self._box = box
        self._builtin: dict[str, Processor] = {
            "sandbox": SandboxProcessor(pool),
            "manual": ManualProcessor(),
        }
        self._accounts: dict[tuple[str, str], Processor] = {}
        # One pooled client for every Stripe account of this process.
        self._http = httpx.AsyncClient(
            timeout=stripe.TIMEOUT,
            limits=httpx.Limits(max_connections=200, max_keepalive_connections=50),
        )

    async def get(self, merchant_id: str, kind: str, account: str | None) -> Processor:
        if account is None:
            return self._builtin[kind]
        cached = self._accounts.get((merchant_id, account))
        if cached is not None:
            return cached
        async with self._pool.connection() as conn:
            cur = await conn.execute(
                Q["find_processor_account"], {"merchant_id": merchant_id, "name": account}
            )
            row = await cur.fetchone()
        if row is None:
            raise UnknownProcessorAccount(f"no processor account {account!r}")
        _, api_base_url, sealed, multicapture = row
        processor = stripe.StripeProcessor(
            self._box.open(sealed),
            api_base=api_base_url,
            multicapture=multicapture,
            client=self._http,
        )
        self._accounts[(merchant_id, account)] = processor
        return processor

    async def aclose(self) -> None:
        await self._http.aclose()
