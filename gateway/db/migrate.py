"""Numbered plain-SQL migrations, applied in order and recorded in `schema_migrations`.

Safe to run twice, and from several processes at once: each run takes a transaction-scoped
advisory lock (migration only, never on a request path) and applies what is missing.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import psycopg

MIGRATIONS_DIR = Path(__file__).parent / "migrations"
SCHEMA_FILE = Path(__file__).parent / "schema.sql"
_NAME = re.compile(r"^(\d{4})_(\w+)\.sql$")
_LOCK_ID = 0x6761_7465  # "gate": an arbitrary constant of this project


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    path: Path


def available() -> list[Migration]:
    found = []
    for path in sorted(MIGRATIONS_DIR.iterdir()):
        match = _NAME.match(path.name)
        if match:
            found.append(Migration(int(match[1]), match[2], path))
    return found


def apply(database_url: str) -> list[Migration]:
    """Apply every migration not yet recorded; return those applied now."""
    applied_now = []
    with psycopg.connect(database_url) as conn:
        for migration in available():
            with conn.transaction():
                conn.execute("SELECT pg_advisory_xact_lock(%s)", (_LOCK_ID,))
                conn.execute(
                    "CREATE TABLE IF NOT EXISTS schema_migrations ("
                    " version integer PRIMARY KEY, name text NOT NULL,"
                    " applied_at timestamptz NOT NULL DEFAULT now())"
                )
                done = conn.execute(
                    "SELECT 1 FROM schema_migrations WHERE version = %s", (migration.version,)
                ).fetchone()
                if done:
                    continue
                conn.execute(migration.path.read_text(encoding="utf-8").encode())
                conn.execute(
                    "INSERT INTO schema_migrations (version, name) VALUES (%s, %s)",
                    (migration.version, migration.name),
                )
                applied_now.append(migration)
    return applied_now
