"""Runs that no request is driving any more: due runs claimed by workers, and operators' replays.

A worker (any process, any machine) claims due runs with `FOR UPDATE SKIP LOCKED` and resumes
each with the same processor key; after `max_recoveries` passes at the processor call, a run is
marked stuck for an operator to replay. A process that dies mid-run leaves a lease that runs out;
the run is then due like any other.
"""

from __future__ import annotations

import asyncio
import secrets

import structlog
from psycopg.rows import dict_row

from workflows.commands import Payments
from workflows.db import Database, Q
from workflows.errors import RunNotReplayable
from workflows.model import RecoveryPoint, Run, RunState, from_row
from workflows.reads import Reads
from workflows.runner import Runner

log = structlog.get_logger("workflows.recovery")


class Recovery:
    def __init__(self, db: Database, runner: Runner, payments: Payments, reads: Reads) -> None:
        self._db = db
        self._runner = runner
        self._payments = payments
        self._reads = reads

    async def recover_due(self, limit: int = 20) -> int:
        """One pass: claim due runs (SKIP LOCKED) and resume them all. Returns how many."""
        claimed = await self.claim_due(limit)
        await asyncio.gather(*(self.resume(run, owner) for run, owner in claimed))
        return len(claimed)

    async def claim_due(self, limit: int) -> list[tuple[Run, str]]:
        """Claim up to `limit` due runs for this process, each under a lease of its own."""
        owner = f"{self._runner.owner}/worker-{secrets.token_hex(4)}"
        async with self._db.connection() as conn:
            cur = conn.cursor(row_factory=dict_row)
            await cur.execute(
                Q["claim_due_runs"],
                {
                    "limit": limit,
                    "lease_owner": owner,
                    "lease_seconds": self._runner.config.lease_seconds,
                    "quiet_seconds": self._runner.config.quiet_seconds,
                },
            )
            return [(from_row(Run, row), owner) for row in await cur.fetchall()]

    async def resume(self, run: Run, owner: str) -> None:
        """Resume one claimed run from its recovery point; never raises (the lease decides)."""
        with structlog.contextvars.bound_contextvars(run_id=run.id, payment_id=run.payment_id):
            try:
                if (
                    run.recovery_point is RecoveryPoint.CALL_PROCESSOR
                    and run.recoveries > self._runner.config.max_recoveries
                ):
                    await self._mark_stuck(run, owner)
                    return
                await self._runner.history(
                    run,
                    "recovery_started",
                    {"recoveries": run.recoveries, "point": run.recovery_point},
                )
                await self._runner.drive(run, owner)
                await self._payments.capture_on_create(run)
            except Exception:
                # The run keeps its lease until it runs out, then it is due again.
                log.exception("recovery_failed")

    async def replay(self, run_id: str, by: str = "operator") -> Run:
        """An operator's replay: resume a stuck (or due) run now, with the same processor key
        (asking the processor first; refused when a re-send could act twice)."""
        run, owner, was_stuck = await self._claim_for_operator(run_id, "replay")
        await self._runner.history(run, "replayed", {"by": by, "point": run.recovery_point})
        try:
            await self._runner.drive(run, owner, operator=True)
        except BaseException:
            # A replay that could not be done leaves the run as it found it (stuck, or due for
            # the worker), not running under a lease nobody renews.
            await self._give_back(run, owner, stuck=was_stuck, what="replay")
            raise
        await self._payments.capture_on_create(run)
        return await self._reads.run(run_id)

    async def resolve(self, run_id: str, *, happened: bool | None, by: str) -> Run:
        """An operator's resolution of a stuck (or due) run to a definite outcome, without
        re-sending anything: the processor's definite answer, or else the operator's word
        (`happened`, after checking with the processor). Its reservation is applied or
        released; its history names `by` (the operator's key id)."""
        run, owner, was_stuck = await self._claim_for_operator(run_id, "resolve")
        try:
            await self._runner.resolve(run, owner, happened, by)
        except BaseException:
            await self._give_back(run, owner, stuck=was_stuck, what="resolve")
            raise
        await self._payments.capture_on_create(run)
        return await self._reads.run(run_id)

    async def _claim_for_operator(self, run_id: str, what: str) -> tuple[Run, str, bool]:
        """The run, claimed for an operator's action, and whether it was stuck."""
        owner = f"{self._runner.owner}/{what}-{secrets.token_hex(4)}"
        async with self._db.connection() as conn:
            cur = conn.cursor(row_factory=dict_row)
            await cur.execute(
                Q["claim_run_for_operator"],
                {
                    "id": run_id,
                    "lease_owner": owner,
                    "lease_seconds": self._runner.config.lease_seconds,
                    "lapsed_lease": what == "replay",
                    "quiet_seconds": self._runner.config.quiet_seconds,
                },
            )
            row = await cur.fetchone()
        if row is None:
            run = await self._reads.run(run_id)
            if run.state.finished:
                raise RunNotReplayable(
                    f"run {run_id} already {run.state}: it is finished, there is nothing to {what}"
                )
            if run.lease_owner is None and run.quiet_until is not None:
                raise RunNotReplayable(
                    f"run {run_id} was taken over from a process that lost its lease and may "
                    f"still be sending until {run.quiet_until}: {what} it after that, or replay it"
                )
            raise RunNotReplayable(
                f"run {run_id} is in progress ({run.lease_owner} holds it, until "
                f"{run.lease_expires_at}); {what} it once it is stuck"
                + ("" if what == "replay" else ", or replay it")
            )
        return from_row(Run, row), owner, row["previous_state"] == RunState.STUCK

    async def _give_back(self, run: Run, owner: str, *, stuck: bool, what: str) -> None:
        detail = {"back_to": "stuck" if stuck else "due"}
        async with self._db.transaction() as conn:
            await conn.execute(
                Q["mark_stuck" if stuck else "release_run"],
                {"merchant_id": run.merchant_id, "id": run.id, "lease_owner": owner},
            )
            await self._runner.history(run, f"{what}_failed", detail, conn)

    async def _mark_stuck(self, run: Run, owner: str) -> None:
        async with self._db.transaction() as conn:
            await conn.execute(
                Q["mark_stuck"],
                {"merchant_id": run.merchant_id, "id": run.id, "lease_owner": owner},
            )
            await self._runner.history(run, "stuck", {"recoveries": run.recoveries - 1}, conn)
        log.error("workflow_run_stuck", run_id=run.id, payment_id=run.payment_id)
