"""Read side of the domain: payment listings, runs and their history."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from psycopg.rows import dict_row

from workflows.db import Database, Q
from workflows.errors import RunNotFound
from workflows.model import HistoryEntry, Payment, Run, from_row


class Reads:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def list_payments(
        self,
        merchant_id: str,
        *,
        limit: int,
        after: tuple[datetime, str] | None = None,
        before: tuple[datetime, str] | None = None,
        **filters: Any,
    ) -> tuple[list[Payment], bool]:
        """One page, newest first, and whether more rows lie beyond it in its direction."""
        params = {
            "merchant_id": merchant_id,
            "limit": limit + 1,
            "after_at": after[0] if after else None,
            "after_id": after[1] if after else None,
            "before_at": before[0] if before else None,
            "before_id": before[1] if before else None,
            **{
                name: filters.get(name)
                for name in (
                    "statuses",
                    "currencies",
                    "order_id",
                    "customer_ids",
                    "from_date",
                    "to_date",
                    "min_amount",
                    "max_amount",
                    "processors",
                    "last4s",
                )
            },
        }
        async with self._db.connection() as conn:
            cur = conn.cursor(row_factory=dict_row)
            await cur.execute(Q["list_payments"], params)
            rows = await cur.fetchall()
        has_more = len(rows) > limit
        page = [from_row(Payment, row) for row in rows[:limit]]
        if before is not None:
            page.reverse()
        return page, has_more

    async def list_runs(
        self, *, state: str | None = None, payment_id: str | None = None, limit: int = 100
    ) -> list[Run]:
        async with self._db.connection() as conn:
            cur = conn.cursor(row_factory=dict_row)
            await cur.execute(
                Q["list_runs"], {"state": state, "payment_id": payment_id, "limit": limit}
            )
            return [from_row(Run, row) for row in await cur.fetchall()]

    async def run(self, run_id: str) -> Run:
        async with self._db.connection() as conn:
            cur = conn.cursor(row_factory=dict_row)
            await cur.execute(Q["get_run"], {"id": run_id})
            row = await cur.fetchone()
        if row is None:
            raise RunNotFound(f"no workflow run with id {run_id!r}")
        return from_row(Run, row)

    async def run_with_history(self, run_id: str) -> tuple[Run, list[HistoryEntry]]:
        run = await self.run(run_id)
        async with self._db.connection() as conn:
            cur = conn.cursor(row_factory=dict_row)
            await cur.execute(Q["run_history"], {"merchant_id": run.merchant_id, "run_id": run.id})
            history = [from_row(HistoryEntry, r) for r in await cur.fetchall()]
        return run, history
