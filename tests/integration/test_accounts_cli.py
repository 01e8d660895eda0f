"""Merchants and API keys through the `gateway` command, as an operator uses them."""

from __future__ import annotations

import hashlib
import secrets
from pathlib import Path
from typing import Any

import pytest

from gateway import accounts
from gateway.settings import Settings
from tests.conftest import run_gateway
from workflows import merchants


@pytest.fixture
def merchant_name() -> str:
    return f"shop-{secrets.token_hex(4)}"


def test_an_operator_creates_a_merchant_and_a_key_that_is_printed_once(
    settings: Settings, merchant_name: str
) -> None:
    created = run_gateway(settings, "merchants", "create", merchant_name)
    assert created.returncode == 0, created.stderr
    assert merchant_name in created.stdout

    key = run_gateway(settings, "keys", "create", "--merchant", merchant_name, "--mode", "sandbox")
    assert key.returncode == 0, key.stderr
    secret = key.stdout.strip()
    assert secret.startswith("gw_sandbox_")
    assert "Shown once" in key.stderr

    listing = run_gateway(settings, "keys", "list")
    assert listing.returncode == 0
    key_id = accounts.parse_key(secret)[1]  # type: ignore[index]
    line = next(line for line in listing.stdout.splitlines() if line.startswith(key_id))
    assert merchant_name in line and "sandbox" in line and "all" in line
    assert accounts.parse_key(secret)[2] not in listing.stdout  # type: ignore[index]
    assert secret not in listing.stdout


def test_live_keys_say_so_in_their_prefix(settings: Settings, merchant_name: str) -> None:
    run_gateway(settings, "merchants", "create", merchant_name)
    key = run_gateway(settings, "keys", "create", "--merchant", merchant_name, "--mode", "live")
    assert key.stdout.startswith("gw_live_")


def test_scopes_can_be_narrowed_and_unknown_scopes_are_refused(
    settings: Settings, merchant_name: str
) -> None:
    run_gateway(settings, "merchants", "create", merchant_name)
    narrow = run_gateway(
        settings,
        "keys",
        "create",
        "--merchant",
        merchant_name,
        "--mode",
        "sandbox",
        "--scope",
        "transactions:retrieve",
        "--scope",
        "transactions:capture",
    )
    assert narrow.returncode == 0
    key_id = accounts.parse_key(narrow.stdout.strip())[1]  # type: ignore[index]
    listing = run_gateway(settings, "keys", "list").stdout
    line = next(line for line in listing.splitlines() if line.startswith(key_id))
    assert line.endswith("transactions:retrieve,transactions:capture")

    bad = run_gateway(
        settings,
        "keys",
        "create",
        "--merchant",
        merchant_name,
        "--mode",
        "sandbox",
        "--scope",
        "everything",
    )
    assert bad.returncode == 2
    assert "everything" in bad.stderr and "--scope" in bad.stderr


def test_revoking_a_key_is_reported_and_shown_in_the_list(
    settings: Settings, merchant_name: str
) -> None:
    run_gateway(settings, "merchants", "create", merchant_name)
    secret = run_gateway(
        settings, "keys", "create", "--merchant", merchant_name, "--mode", "sandbox"
    ).stdout.strip()
    key_id = accounts.parse_key(secret)[1]  # type: ignore[index]
    revoked = run_gateway(settings, "keys", "revoke", key_id)
    assert revoked.returncode == 0 and key_id in revoked.stdout
    line = next(
        line
        for line in run_gateway(settings, "keys", "list").stdout.splitlines()
        if line.startswith(key_id)
    )
    assert "-" not in line.split()[6:7]  # the REVOKED column holds a date
    unknown = run_gateway(settings, "keys", "revoke", "zzzzzzzzzzzzzzzz")
    assert unknown.returncode == 1 and "no API key" in unknown.stderr


