"""Processor accounts: adding and listing them, and finding the processor client of a payment.

An account is a merchant's own contract with a processor: a kind (processors/registry.py), its
credentials sealed at rest, its settings in clear. The built-in kinds (sandbox, manual) need no
account. The directory builds each connector once per process, credentials decrypted in memory.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import msgspec

from processors import registry
from processors.base import Processor, Resources
from processors.errors import Misconfigured
from workflows.credentials import (
    SEALED_FORMAT,
    CredentialBox,
    CredentialError,
    MissingMasterKey,
    Sealed,
    binding,
)
from workflows.db import Connection, Database, Q, jsonb, translated
from workflows.errors import (
    AccountError,
    Conflict,
    ProcessorAccountExists,
    UnknownProcessorAccount,
)
from workflows.merchants import find_merchant
from workflows.routing import accounts_in_force


@dataclass(frozen=True)
class AccountListing:
    merchant_name: str
    name: str
    kind: str
    settings: dict[str, Any]
    created_at: datetime
    state: str = "active"


async def set_account_state(conn: Connection, merchant_name: str, account: str, state: str) -> None:
    """Disable an account (no new payment goes to it; its payments' follow-ups still do) or
    enable it again."""
    assert state in ("active", "disabled")
    cur = await conn.execute(
        Q["set_processor_account_state"],
        {"merchant_name": merchant_name, "account": account, "state": state},
    )
    if await cur.fetchone() is None:
        raise UnknownProcessorAccount(f"{merchant_name} has no processor account {account!r}")


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
        if not found.has_accounts:
            raise AccountError(f"{kind} is built in: it needs no account")
        assert found.credentials is not None
        sealed_credentials = msgspec.convert(credentials, found.credentials)
        checked = found.read_settings(settings)
        found.check(sealed_credentials, checked)
    except msgspec.ValidationError as error:
        # msgspec names the field, never its value: nothing secret is echoed.
        raise AccountError(f"{kind} credentials: {error}") from None
    except Misconfigured as error:
        raise AccountError(str(error)) from None
    if name in registry.KINDS:
        raise AccountError(f"{name!r} is the name of a built-in processor: choose another name")
    # A kind whose accounts hold no secret (sandbox) has nothing to seal: no master key needed.
    sealed = Sealed(b"", None)
    if found.secret:
        sealed = box.seal(
            msgspec.json.encode(sealed_credentials).decode(),
            bound_to=binding(merchant_id, name, kind, msgspec.to_builtins(checked)),
        )
    try:
        with translated():
            await conn.execute(
                Q["add_processor_account"],
                {
                    "merchant_id": merchant_id,
                    "name": name,
                    "kind": kind,
                    "settings": jsonb(checked),
                    "secret_ciphertext": sealed.ciphertext,
                    "secret_key_id": sealed.key_id,
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


async def remove_account(conn: Connection, merchant_name: str, account: str) -> None:
    """Remove an account no payment has used: the captures, refunds and recoveries of payments
    made through an account need it for as long as they may happen."""
    params = {"merchant_name": merchant_name, "account": account}
    merchant = await find_merchant(conn, merchant_name)
    if account in await accounts_in_force(conn, merchant.id):
        raise AccountError(
            f"{merchant_name}'s routing rules in force send payments to {account!r}: change them "
            f"first (gateway routing set --merchant {merchant_name} ...)"
        )
    try:
        with translated():
            cur = await conn.execute(Q["remove_processor_account"], params)
            removed = await cur.fetchone() is not None
    except Conflict:
        raise AccountError(
            f"{merchant_name}'s new payments go to {account!r}: route them elsewhere first "
            f"(gateway merchants configure {merchant_name} --processor ...)"
        ) from None
    if removed:
        return
    cur = await conn.execute(Q["processor_account_payments"], params)
    row = await cur.fetchone()
    used = row[0] if row else 0
    if used:
        raise AccountError(
            f"{account!r} carried {used} payment(s) of {merchant_name}; their captures, refunds "
            f"and recoveries need it, so it stays"
        )
    raise UnknownProcessorAccount(f"{merchant_name} has no processor account {account!r}")


async def credentials_of(
    conn: Connection, box: CredentialBox, merchant_id: str, account: str
) -> tuple[str, Any]:
    """An account's kind and its credentials, opened (read now: never a cached copy)."""
    cur = await conn.execute(
        Q["find_processor_account"], {"merchant_id": merchant_id, "name": account}
    )
    row = await cur.fetchone()
    if row is None:
        raise UnknownProcessorAccount(f"no processor account {account!r}")
    kind, settings, sealed, key_id = row
    found = registry.kind(kind)
    if not found.secret:
        return kind, found.open_credentials("{}")
    plain = box.open(sealed, key_id, bound_to=binding(merchant_id, account, kind, settings))
    return kind, found.open_credentials(plain)


async def update_credentials(
    conn: Connection, box: CredentialBox, merchant_name: str, account: str, **changes: Any
) -> None:
    """Change fields of an account's credentials (e.g. a Stripe account's webhook secret),
    checked against its kind's and sealed again; the account is locked meanwhile."""
    merchant = await find_merchant(conn, merchant_name)
    async with conn.transaction():
        await conn.execute(
            Q["lock_processor_account"], {"merchant_id": merchant.id, "name": account}
        )
        kind, credentials = await credentials_of(conn, box, merchant.id, account)
        found = registry.kind(kind)
        assert found.credentials is not None
        names = {f.name: f.encode_name for f in msgspec.structs.fields(found.credentials)}
        unknown = set(changes) - set(names)
        if unknown:
            raise AccountError(f"{kind} credentials have no {', '.join(sorted(unknown))}")
        encoded = {names[name]: value for name, value in changes.items()}
        try:
            changed = msgspec.convert(
                {**msgspec.to_builtins(credentials), **encoded}, found.credentials
            )
        except msgspec.ValidationError as error:
            raise AccountError(f"{kind} credentials: {error}") from None
        cur = await conn.execute(
            Q["find_processor_account"], {"merchant_id": merchant.id, "name": account}
        )
        row = await cur.fetchone()
        assert row is not None
        sealed = box.seal(
            msgspec.json.encode(changed).decode(),
            bound_to=binding(merchant.id, account, kind, row[1]),
        )
        await conn.execute(
            Q["reseal_processor_account"],
            {
                "merchant_id": merchant.id,
                "name": account,
                "secret_ciphertext": sealed.ciphertext,
                "secret_key_id": sealed.key_id,
            },
        )


async def rotate_secrets(
    conn: Connection, box: CredentialBox, merchant_id: str | None = None
) -> int:
    """Re-seal every account's credentials not sealed under the current master key (or sealed
    unbound, before 0011), in one transaction; how many were re-sealed. Each is opened with the
    key that sealed it (GATEWAY_SECRET_KEY_PREVIOUS), so an unknown key stops it all.
    `merchant_id`: that merchant's accounts only."""
    if box.key_id is None:
        raise MissingMasterKey(" ".join((MissingMasterKey.__doc__ or "").split()))
    async with conn.transaction():
        cur = await conn.execute(
            Q["accounts_to_rotate"],
            {"key_id": box.key_id, "merchant_id": merchant_id, "format": SEALED_FORMAT},
        )
        rows = await cur.fetchall()
        for merchant_id, name, kind, settings, sealed, key_id in rows:
            bound = binding(merchant_id, name, kind, settings)
            try:
                plain = box.open(sealed, key_id, bound_to=bound)
            except CredentialError as error:
                raise CredentialError(
                    f"account {name} of merchant {merchant_id}: {error}"
                ) from None
            resealed = box.seal(plain, bound_to=bound)
            await conn.execute(
                Q["reseal_processor_account"],
                {
                    "merchant_id": merchant_id,
                    "name": name,
                    "secret_ciphertext": resealed.ciphertext,
                    "secret_key_id": resealed.key_id,
                },
            )
    return len(rows)


async def list_accounts(conn: Connection) -> list[AccountListing]:
    cur = await conn.execute(Q["list_processor_accounts"])
    return [AccountListing(*row) for row in await cur.fetchall()]


class ProcessorDirectory:
    """The processor of a payment, by the merchant's routing recorded on it."""

    def __init__(self, resources: Resources, box: CredentialBox) -> None:
        self._db = Database(resources.pool)
        self._box = box
        self._resources = resources
        self._builtin: dict[str, Processor] = {}
        self._accounts: dict[tuple[str, str], Processor] = {}

    def display_name(self, kind: str) -> str:
        return registry.display_name(kind)

    async def get(
        self, merchant_id: str, kind: str, account: str | None, conn: Connection | None = None
    ) -> Processor:
        """The connector of a kind (built in) or of one of the merchant's accounts; `conn`, if
        given, is used to read the account (no second connection inside a transaction)."""
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
        params = {"merchant_id": merchant_id, "name": account}
        if conn is not None:
            cur = await conn.execute(Q["find_processor_account"], params)
            row = await cur.fetchone()
        else:
            async with self._db.connection() as own:
                cur = await own.execute(Q["find_processor_account"], params)
                row = await cur.fetchone()
        if row is None:
            raise UnknownProcessorAccount(f"no processor account {account!r}")
        stored_kind, settings, sealed, key_id = row
        found = registry.kind(stored_kind)
        bound = binding(merchant_id, account, stored_kind, settings)
        plain = self._box.open(sealed, key_id, bound_to=bound) if found.secret else "{}"
        credentials, checked = found.open_credentials(plain), found.read_settings(settings)
        found.check(credentials, checked)
        processor = found.build(self._resources, credentials, checked)
        self._accounts[(merchant_id, account)] = processor
        return processor

    async def aclose(self) -> None:
        await self._resources.http.aclose()
