"""Processor events in (a processor's webhooks): each once, and the runs they concern woken.

An event is news that something changed at the processor. It is not taken as the outcome
itself: the runs it concerns (waiting for a 3-D Secure authorization, an asynchronous
settlement, or an outcome that was lost) are made due now, and the worker asks the processor,
through the same status path it uses when it polls, and applies that answer. So an event cannot
move a payment backwards or past what the processor reports, and polling is only the fallback.
"""

from __future__ import annotations

from dataclasses import dataclass

from processors.base import Notice
from workflows.db import Connection, Q


@dataclass(frozen=True)
class Received:
    duplicate: bool  # seen before: acknowledged, nothing done again
    woken: list[str]  # the runs made due now


async def receive(conn: Connection, merchant_id: str, account: str, notice: Notice) -> Received:
    """Record the event (once), and wake the runs of this account's payments it concerns."""
    async with conn.transaction():
        cur = await conn.execute(
            Q["record_processor_event"],
            {
                "merchant_id": merchant_id,
                "account": account,
                "id": notice.event_id,
                "type": notice.type,
            },
        )
        if await cur.fetchone() is None:
            return Received(duplicate=True, woken=[])
        cur = await conn.execute(
            Q["wake_runs_for_processor_event"],
            {
                "merchant_id": merchant_id,
                "account": account,
                "object_id": notice.object_id,
                "payment_id": notice.payment_id,
                "processor_key": notice.processor_key,
            },
        )
        woken = [row[0] for row in await cur.fetchall()]
    return Received(duplicate=False, woken=woken)