def test_operator_keys_are_their_own_kind(settings: Settings) -> None:
    key = run_gateway(settings, "keys", "create", "--operator")
    assert key.returncode == 0
    assert key.stdout.startswith("gw_operator_")
    mixed = run_gateway(settings, "keys", "create", "--operator", "--mode", "live")
    assert mixed.returncode == 1 and "operator keys have no --mode" in mixed.stderr


def test_a_merchant_name_is_unique_and_well_formed(settings: Settings, merchant_name: str) -> None:
    assert run_gateway(settings, "merchants", "create", merchant_name).returncode == 0
    again = run_gateway(settings, "merchants", "create", merchant_name)
    assert again.returncode == 1 and "already exists" in again.stderr
    bad = run_gateway(settings, "merchants", "create", "no spaces please")
    assert bad.returncode == 1 and "merchant name" in bad.stderr
    missing = run_gateway(
        settings, "keys", "create", "--merchant", "nobody-" + merchant_name, "--mode", "live"
    )
    assert missing.returncode == 1 and "no merchant named" in missing.stderr


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("GATEWAY_PORT", "eighty"),
        ("GATEWAY_PORT", "70000"),
        ("GATEWAY_LOG_LEVEL", "loud"),
        ("GATEWAY_IDEMPOTENCY_TTL_SECONDS", "-5"),
        ("GATEWAY_REDIS_TIMEOUT_SECONDS", "soon"),
    ],
)
def test_an_invalid_setting_stops_any_command_with_one_line_naming_it_and_exit_2(
    settings: Settings, variable: str, value: str
) -> None:
    result = run_gateway(settings, "keys", "list", extra_env={variable: value})
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1
    assert variable in lines[0]


async def test_keys_are_stored_only_as_a_hash(db: Any) -> None:
    merchant = await merchants.create_merchant(db, f"hash-{secrets.token_hex(4)}")
    key = await accounts.create_key(db, kind="merchant", merchant=merchant, mode="live")
    secret_part = key.secret.split("_", 3)[3]
    cur = await db.execute("SELECT secret_hash FROM api_keys WHERE id = %s", (key.id,))
    (stored,) = await cur.fetchone()
    assert bytes(stored) == hashlib.sha256(secret_part.encode()).digest()
    for table in ("merchants", "api_keys", "idempotency_keys"):
        cur = await db.execute(
            f"SELECT count(*) FROM {table} t WHERE t::text LIKE %s", (f"%{secret_part[:12]}%",)
        )
        assert (await cur.fetchone())[0] == 0, f"part of a key's secret found in {table}"


async def test_keys_carry_at_least_128_random_bits(db: Any) -> None:
    merchant = await merchants.create_merchant(db, f"bits-{secrets.token_hex(4)}")
    keys = {
        (await accounts.create_key(db, kind="merchant", merchant=merchant, mode="sandbox")).secret
        for _ in range(20)
    }
    assert len(keys) == 20
    for key in keys:
        secret = key.split("_", 3)[3]
        assert len(secret) * 6 >= 128  # base64url characters carry 6 bits each


def test_migrate_is_safe_to_run_twice(settings: Settings, tmp_path: Path) -> None:
    first = run_gateway(settings, "migrate")
    second = run_gateway(settings, "migrate")
    assert first.returncode == second.returncode == 0
    assert "schema is up to date" in second.stdout


def test_a_merchant_is_configured_for_a_processor_and_a_capture_mode(
    settings: Settings, merchant_name: str
) -> None:
    run_gateway(settings, "merchants", "create", merchant_name)
    configured = run_gateway(
        settings,
        "merchants",
        "configure",
        merchant_name,
        "--processor",
        "manual",
        "--capture-on-create",
    )
    assert configured.returncode == 0, configured.stderr
    assert configured.stdout.strip() == (
        f"merchant {merchant_name}: processor manual, capture at once on create"
    )
    back = run_gateway(settings, "merchants", "configure", merchant_name, "--capture-on-request")
    assert back.stdout.strip() == f"merchant {merchant_name}: processor manual, capture on request"
    nothing = run_gateway(settings, "merchants", "configure", merchant_name)
    assert nothing.returncode == 1 and "nothing to configure" in nothing.stderr
    unknown = run_gateway(
        settings, "merchants", "configure", "nobody-" + merchant_name, "--processor", "sandbox"
    )
    assert unknown.returncode == 1 and "no merchant named" in unknown.stderr


