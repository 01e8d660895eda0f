"""PostgreSQL access of the edge: the pool, the named queries, and driver errors made ours."""

from __future__ import annotations

from pathlib import Path

from psycopg_pool import AsyncConnectionPool

from workflows.db import load_queries

QUERIES = load_queries(Path(__file__).with_name("queries.sql"))


def create_pool(database_url: str, *, min_size: int, max_size: int) -> AsyncConnectionPool:
    """A pool opened by the app's lifespan (`await pool.open()`), never at import."""
    return AsyncConnectionPool(
        database_url,
        min_size=min_size,
        max_size=max_size,
        open=False,
        kwargs={"autocommit": True},
        name="gateway",
    )
