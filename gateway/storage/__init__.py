"""PostgreSQL access of the edge: the pool, the named queries, and driver errors made ours."""

from __future__ import annotations

from pathlib import Path

from psycopg_pool import AsyncConnectionPool

from workflows.sql import load_queries

QUERIES = load_queries(Path(__file__).with_name("queries.sql"))


def create_pool(
    database_url: str,
    *,
    min_size: int,
    max_size: int,
    name: str = "gateway",
    asynchronous_commit: bool = False,
) -> AsyncConnectionPool:
    """A pool opened by the app's lifespan (`await pool.open()`), never at import.

    `asynchronous_commit`: commits return before their WAL is flushed to disk. Only for records
    whose loss in a PostgreSQL crash is harmless; any later synchronous commit (a workflow
    phase) flushes the WAL up to it anyway.
    """
    kwargs: dict[str, object] = {"autocommit": True}
    if asynchronous_commit:
        kwargs["options"] = "-c synchronous_commit=off"
    return AsyncConnectionPool(
        database_url,
        min_size=min_size,
        max_size=max_size,
        open=False,
        kwargs=kwargs,
        name=name,
    )
