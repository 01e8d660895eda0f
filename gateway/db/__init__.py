"""PostgreSQL of the edge: the pool and the edge's named queries (driver errors become domain
errors in `workflows.db`, the one boundary)."""

from __future__ import annotations

from pathlib import Path

from psycopg_pool import AsyncConnectionPool

from workflows.db import breaker_of, load_queries

QUERIES = load_queries(Path(__file__).with_name("queries.sql"))


def create_pool(
    database_url: str, *, min_size: int, max_size: int, checkout_seconds: float = 3.0
) -> AsyncConnectionPool:
    """A pool opened by the app's lifespan (`await pool.open()`), never at import.

    A new connection gets `checkout_seconds` to be made; once the database has been seen failing,
    a request waits no longer than that for a connection (`workflows.db.Breaker`): during an
    outage the answer is a prompt 503 with Retry-After, not a request hanging for 30 s, while a
    burst against a healthy database still queues.
    """
    pool = AsyncConnectionPool(
        database_url,
        min_size=min_size,
        max_size=max_size,
        open=False,
        kwargs={"autocommit": True, "connect_timeout": max(2, round(checkout_seconds))},
        name="gateway",
    )
    breaker_of(pool).short_seconds = checkout_seconds
    return pool