def test_a_stripe_account_is_added_with_its_secret_encrypted_and_never_shown(
    settings: Settings, merchant_name: str
) -> None:
    from workflows.credentials import new_master_key

    run_gateway(settings, "merchants", "create", merchant_name)
    secret = "sk_test_" + secrets.token_hex(12)
    add = [
        "processors",
        "add",
        "--merchant",
        merchant_name,
        "--name",
        "stripe-main",
        "--type",
        "stripe",
        "--secret-key-env",
        "THE_STRIPE_KEY",
    ]
    without_master = run_gateway(settings, *add, extra_env={"THE_STRIPE_KEY": secret})
    assert without_master.returncode == 1
    assert "GATEWAY_SECRET_KEY is not set" in without_master.stderr
    master = new_master_key()
    unset_variable = run_gateway(settings, *add, extra_env={"GATEWAY_SECRET_KEY": master})
    assert unset_variable.returncode == 1 and "THE_STRIPE_KEY" in unset_variable.stderr
    added = run_gateway(
        settings, *add, extra_env={"GATEWAY_SECRET_KEY": master, "THE_STRIPE_KEY": secret}
    )
    assert added.returncode == 0, added.stderr
    assert secret not in added.stdout + added.stderr
    listing = run_gateway(settings, "processors", "list")
    assert "stripe-main" in listing.stdout and "https://api.stripe.com" in listing.stdout
    assert secret not in listing.stdout
    routed = run_gateway(
        settings, "merchants", "configure", merchant_name, "--processor", "stripe-main"
    )
    assert (
        routed.stdout.strip()
        == f"merchant {merchant_name}: processor stripe-main, capture on request"
    )
    import psycopg

    with psycopg.connect(settings.database_url or "") as conn:
        row = conn.execute(
            "SELECT a::text, secret_ciphertext, secret_key_id, merchant_id, settings"
            " FROM processor_accounts a JOIN merchants m"
            " ON m.id = a.merchant_id WHERE m.name = %s",
            (merchant_name,),
        ).fetchone()
    assert row is not None and secret not in row[0]
    import msgspec

    from workflows.credentials import CredentialBox, binding

    box = CredentialBox(master)
    assert row[2] == box.key_id
    opened = box.open(row[1], row[2], bound_to=binding(row[3], "stripe-main", "stripe", row[4]))
    assert msgspec.json.decode(opened) == {"secretKey": secret}


def test_a_bad_master_key_stops_every_command_without_echoing_it(settings: Settings) -> None:
    result = run_gateway(
        settings, "keys", "list", extra_env={"GATEWAY_SECRET_KEY": "not-a-fernet-key"}
    )
    assert result.returncode == 2
    assert "GATEWAY_SECRET_KEY" in result.stderr and "not-a-fernet-key" not in result.stderr


# ---------------------------------------------------------------- processor secrets at rest


@pytest.fixture
async def pool(settings: Settings) -> Any:
    from psycopg_pool import AsyncConnectionPool

    opened = AsyncConnectionPool(
        settings.database_url or "", open=False, min_size=1, kwargs={"autocommit": True}
    )
    await opened.open()
    yield opened
    await opened.close()


def _add_stripe(
    settings: Settings, merchant: str, name: str, master: str, secret: str, *extra: str
) -> Any:
    return run_gateway(
        settings,
        "processors",
        "add",
        "--merchant",
        merchant,
        "--name",
        name,
        "--type",
        "stripe",
        "--secret-key-env",
        "THE_STRIPE_KEY",
        *extra,
        extra_env={"GATEWAY_SECRET_KEY": master, "THE_STRIPE_KEY": secret},
    )


