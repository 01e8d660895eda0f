"""The schema: built from scratch by the numbered migrations, equal to `schema.sql`."""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterator

import httpx
import psycopg
import pytest
from cryptography.fernet import Fernet
from psycopg_pool import AsyncConnectionPool

from gateway.db import migrate
from gateway.settings import Settings
from processors.base import Resources
from processors.stripe import StripeProcessor
from workflows.accounts import ProcessorDirectory
from workflows.credentials import CredentialBox, new_master_key

CATALOG = """
SELECT 'column', c.table_name || '.' || c.column_name || ' ' || c.data_type || ' '
       || c.is_nullable || ' ' || coalesce(c.column_default, '')
FROM information_schema.columns c WHERE c.table_schema = 'public'
  AND c.table_name <> 'schema_migrations'
UNION ALL
SELECT 'constraint', conrelid::regclass || ' ' || conname || ' ' || pg_get_constraintdef(oid)
FROM pg_constraint WHERE connamespace = 'public'::regnamespace
  AND conrelid::regclass::text <> 'schema_migrations'
UNION ALL
SELECT 'index', indexdef FROM pg_indexes WHERE schemaname = 'public'
  AND tablename <> 'schema_migrations'
UNION ALL
SELECT 'table', relname || ' persistence ' || relpersistence::text FROM pg_class
WHERE relnamespace = 'public'::regnamespace AND relkind = 'r' AND relname <> 'schema_migrations'
UNION ALL
SELECT 'type', t.typname || ' ' || string_agg(e.enumlabel, ',' ORDER BY e.enumsortorder)
FROM pg_type t JOIN pg_enum e ON e.enumtypid = t.oid GROUP BY t.typname
ORDER BY 1, 2
"""


@pytest.fixture
def scratch_databases(settings: Settings) -> Iterator[Callable[[], str]]:
    """Makes empty databases on the session's server; drops them afterwards."""
    assert settings.database_url
    made: list[str] = []

    def make() -> str:
        name = f"scratch_{secrets.token_hex(4)}"
        with psycopg.connect(settings.database_url, autocommit=True) as admin:  # type: ignore[arg-type]
            admin.execute(f'CREATE DATABASE "{name}"')
        made.append(name)
        return psycopg.conninfo.make_conninfo(settings.database_url, dbname=name)  # type: ignore[arg-type]

    yield make
    with psycopg.connect(settings.database_url, autocommit=True) as admin:
        for name in made:
            admin.execute(f'DROP DATABASE "{name}" WITH (FORCE)')


@pytest.fixture
def fresh_database(scratch_databases: Callable[[], str]) -> str:
    return scratch_databases()


def catalog(url: str) -> list[tuple[str, str]]:
    with psycopg.connect(url) as conn:
        return conn.execute(CATALOG).fetchall()


def test_migrations_build_the_schema_from_scratch_and_twice_is_a_no_op(fresh_database: str) -> None:
    applied = migrate.apply(fresh_database)
    assert [m.version for m in applied] == [m.version for m in migrate.available()]
    assert migrate.apply(fresh_database) == []
    with psycopg.connect(fresh_database) as conn:
        versions = [
            row[0] for row in conn.execute("SELECT version FROM schema_migrations ORDER BY 1")
        ]
    assert versions == [m.version for m in migrate.available()]


def test_the_migrations_build_exactly_what_schema_sql_describes(
    scratch_databases: Callable[[], str],
) -> None:
    fresh_database, from_schema = scratch_databases(), scratch_databases()
    migrate.apply(fresh_database)
    with psycopg.connect(from_schema) as conn:
        conn.execute(migrate.SCHEMA_FILE.read_text().encode())
    from_migrations = catalog(fresh_database)
    assert from_migrations  # the comparison is about something
    assert from_migrations == catalog(from_schema)


def test_the_database_refuses_a_merchant_key_without_a_merchant(fresh_database: str) -> None:
    migrate.apply(fresh_database)
    with psycopg.connect(fresh_database) as conn, pytest.raises(psycopg.errors.CheckViolation):
        conn.execute(
            "INSERT INTO api_keys (id, kind, mode, secret_hash) VALUES"
            " ('aaaaaaaaaaaaaaaa', 'merchant', 'live', decode(repeat('00', 32), 'hex'))"
        )


async def test_a_stripe_account_added_before_0006_still_builds_its_connector(
    fresh_database: str,
) -> None:
    """0006 moved an account's API base and multicapture into settings; its sealed bare secret
    stays as it was. The directory must build the same connector from both."""
    master = new_master_key()
    box = CredentialBox(master)
    with psycopg.connect(fresh_database, autocommit=True) as conn:
        conn.execute(
            "CREATE TABLE schema_migrations (version integer PRIMARY KEY, name text NOT NULL,"
            " applied_at timestamptz NOT NULL DEFAULT now())"
        )
        for migration in migrate.available():
            if migration.version < 6:
                conn.execute(migration.path.read_text().encode())
                conn.execute(
                    "INSERT INTO schema_migrations (version, name) VALUES (%s, %s)",
                    (migration.version, migration.name),
                )
        conn.execute("INSERT INTO merchants (id, name) VALUES ('mer_old', 'old')")
        conn.execute(
            "INSERT INTO processor_accounts (merchant_id, name, kind, api_base_url,"
            " secret_ciphertext, multicapture) VALUES"
            " ('mer_old', 'stripe-main', 'stripe', 'https://stripe.test', %s, true)",
            (Fernet(master.encode()).encrypt(b"sk_test_old"),),  # sealed as then: unbound
        )
    assert [m.version for m in migrate.apply(fresh_database)] == [
        m.version for m in migrate.available() if m.version >= 6
    ]
    pool = AsyncConnectionPool(fresh_database, open=False, kwargs={"autocommit": True})
    await pool.open()
    try:
        async with httpx.AsyncClient() as http:
            directory = ProcessorDirectory(Resources(pool=pool, http=http), box)
            processor = await directory.get("mer_old", "stripe", "stripe-main")
        assert isinstance(processor, StripeProcessor)
        assert (
            repr(processor) == "StripeProcessor(api_base='https://stripe.test', multicapture=True)"
        )
        assert processor.capabilities.multicapture
    finally:
        await pool.close()


def test_the_sandboxs_ledger_survives_a_postgresql_crash(fresh_database: str) -> None:
    """A processor remembers what it did: its ledger is written ahead (not UNLOGGED, whose
    tables come back empty after a crash and would make the sandbox do things twice)."""
    migrate.apply(fresh_database)
    with psycopg.connect(fresh_database) as conn:
        rows = conn.execute(
            "SELECT relname, relpersistence FROM pg_class"
            " WHERE relname IN ('sandbox_operations', 'sandbox_calls') ORDER BY 1"
        ).fetchall()
    assert rows == [("sandbox_calls", "p"), ("sandbox_operations", "p")]
