"""The domain's PostgreSQL: named queries, and the one boundary where driver errors become ours.

Every use of a connection goes through `Database.connection()` or `.transaction()` (or, for a
connection handed in from outside, `translated()`): a lost server or an exhausted pool becomes
`StorageUnavailable`, a broken constraint `Conflict` (with its name). Nothing outside this module
catches a psycopg error.

Queries live in `.sql` files as blocks that start with `-- name: <query_name>` (procrastinate's
style); parameters are `%(param)s`. No SQL is assembled at run time.
"""

from __future__ import annotations

import re
import time
import weakref
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import Any

import msgspec
import psycopg
from psycopg.types.json import Jsonb
from psycopg_pool import AsyncConnectionPool, PoolTimeout

from workflows.errors import Conflict, StorageUnavailable

_HEADER = re.compile(r"^--\s*name:\s*(\w+)\s*$", re.MULTILINE)
Connection = psycopg.AsyncConnection[Any]


def load_queries(path: Path) -> dict[str, str]:
    text = path.read_text(encoding="utf-8")
    parts = _HEADER.split(text)
    queries: dict[str, str] = {}
    for name, body in zip(parts[1::2], parts[2::2], strict=True):
        if name in queries:
            raise ValueError(f"{path.name}: query {name!r} defined twice")
        queries[name] = _compact(body)
    return queries


def _compact(body: str) -> str:
    """A query as sent: without its comment lines and indentation. Shorter text is cheaper to
    send, and psycopg caches its parse of a query only up to 4 KiB (else it parses every time)."""
    lines = (line.strip() for line in body.splitlines())
    return "\n".join(line for line in lines if line and not line.startswith("--"))


Q = load_queries(Path(__file__).with_name("queries.sql"))


def jsonb(value: Any) -> Jsonb | None:
    """A value for a jsonb column, in the domain types' own encoding (msgspec)."""
    return None if value is None else Jsonb(value, dumps=msgspec.json.encode)


@contextmanager
def translated() -> Iterator[None]:
    """The boundary: a driver error raised inside becomes the domain's."""
    try:
        yield
    except psycopg.errors.IntegrityError as error:
        raise Conflict(error.diag.constraint_name) from error
    except (psycopg.OperationalError, PoolTimeout) as error:
        raise StorageUnavailable(str(error)) from error


class Breaker:
    """Whether the database was just seen failing, so that requests stop queueing for it.

    While PostgreSQL answers, a request waits as long as the pool allows for a connection (a
    burst queues rather than fails). Once a connection has failed, requests wait at most
    `short_seconds` until one succeeds again: during an outage the answer is a prompt 503.
    """

    def __init__(self, short_seconds: float = 3.0, open_seconds: float = 5.0) -> None:
        self.short_seconds = short_seconds
        self._open_seconds = open_seconds
        self._failing_until = 0.0

    def wait(self) -> float | None:
        """How long to wait for a connection now (None: the pool's own timeout)."""
        return self.short_seconds if time.monotonic() < self._failing_until else None

    def failed(self) -> None:
        self._failing_until = time.monotonic() + self._open_seconds

    def succeeded(self) -> None:
        self._failing_until = 0.0


_breakers: weakref.WeakKeyDictionary[AsyncConnectionPool, Breaker] = weakref.WeakKeyDictionary()


def breaker_of(pool: AsyncConnectionPool) -> Breaker:
    """The pool's breaker, shared by every Database over it."""
    found = _breakers.get(pool)
    if found is None:
        found = _breakers[pool] = Breaker()
    return found


class Database:
    def __init__(self, pool: AsyncConnectionPool) -> None:
        self.pool = pool
        self._breaker = breaker_of(pool)

    @asynccontextmanager
    async def connection(self) -> AsyncIterator[Connection]:
        try:
            with translated():
                async with self.pool.connection(timeout=self._breaker.wait()) as conn:
                    yield conn
        except StorageUnavailable:
            self._breaker.failed()
            raise
        self._breaker.succeeded()

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[Connection]:
        async with self.connection() as conn, conn.transaction():
            yield conn