async def _account(db: Any, merchant: str, name: str) -> tuple[bytes, str | None, str]:
    cur = await db.execute(
        "SELECT secret_ciphertext, secret_key_id, merchant_id FROM processor_accounts a"
        " JOIN merchants m ON m.id = a.merchant_id WHERE m.name = %s AND a.name = %s",
        (merchant, name),
    )
    row = await cur.fetchone()
    assert row is not None
    return bytes(row[0]), row[1], row[2]


async def _directory_opens(db_pool: Any, master: str, merchant_id: str, name: str) -> str:
    """What building the account's connector says: "ok", or why not."""
    import httpx

    from processors.base import Resources
    from workflows.accounts import ProcessorDirectory
    from workflows.credentials import CredentialBox, CredentialError

    async with httpx.AsyncClient() as http:
        directory = ProcessorDirectory(Resources(db_pool, http), CredentialBox(master))
        try:
            await directory.get(merchant_id, "stripe", name)
        except CredentialError as error:
            return str(error)
    return "ok"


async def test_a_secret_copied_onto_another_account_does_not_open(
    settings: Settings, merchant_name: str, db: Any, pool: Any
) -> None:
    from workflows.credentials import new_master_key

    master = new_master_key()
    run_gateway(settings, "merchants", "create", merchant_name)
    assert _add_stripe(settings, merchant_name, "one", master, "sk_test_one1").returncode == 0
    assert _add_stripe(settings, merchant_name, "two", master, "sk_test_two2").returncode == 0
    sealed, key_id, merchant_id = await _account(db, merchant_name, "one")
    assert await _directory_opens(pool, master, merchant_id, "two") == "ok"
    # One account's ciphertext swapped onto the other: it names the wrong row, and says so.
    await db.execute(
        "UPDATE processor_accounts SET secret_ciphertext = %s, secret_key_id = %s"
        " WHERE merchant_id = %s AND name = 'two'",
        (sealed, key_id, merchant_id),
    )
    said = await _directory_opens(pool, master, merchant_id, "two")
    assert "sealed for another account" in said
    # The API base changed behind the gateway's back: the key is not handed to it.
    await db.execute(
        'UPDATE processor_accounts SET settings = settings || \'{"apiBaseUrl": "https://evil.test"}\''
        " WHERE merchant_id = %s AND name = 'one'",
        (merchant_id,),
    )
    assert "sealed for another account" in await _directory_opens(pool, master, merchant_id, "one")


