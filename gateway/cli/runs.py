"""`gateway workflows` and `gateway worker`: inspect, replay and resume workflow runs."""

from __future__ import annotations

import asyncio
import signal

import click

from gateway.cli.common import actor, when, with_engine
from gateway.services import Services
from workflows import worker as worker_loop
from workflows.errors import RunNotReplayable
from workflows.model import HistoryEntry, Run, RunState


@click.group("workflows")
def group() -> None:
    """Inspect, replay and resolve workflow runs."""


@group.command("list")
@click.option("--state", type=click.Choice([s.value for s in RunState]))
@click.option("--payment", help="only the runs of this payment id")
@click.option("--limit", type=int, default=50, show_default=True)
def list_(state: str | None, payment: str | None, limit: int) -> None:
    """List runs, most recently changed first."""

    async def work(services: Services) -> list[Run]:
        return await services.reads.list_runs(state=state, payment_id=payment, limit=limit)

    runs = with_engine(work)
    click.echo(
        f"{'RUN':<26}{'KIND':<11}{'STATE':<11}{'POINT':<18}{'PAYMENT':<26}"
        f"{'AMOUNT':>9}  {'TRIES':>5}  {'RECOV':>5}  UPDATED"
    )
    for run in runs:
        click.echo(
            f"{run.id:<26}{run.kind:<11}{run.state:<11}{run.recovery_point:<18}"
            f"{run.payment_id:<26}{run.amount:>9}  {run.attempts:>5}  {run.recoveries:>5}  "
            f"{when(run.updated_at)}"
        )
    if not runs:
        click.echo("(no runs)")


@group.command()
@click.argument("run_id")
def show(run_id: str) -> None:
    """A run and its history."""

    async def work(services: Services) -> tuple[Run, list[HistoryEntry]]:
        return await services.reads.run_with_history(run_id)

    run, history = with_engine(work)
    click.echo(f"run {run.id}: {run.kind} of payment {run.payment_id} (merchant {run.merchant_id})")
    click.echo(f"  state {run.state}, recovery point {run.recovery_point}, amount {run.amount}")
    click.echo(f"  processor calls {run.attempts}, recoveries {run.recoveries}")
    click.echo(f"  processor key {run.processor_key}")
    if run.account:
        click.echo(f"  processor account {run.account}")
    if run.state is RunState.RUNNING:
        click.echo(f"  lease {run.lease_owner or '-'} until {when(run.lease_expires_at)}")
        click.echo(f"  next attempt {when(run.next_attempt_at)}")
    if run.last_error:
        click.echo(f"  last error {run.last_error}")
    click.echo("history:")
    for entry in history:
        detail = " ".join(
            f"{key}={value}" for key, value in entry.detail.items() if value is not None
        )
        click.echo(f"  {entry.at:%Y-%m-%d %H:%M:%S.%f}  {entry.event:<20} {detail}")


@group.command()
@click.argument("run_id", required=False)
@click.option("--all-stuck", is_flag=True, help="replay every stuck run")
def replay(run_id: str | None, all_stuck: bool) -> int:
    """Resume a stuck run now, with the same processor key."""
    if (run_id is None) == (not all_stuck):
        raise click.UsageError("give a RUN_ID or --all-stuck")

    async def work(services: Services) -> int:
        if all_stuck:
            stuck = await services.reads.list_runs(state=RunState.STUCK, limit=10_000)
            ids = [run.id for run in stuck]
            if not ids:
                click.echo("no stuck runs")
        else:
            assert run_id is not None
            ids = [run_id]
        refused = 0
        for each in ids:
            try:
                run = await services.engine.recovery.replay(each, by=actor())
            except RunNotReplayable as error:
                click.echo(f"gateway: refused: {error}", err=True)
                refused += 1
                continue
            status = await services.engine.payments.status(run.merchant_id, run.payment_id)
            click.echo(f"replayed {run.id}: {run.state} (payment {run.payment_id} is {status})")
        return 1 if refused else 0

    return with_engine(work)


@group.command()
@click.argument("run_id")
@click.option(
    "--outcome",
    type=click.Choice(["succeeded", "failed"]),
    help="what you found at the processor, when it cannot answer the gateway itself",
)
def resolve(run_id: str, outcome: str | None) -> int:
    """End a stuck run with a definite outcome, sending nothing to the processor.

    The processor is asked first and its definite answer is applied; when it cannot answer
    (or its figures differ from the gateway's), check the payment at the processor and give
    --outcome. The run's reservation is applied (succeeded) or released (failed). An
    authorization resolved as failed goes on to its routing rule's next account, if it has one
    (a new attempt, with a new key, by the worker).
    """

    async def work(services: Services) -> int:
        happened = None if outcome is None else outcome == "succeeded"
        try:
            run = await services.engine.recovery.resolve(run_id, happened=happened, by=actor())
        except RunNotReplayable as error:
            click.echo(f"gateway: refused: {error}", err=True)
            return 1
        status = await services.engine.payments.status(run.merchant_id, run.payment_id)
        then = ""
        if run.state == "running":
            then = "; the worker tries its routing rule's next account"
        click.echo(f"resolved {run.id}: {run.state} (payment {run.payment_id} is {status}){then}")
        return 0

    return with_engine(work)


@click.command()
@click.option("--once", is_flag=True, help="one pass over what is due, then exit")
def worker(once: bool) -> None:
    """Resume runs that are due (timed out, awaiting an answer, left by a dead process) and
    deliver webhooks, until stopped. Any number may run, on any machines."""

    async def work(services: Services) -> None:
        if once:
            resumed = await services.engine.recovery.recover_due()
            delivered = await services.webhooks.deliver_due()
            click.echo(f"resumed {resumed} run(s), tried {delivered} webhook delivery(ies)")
            return
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, stop.set)
        await asyncio.gather(worker_loop.run(services.engine, stop), services.webhooks.run(stop))

    with_engine(work)
