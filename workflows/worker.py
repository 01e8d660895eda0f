"""The worker: resumes runs whose process died, runs awaiting recovery, and settlements.

Any number of workers may run on any number of machines; `Recovery.claim_due` claims each due
run for exactly one of them (`FOR UPDATE SKIP LOCKED`). Claimed runs proceed independently, up to
`concurrency` at once: a slow one (a processor taking minutes) holds up no other, and due runs are
claimed as soon as there is room. In embedded `make run` mode the gateway runs one inside its own
process.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import structlog

from workflows.engine import Engine

log = structlog.get_logger("workflows.worker")


async def run(
    engine: Engine,
    stop: asyncio.Event,
    *,
    poll_seconds: float = 1.0,
    concurrency: int = 20,
    grace_seconds: float = 10.0,
) -> None:
    log.info("worker_started", owner=engine.owner)
    running: set[asyncio.Task[None]] = set()
    stopping = asyncio.ensure_future(stop.wait())
    while not stop.is_set():
        claimed = []
        room = concurrency - len(running)
        if room > 0:
            try:
                claimed = await engine.recovery.claim_due(room)
            except Exception:
                log.exception("worker_pass_failed")
        for due, owner in claimed:
            task = asyncio.create_task(engine.recovery.resume(due, owner))
            running.add(task)
            task.add_done_callback(running.discard)
        if claimed and len(running) < concurrency:
            continue  # more may be due: look again at once
        # Wait for the next poll, a stop, or (when full) a run to finish.
        waiters: set[asyncio.Future[Any]] = {stopping}
        if len(running) >= concurrency:
            waiters.update(running)
        await asyncio.wait(waiters, timeout=poll_seconds, return_when=asyncio.FIRST_COMPLETED)
    stopping.cancel()
    if running:
        # Let runs in progress finish; one that does not is left to its lease (it is resumed
        # by whichever worker claims it next).
        _, late = await asyncio.wait(running, timeout=grace_seconds)
        for task in late:
            task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.gather(*late, return_exceptions=True)
    log.info("worker_stopped", owner=engine.owner)