async def test_rotation_reseals_every_secret_under_the_new_master_key(
    settings: Settings, merchant_name: str, db: Any, pool: Any
) -> None:
    from cryptography.fernet import Fernet

    from workflows.credentials import CredentialBox, new_master_key

    old, new = new_master_key(), new_master_key()
    run_gateway(settings, "merchants", "create", merchant_name)
    assert _add_stripe(settings, merchant_name, "main", old, "sk_test_main").returncode == 0
    _, old_id, merchant_id = await _account(db, merchant_name, "main")
    assert old_id == CredentialBox(old).key_id
    # An account sealed before 0011: an unbound Fernet token, no key id.
    await db.execute(
        "INSERT INTO processor_accounts (merchant_id, name, kind, secret_ciphertext)"
        " VALUES (%s, 'legacy', 'stripe', %s)",
        (merchant_id, Fernet(old.encode()).encrypt(b'{"secretKey":"sk_test_legacy"}')),
    )
    assert await _directory_opens(pool, old, merchant_id, "legacy") == "ok"
    # The new key alone cannot open what the old one sealed: rotation needs both.
    assert "neither GATEWAY_SECRET_KEY" in await _directory_opens(pool, new, merchant_id, "main")
    rotate = ("secret-key", "rotate", "--merchant", merchant_name)
    alone = run_gateway(settings, *rotate, extra_env={"GATEWAY_SECRET_KEY": new})
    assert alone.returncode == 1 and "cannot be decrypted" in alone.stderr
    assert (await _account(db, merchant_name, "main"))[1] == old_id  # nothing changed
    both = {"GATEWAY_SECRET_KEY": new, "GATEWAY_SECRET_KEY_PREVIOUS": old}
    rotated = run_gateway(settings, *rotate, extra_env=both)
    assert rotated.returncode == 0, rotated.stderr
    assert rotated.stdout.startswith("re-sealed ")
    assert old not in rotated.stdout + rotated.stderr and new not in rotated.stdout
    for name in ("main", "legacy"):
        assert (await _account(db, merchant_name, name))[1] == CredentialBox(new).key_id
        assert await _directory_opens(pool, new, merchant_id, name) == "ok"
    # An account sealed bound to its row only (before settings were bound too) opens, and a
    # rotation re-seals it bound to its settings as well.
    import os

    from workflows.credentials import binding

    box = CredentialBox(new)
    row_only = binding(merchant_id, "rowonly", "stripe", {}).row
    nonce = os.urandom(12)
    sealed = (
        b"gw2" + nonce + box._current.aead.encrypt(nonce, b'{"secretKey":"sk_test_r"}', row_only)
    )  # type: ignore[union-attr]
    await db.execute(
        "INSERT INTO processor_accounts (merchant_id, name, kind, secret_ciphertext,"
        " secret_key_id) VALUES (%s, 'rowonly', 'stripe', %s, %s)",
        (merchant_id, sealed, box.key_id),
    )
    assert await _directory_opens(pool, new, merchant_id, "rowonly") == "ok"
    resealed = run_gateway(settings, *rotate, extra_env=both)
    assert "re-sealed 1 " in resealed.stdout, resealed.stderr
    assert (await _account(db, merchant_name, "rowonly"))[0].startswith(b"gw3")
    assert await _directory_opens(pool, new, merchant_id, "rowonly") == "ok"
    again = run_gateway(settings, *rotate, extra_env=both)
    assert again.returncode == 0 and "re-sealed 0 " in again.stdout
    assert "re-sealed 2 " in rotated.stdout


def test_a_live_stripe_key_is_never_sent_over_plain_http(
    settings: Settings, merchant_name: str
) -> None:
    from workflows.credentials import new_master_key

    master = new_master_key()
    run_gateway(settings, "merchants", "create", merchant_name)
    plain = ("--setting", "apiBaseUrl=http://stripe.example")
    refused = _add_stripe(settings, merchant_name, "live", master, "sk_live_abc123", *plain)
    assert refused.returncode == 1
    assert "only sent over https" in refused.stderr and "sk_live_abc123" not in refused.stderr
    test_key = _add_stripe(settings, merchant_name, "test", master, "sk_test_abc123", *plain)
    assert test_key.returncode == 0, test_key.stderr


def test_creating_and_revoking_keys_is_audited_with_who_did_it(
    settings: Settings, merchant_name: str
) -> None:
    import getpass

    run_gateway(settings, "merchants", "create", merchant_name)
    created = run_gateway(settings, "keys", "create", "--merchant", merchant_name)
    key_id = accounts.parse_key(created.stdout.strip())[1]  # type: ignore[index]
    assert run_gateway(settings, "keys", "revoke", key_id).returncode == 0
    assert run_gateway(settings, "keys", "revoke", key_id).returncode == 0  # no second line
    audit = run_gateway(settings, "keys", "audit", "--limit", "1000")
    assert audit.returncode == 0, audit.stderr
    lines = [line.split() for line in audit.stdout.splitlines() if key_id in line]
    assert [line[2] for line in lines] == ["api_key.revoked", "api_key.created"]
    for line in lines:
        assert line[4] == merchant_name
        assert line[5] == "cli" and line[6].startswith(f"{getpass.getuser()}@")
    assert created.stdout.strip() not in audit.stdout
