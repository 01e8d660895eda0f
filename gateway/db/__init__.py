"""PostgreSQL of the edge: the pool and the edge's named queries (driver errors become domain
errors in `workflows.db`, the one boundary)."""

from __future__ import annotations

from pathlib import Path

from psycopg_pool import AsyncConnectionPool

from workflows.db import load_queries

QUERIES = load_queries(Path(__file__).with_name("queries.sql"))


def create_pool(
    database_url: str, *, min_size: int, max_size: int, checkout_seconds: float = 3.0
) -> AsyncConnectionPool:
    """A pool opened by the app's lifespan (`await pool.open()`), never at import.

    A request waits at most `checkout_seconds` for a connection, and a new connection at most as
    long to be made: while PostgreSQL is down or saturated the answer is a prompt 503 with
    Retry-After, not a request hanging for the pool's default 30 s.
    """
    return AsyncConnectionPool(
        database_url,
        min_size=min_size,
        max_size=max_size,
        open=False,
        timeout=checkout_seconds,
        kwargs={"autocommit": True, "connect_timeout": max(2, round(checkout_seconds))},
        name="gateway",
    )
