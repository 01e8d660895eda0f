"""The worker: resumes runs whose process died, runs awaiting recovery, and settlements.

Any number of workers may run on any number of machines; `Recovery.recover_due` claims each due run
for exactly one of them (`FOR UPDATE SKIP LOCKED`). In embedded `make run` mode the gateway runs
one inside its own process.
"""

from __future__ import annotations

import asyncio
import contextlib

import structlog

from workflows.engine import Engine

log = structlog.get_logger("workflows.worker")


async def run(engine: Engine, stop: asyncio.Event, *, poll_seconds: float = 1.0) -> None:
    log.info("worker_started", owner=engine.owner)
    while not stop.is_set():
        try:
            resumed = await engine.recovery.recover_due()
        except Exception:
            log.exception("worker_pass_failed")
            resumed = 0
        if resumed:
            continue  # more may be due: look again at once
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=poll_seconds)
    log.info("worker_stopped", owner=engine.owner)
