"""A run's three phases, for every kind of run.

1. `start`: one transaction locks the payment, applies the command's plan (its rules and
   reservations), and writes the run with a freshly generated processor key. Commit.
2. `drive`: call the processor with that key, retrying only transient failures (bounded, jittered
   backoff); a heartbeat keeps the run's lease while the call lasts.
3. `record`: the answer's changes (`outcomes.decide`) written to the transaction, the payment
   and the run by one statement, which also returns the payment as the edge shows it. Straight
   after phase 1 that statement runs on its own, writing only if the payment row is still as
   phase 1 left it; otherwise (or if it was not) one transaction locks the payment first and
   decides on the row as it is.

An outcome that stays unknown after the retries leaves the payment's status as it was (with a
`GATEWAY_TIMEOUT` status reason), marks the transaction unknown, and leaves the run for recovery.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import socket
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, replace
from datetime import timedelta
from typing import Any, Protocol

import msgspec
import structlog
from psycopg.rows import dict_row
from tenacity import (
    AsyncRetrying,
    retry_if_exception,
    stop_after_attempt,
    stop_after_delay,
    wait_exponential_jitter,
)

from processors.base import Call, Outcome, Processor, Result
from processors.errors import CallFailed, Misconfigured, OutcomeUnknown, TransientError
from workflows import metrics, notifications, outcomes, routing, tracing
from workflows.circuits import Circuits, LocalCircuits, Watched
from workflows.credentials import CredentialError
from workflows.db import Connection, Database, Q, jsonb
from workflows.errors import (
    AccountError,
    Conflict,
    IdempotencyKeyReused,
    PaymentError,
    ProcessorUnavailable,
    RunAlreadyExists,
    RunNotReplayable,
)
from workflows.model import (
    AuthorizeInput,
    CaptureInput,
    Event,
    Payment,
    PaymentStatus,
    PaymentView,
    Run,
    RunInput,
    RunKind,
    RunOutcome,
    RunState,
    Transaction,
    from_row,
)
from workflows.notifications import EventType
from workflows.routing import Route

log = structlog.get_logger("workflows.runner")


class ProcessorDirectory(Protocol):
    """Finds the processor of a payment: its kind, and the merchant's account if any."""

    async def get(
        self, merchant_id: str, kind: str, account: str | None, conn: Connection | None = None
    ) -> Processor: ...

    def display_name(self, kind: str) -> str: ...

    async def aclose(self) -> None: ...


@dataclass(frozen=True)
class EngineConfig:
    attempts: int = 3  # processor calls per phase 2, the first included
    max_call_seconds: float = 30.0  # and no retry starts after this long
    backoff_initial_seconds: float = 0.05
    backoff_max_seconds: float = 2.0
    lease_seconds: int = 30
    recovery_backoff_seconds: int = 5
    max_recoveries: int = 5
    settlement_poll_seconds: int = 5

    @property
    def quiet_seconds(self) -> float:
        """How long after its lease ran out a holder may still be sending: its retries' limit
        and one HTTP request's own (connect, write and read timeouts)."""
        return self.max_call_seconds + 60


@dataclass(frozen=True)
class RequestKey:
    """A merchant's idempotency key, with the fingerprint of the request that carried it."""

    key: str
    fingerprint: bytes


@dataclass(frozen=True, kw_only=True)
class Plan:
    """What a command's phase 1 decided: the run to write, and what phase 2 needs."""

    amount: int
    transaction_id: str
    input: RunInput
    payment: Payment  # as phase 1 saw it (locked)
    sale_processor_id: str | None  # the processor's id of the authorization, for follow-ups
    capture_event_id: uuid.UUID | None = None
    # Nothing to send: phase 1 did it all (a payment its routing rule holds is created; a held
    # payment is cancelled). The run records the request, finished with this outcome.
    unsent: RunOutcome | None = None
    # The payment row's version (PostgreSQL's xmin) as phase 1 committed it: phase 3 may write
    # what it decides from `payment` without locking first, if the row is still that version.
    version: str | None = None


Planner = Callable[[Connection], Awaitable[Plan]]
# What a pass of a run leaves: the payment (if asked for), and the run again if it fell back to
# another account, whose next attempt the same holder drives on.
Passed = tuple[PaymentView | None, Run | None]


def new_id(prefix: str) -> str:
    return f"{prefix}_{secrets.token_hex(10)}"


def processor_key(merchant_id: str, kind: RunKind) -> str:
    """A new processor idempotency key for one attempt of a run."""
    return f"{merchant_id}:{kind}:{secrets.token_urlsafe(18)}"


def honours(lifetime: timedelta | None, age: timedelta) -> bool:
    """Whether a re-send with a key first sent `age` ago is still answered from the processor's
    memory of it: a twelfth of the lifetime is kept in hand (clocks, the re-send's own time)."""
    return lifetime is None or age < lifetime - lifetime / 12


class RunNotResolvable(RunNotReplayable):
    """This run cannot be resolved as asked."""


class KeyForgotten(RunNotReplayable):
    """A run whose outcome is unknown, whose processor no longer honours its key, and which the
    processor could not answer for: re-sending could move money twice."""

    def __init__(self, run: Run, lifetime: timedelta | None, error: Exception | None) -> None:
        super().__init__(
            f"run {run.id}: the processor honours a key for {_span(lifetime)} only, this "
            f"{run.kind} was "
            f"first sent longer ago, and the processor could not say whether it happened "
            f"({error}). Re-sending could {run.kind} twice, so nothing was sent. Check at the "
            f"processor whether the {run.kind} of payment {run.payment_id} (processor key "
            f"{run.processor_key}) happened, then resolve the run with its outcome: "
            f"gateway workflows resolve {run.id} --outcome succeeded|failed"
        )


def _own(run: Run, kind: RunKind) -> int:
    """What the run itself holds of the payment's reservations of `kind`."""
    return run.amount if run.kind is kind else 0


def _figures_moved(run: Run, payment: Payment, asked: Call) -> bool:
    """Whether the figures a capture's or refund's status answer was read against have changed
    since (another capture or refund recorded, or reserved): the answer may be another's."""
    if run.kind is RunKind.CAPTURE:
        now = (payment.amount_captured, payment.capture_reserved - run.amount)
        return now != (asked.captured_before, asked.captures_in_flight)
    if run.kind is RunKind.REFUND:
        now = (payment.amount_refunded, payment.refund_reserved - run.amount)
        return now != (asked.refunded_before, asked.refunds_in_flight)
    return False


def _span(lifetime: timedelta | None) -> str:
    if lifetime is None:
        return "ever"
    seconds = int(lifetime.total_seconds())
    return f"{seconds // 3600} h" if seconds and not seconds % 3600 else f"{seconds} s"


def _worth_retrying(error: BaseException) -> bool:
    """Only transport failures the processor has not ruled out retrying (never a decline)."""
    return isinstance(error, CallFailed) and error.retryable


def repeat_of(
    idempotency: RequestKey,
    state: str,
    fingerprint: bytes | None,
    payment_id: str,
    payment_status: str,
) -> PaymentError:
    """A request whose key already has a run: the same request again, or another reusing it."""
    if fingerprint is not None and bytes(fingerprint) != idempotency.fingerprint:
        return IdempotencyKeyReused(payment_id=payment_id, payment_status=payment_status)
    return RunAlreadyExists(
        payment_id=payment_id,
        payment_status=payment_status,
        finished=RunState(state).finished,  # a stuck run is still in progress
    )


async def keyed_run(
    conn: Connection, merchant_id: str, idempotency: RequestKey
) -> PaymentError | None:
    """Why the merchant's key already has a run, if it has: this request again, or another."""
    cur = await conn.execute(
        Q["find_run_by_idempotency_key"],
        {"merchant_id": merchant_id, "idempotency_key": idempotency.key},
    )
    row = await cur.fetchone()
    if row is None:
        return None
    state, payment_id, payment_status, fingerprint = row
    return repeat_of(idempotency, state, fingerprint, payment_id, payment_status)


async def read_view(
    conn: Connection,
    merchant_id: str,
    payment_id: str,
    processor_name: Callable[[str], str],
    *,
    events: bool,
) -> PaymentView | None:
    """The payment with its transactions (one round trip), and their events when asked for."""
    params = {"merchant_id": merchant_id, "id": payment_id, "payment_id": payment_id}
    cur = conn.cursor(row_factory=dict_row)
    await cur.execute(Q["payment_view"], params)
    row = await cur.fetchone()
    if row is None:
        return None
    payment = from_row(Payment, row)
    transactions = msgspec.convert(row["transactions"], list[Transaction])
    found: list[Event] = []
    if events:
        await cur.execute(Q["payment_events"], params)
        found = [from_row(Event, r) for r in await cur.fetchall()]
    return PaymentView(
        payment=payment,
        transactions=transactions,
        events=found,
        processor_name=processor_name(payment.processor),
    )


class ViewReader:
    """A payment's view within one transaction, read when first asked for and then shared (once
    with events, once without): the change's notifications and the edge's answer read it once.
    Asked for only after the transaction's last write."""

    def __init__(
        self,
        conn: Connection,
        merchant_id: str,
        payment_id: str,
        processor_name: Callable[[str], str],
    ) -> None:
        self._conn = conn
        self._merchant_id = merchant_id
        self._payment_id = payment_id
        self._processor_name = processor_name
        self._read: dict[bool, PaymentView | None] = {}

    def given(self, view: PaymentView) -> None:
        """The view (without events) as the transaction's last write returned it."""
        self._read[False] = view

    async def __call__(self, events: bool = False) -> PaymentView | None:
        if events not in self._read:
            self._read[events] = await read_view(
                self._conn, self._merchant_id, self._payment_id, self._processor_name, events=events
            )
        return self._read[events]


async def announce_status(
    conn: Connection, payment: Payment, view: ViewReader, *, endpoints: bool | None = None
) -> None:
    """A payment's new status, in the transaction that set it: counted (metrics) and written to
    the outbox for the merchant's webhooks. `endpoints`: whether the merchant has one to tell,
    when the transaction's own statement read it (None: asked here)."""
    account = payment.processor_account or payment.processor
    metrics.PAYMENT_STATUS.labels(account, payment.status.value).inc()
    await notifications.emit(
        conn,
        payment.merchant_id,
        payment.mode,
        payment.id,
        EventType.PAYMENT_STATUS,
        view,
        endpoints=endpoints,
    )


class Runner:
    def __init__(
        self,
        db: Database,
        processors: ProcessorDirectory,
        config: EngineConfig,
        circuits: Circuits | None = None,
    ) -> None:
        self._db = db
        self._processors = processors
        self.config = config
        self.circuits = circuits or LocalCircuits()
        self.owner = f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"

    async def processor(
        self, merchant_id: str, kind: str, account: str | None, conn: Connection | None = None
    ) -> Processor:
        """The payment's connector, or ProcessorUnavailable when its set-up is incomplete: asked
        in phase 1, so that a configuration error fails the request before anything is written."""
        try:
            return await self._processors.get(merchant_id, kind, account, conn)
        except (CredentialError, Misconfigured, AccountError) as error:
            raise ProcessorUnavailable(str(error)) from None

    # ---------------------------------------------------------------- phase 1

    async def start(
        self,
        kind: RunKind,
        merchant_id: str,
        payment_id: str,
        idempotency: RequestKey | None,
        plan: Planner,
        *,
        target: str,
    ) -> tuple[Run, str, Plan]:
        """Phase 1. Returns the run, its lease owner, and the plan."""
        owner = f"{self.owner}/{secrets.token_hex(4)}"
        detail = None
        try:
            async with self._db.transaction() as conn:
                planned = await plan(conn)
                detail = {"amount": planned.amount, **msgspec.to_builtins(planned.input)}
                cur = conn.cursor(row_factory=dict_row)
                await cur.execute(
                    Q["insert_run"],
                    {
                        "merchant_id": merchant_id,
                        "id": new_id("run"),
                        "payment_id": payment_id,
                        "kind": kind,
                        "idempotency_key": idempotency.key if idempotency else None,
                        "request_fingerprint": idempotency.fingerprint if idempotency else None,
                        "target": target,
                        "input": jsonb(planned.input),
                        "amount": planned.amount,
                        "transaction_id": planned.transaction_id,
                        "capture_event_id": planned.capture_event_id,
                        # Committed before the first call, sent on every retry and recovery.
                        "processor_key": processor_key(merchant_id, kind),
                        "lease_owner": None if planned.unsent else owner,
                        "outcome": jsonb(planned.unsent),
                        "event": "nothing_to_send" if planned.unsent else "started",
                        "lease_seconds": self.config.lease_seconds,
                        "history_id": uuid.uuid4(),
                        "history_detail": jsonb(detail),
                    },
                )
                row = await cur.fetchone()
                assert row is not None
                run = from_row(Run, row)
                planned = replace(planned, version=row["payment_version"])
        except Conflict as conflict:
            if conflict.constraint != "workflow_runs_one_per_idempotency_key":
                raise
            assert idempotency is not None
            async with self._db.connection() as conn:
                repeat = await keyed_run(conn, merchant_id, idempotency)
            assert repeat is not None
            raise repeat from None
        structlog.contextvars.bind_contextvars(run_id=run.id, payment_id=payment_id)
        return run, owner, planned

    # ---------------------------------------------------------------- phase 2

    async def drive(
        self,
        run: Run,
        owner: str,
        plan: Plan | None = None,
        *,
        view: bool = False,
        events: bool = False,
        operator: bool = False,
    ) -> PaymentView | None:
        """Phases 2 and 3 of a run whose lease `owner` holds; the payment afterwards if `view`.
        An authorization that falls back to another account goes on with the next attempt.

        `plan` is what phase 1 saw of the payment; a recovery reads it anew, and when an earlier
        call may have reached the processor, asks it first (status-first): a definite answer is
        applied; the operation is re-sent only on a definite "did not happen" or while the
        processor still honours the key. Otherwise the outcome stays unknown, and an operator's
        replay (`operator`) is refused with `KeyForgotten`.
        """
        while True:
            with tracing.span(
                f"workflow.{run.kind}",
                run_id=run.id,
                run_kind=str(run.kind),
                payment_id=run.payment_id,
                merchant_id=run.merchant_id,
                processor_account=run.account,
                recovery_point=str(run.recovery_point),
                operator=operator,
            ) as span:
                shown, following = await self._pass(run, owner, plan, view, events, operator)
                if span is not None and following is not None:
                    span.set_attribute("gateway.fell_back_to", following.account or "")
            if following is None:
                return shown
            # The attempt fell back to the next account: its attempt, by this process.
            run, plan = following, None

    async def _pass(
        self, run: Run, owner: str, plan: Plan | None, view: bool, events: bool, operator: bool
    ) -> Passed:
        """One pass of `drive` over the run's current attempt."""
        processor, call = await self._prepare(run, plan)
        if run.recovery_point.asks_status:
            return await self._call(
                run, owner, processor, call, status_only=True, view=view, events=events
            )
        if plan is not None or not run.may_have_reached_processor:
            # The first pass, or nothing was ever sent: the operation itself.
            return await self._call(
                run, owner, processor, call, view=view, events=events, seen=plan
            )
        # An earlier call may have reached the processor: ask first, and apply a definite answer.
        asking = time.monotonic()
        asked, error = await self._ask(run, owner, processor, call)
        if asked is not None and asked.outcome is not Outcome.NOT_FOUND:
            return await self._record(
                run,
                owner,
                asked,
                1,
                None,
                reached=False,
                never_reached=False,
                asked=call,
                view=view,
                events=events,
            )
        lifetime = processor.key_lifetime(call)
        age = call.key_age + timedelta(seconds=time.monotonic() - asking)  # as of now
        if asked is None and not honours(lifetime, age):
            # Neither a definite answer nor a key the processor still honours: a re-send could
            # act twice, so nothing is sent.
            forgotten = KeyForgotten(run, lifetime, error)
            if operator:
                raise forgotten
            return await self._record(
                run,
                owner,
                None,
                1,
                forgotten,
                reached=False,
                never_reached=False,
                view=view,
                events=events,
            )
        # A definite "did not happen", or a key the processor still honours: the same request.
        said = asked.outcome.value if asked is not None else f"no answer ({error})"
        await self.history(run, "status_asked", {"answer": said, "then": "sent again, same key"})
        return await self._call(run, owner, processor, call, view=view, events=events)

    async def _prepare(self, run: Run, plan: Plan | None) -> tuple[Processor, Call]:
        """The run's processor and call; a recovery (no plan) reads the payment anew."""
        age = timedelta(0)
        if plan is None:
            async with self._db.connection() as conn:
                payment = await self._payment_of(conn, run, lock=False)
                sale = await self._sale_processor_id(conn, payment)
                age = await self._key_age(conn, run)
                # The account of the run's own transaction: the one its key was sent to.
                found = await conn.execute(
                    Q["transaction_account"],
                    {"merchant_id": run.merchant_id, "id": run.transaction_id},
                )
                kind, account = await found.fetchone() or (None, None)
            if kind is not None:
                payment = msgspec.structs.replace(
                    payment, processor=kind, processor_account=account
                )
        else:
            payment, sale = plan.payment, plan.sale_processor_id
        connector = await self.processor(
            payment.merchant_id, payment.processor, payment.processor_account
        )
        name = payment.processor_account or payment.processor
        processor = Watched(connector, self.circuits, payment.merchant_id, name)
        call = Call(
            processor_key=run.processor_key,
            reference=payment.id,
            amount=run.amount,
            currency_code=payment.currency_code,
            card=payment.card,
            payment_method_token=payment.payment_method_token,
            processor_transaction_id=sale,
            final=run.input.final if isinstance(run.input, CaptureInput) else True,
            verb=run.kind,
            metadata=payment.metadata or {},
            captured_before=payment.amount_captured,
            captures_in_flight=payment.capture_reserved - _own(run, RunKind.CAPTURE),
            refunded_before=payment.amount_refunded,
            refunds_in_flight=payment.refund_reserved - _own(run, RunKind.REFUND),
            key_age=age,
        )
        return processor, call

    async def resume(self, run: Run, owner: str, resume_token: str, *, events: bool) -> PaymentView:
        """An authorization waiting for the customer (3-D Secure), resumed: the processor is
        told the customer is back and answers as to a status question; that answer is recorded
        like the worker's would be."""
        processor, call = await self._prepare(run, None)

        async def resumed(c: Call) -> Result:
            return await processor.resume(c, resume_token)

        shown, following = await self._call(
            run,
            owner,
            processor,
            call,
            status_only=True,
            view=True,
            events=events,
            question=resumed,
        )
        if following is not None:  # it fell back to another account: that attempt, now
            shown = await self.drive(following, owner, view=True, events=events)
        assert shown is not None
        return shown

    async def resolve(self, run: Run, owner: str, stated: bool | None, by: str) -> None:
        """An operator's resolution of a run whose outcome is unknown, to a definite outcome:
        the processor is asked first, and its definite answer wins; without one, the operator's
        `stated` outcome (True: it happened) is applied. The operation is never re-sent (an
        authorization resolved as not done may go on, by the worker, to its rule's next account,
        as one declined would: a new attempt, with a new key). The run's
        reservation is applied or released, and its history names `by`."""
        processor, call = await self._prepare(run, None)
        asked, error = await self._ask(run, owner, processor, call)
        if asked is not None and asked.outcome in (Outcome.PENDING, Outcome.SETTLING):
            raise RunNotResolvable(
                f"run {run.id}: the processor says the {run.kind} is still "
                f"{asked.outcome.value.lower()}: it has not ended yet, so it cannot be resolved "
                "(the worker keeps asking; cancel the payment to end an authorization)"
            )
        answer = None
        if asked is not None and asked.outcome is Outcome.NOT_FOUND:
            answer = Result(Outcome.FAILED, reason=outcomes.NOT_DONE)
        elif asked is not None and asked.outcome is not Outcome.MISMATCH:
            answer = asked
        if answer is not None:
            happened = not answer.definitive_no
            if stated is not None and stated != happened:
                raise RunNotResolvable(
                    f"run {run.id}: the processor says the {run.kind} "
                    f"{'happened' if happened else 'did not happen'} ({answer.outcome}); "
                    "resolve it without --outcome to apply that answer"
                )
        elif stated is None:
            said = asked.outcome if asked is not None else f"no answer: {error}"
            raise RunNotResolvable(
                f"run {run.id}: the processor could not say whether the {run.kind} happened "
                f"({said}). Check the payment {run.payment_id} at the processor (processor key "
                f"{run.processor_key}), then resolve with --outcome succeeded or --outcome failed"
            )
        await self._record(
            run,
            owner,
            answer or outcomes.stated(run, call.processor_transaction_id, happened=bool(stated)),
            1,
            None,
            reached=False,
            never_reached=False,
            view=False,
            events=False,
            # The processor's answer holds only for the figures it was read against.
            asked=call if answer is not None else None,
            resolved={
                "by": by,
                "stated": None if stated is None else ("succeeded" if stated else "failed"),
                "processor_answer": asked.outcome.value if asked else None,
            },
        )

    async def _ask(
        self, run: Run, owner: str, processor: Processor, call: Call
    ) -> tuple[Result | None, CallFailed | None]:
        """The processor's answer to "did this operation happen?", or None if it cannot tell."""
        async with self._heartbeat(run, owner):
            try:
                async for attempt in self._retrying():
                    with attempt:
                        return await processor.status(call), None
            except CallFailed as error:
                return None, error
        raise AssertionError("unreachable")  # pragma: no cover

    async def _call(
        self,
        run: Run,
        owner: str,
        processor: Processor,
        call: Call,
        *,
        status_only: bool = False,
        view: bool,
        events: bool,
        question: Callable[[Call], Awaitable[Result]] | None = None,
        seen: Plan | None = None,
    ) -> Passed:
        """Phase 2 (the call, retried while nothing definite came back) and phase 3.

        A retry after a call that may have reached the processor, once the processor no longer
        honours the key, asks first, as a recovery does. `question`: what a status-only pass
        asks instead of `status` (a resume). `seen`: phase 1's plan, if this pass follows it."""
        operation = processor.status if status_only else getattr(processor, run.kind)
        if question is not None:
            operation = question
        lifetime = processor.key_lifetime(call)
        started = time.monotonic()
        attempts = 0
        result: Result | None = None
        answered: Call | None = None  # the result is a status question's, about this call
        error: Exception | None = None
        reached = False  # may any call of this pass have reached the processor?
        async with self._heartbeat(run, owner):
            try:
                async for attempt in self._retrying():
                    with attempt:
                        attempts += 1
                        age = call.key_age + timedelta(seconds=time.monotonic() - started)
                        try:
                            asked = None
                            if reached and not status_only and not honours(lifetime, age):
                                asked = await processor.status(call)
                            if asked is not None and asked.outcome is not Outcome.NOT_FOUND:
                                result, answered = asked, call
                            else:
                                result, answered = await operation(call), None
                        except TransientError:
                            raise  # nothing was done at the processor
                        except BaseException:
                            reached = True
                            raise
            except CallFailed as exhausted:
                error = exhausted
        # The operation itself (not a status question), and none of its calls, in this pass or
        # any before, reached the processor: nothing was done, so the answer is a definite no.
        never_reached = (
            result is None
            and isinstance(error, TransientError)
            and not reached
            and not run.may_have_reached_processor
            and not run.recovery_point.asks_status
        )
        return await self._record(
            run,
            owner,
            result,
            attempts,
            error,
            reached=reached or result is not None,
            never_reached=never_reached,
            view=view,
            events=events,
            asked=answered or (call if status_only else None),
            seen=seen,
        )

    def _retrying(self) -> AsyncRetrying:
        config = self.config
        return AsyncRetrying(
            retry=retry_if_exception(_worth_retrying),
            stop=stop_after_attempt(config.attempts) | stop_after_delay(config.max_call_seconds),
            wait=wait_exponential_jitter(
                multiplier=config.backoff_initial_seconds,
                max=config.backoff_max_seconds,
                jitter=config.backoff_initial_seconds,
            ),
            reraise=True,
        )

    @contextlib.asynccontextmanager
    async def _heartbeat(self, run: Run, owner: str) -> AsyncIterator[None]:
        params = {
            "merchant_id": run.merchant_id,
            "id": run.id,
            "lease_owner": owner,
            "lease_seconds": self.config.lease_seconds,
        }

        async def beat() -> None:
            interval = max(self.config.lease_seconds / 3, 0.2)
            while True:
                await asyncio.sleep(interval)
                try:
                    async with self._db.connection() as conn:
                        await conn.execute(Q["extend_lease"], params)
                except Exception:
                    # One failed renewal must not end them: the lease has two more chances.
                    log.warning("lease_renewal_failed", run_id=run.id)

        task = asyncio.create_task(beat())
        try:
            yield
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task

    # ---------------------------------------------------------------- phase 3

    async def _record(
        self,
        run: Run,
        owner: str,
        result: Result | None,
        attempts: int,
        error: Exception | None,
        *,
        reached: bool,
        never_reached: bool,
        view: bool,
        events: bool,
        asked: Call | None = None,
        resolved: dict[str, Any] | None = None,
        seen: Plan | None = None,
    ) -> Passed:
        """Phase 3: the answer's changes (outcomes.decide) in one statement, which returns the
        payment as the edge shows it (when `view`).

        Straight after phase 1 (`seen`, the payment as phase 1 left it), the statement runs on
        its own, without a lock taken first: it writes only if the payment row is still the
        version phase 1 committed, and there is no webhook event to write (see record_outcome).
        Otherwise, and whenever it wrote nothing, one transaction locks the payment and decides
        on the row as it is.

        An authorization's answer that falls back (outcomes.falls_back), with an account of its
        rule left to try, ends this attempt only: the run is given the next attempt (its SALE,
        its account, its new processor key) in the same transaction, and returned, its lease
        kept by `owner`, to be driven on (a resolution gives it to the worker instead).

        `asked`: the answer is a status question's, read against this call's figures; if the
        payment's captures or refunds moved since, it is no answer (asked again later), or for
        an operator's resolution (`resolved`), refused."""
        answer = outcomes.UNREACHABLE if never_reached else result
        if (
            seen is not None
            and seen.version is not None
            and asked is None
            and resolved is None
            and not events
            and not (answer is not None and self._may_fall_back(run, seen.payment, answer))
        ):
            changes = self._decide(run, seen.payment, answer)
            async with self._db.connection() as conn:
                row = await self._write(
                    conn,
                    self._outcome_params(
                        run,
                        owner,
                        seen.payment,
                        changes,
                        attempts,
                        error,
                        reached=reached,
                        detail={},
                        version=seen.version,
                        view=view,
                    ),
                )
                if row is not None:
                    # The statement found the merchant with no endpoint to tell, if any change
                    # needed telling: the notifications are counted only.
                    reader = ViewReader(
                        conn, run.merchant_id, run.payment_id, self._processors.display_name
                    )
                    if row["payment"] is not None:
                        reader.given(self._view_of(row))
                    await self._notify(conn, run, seen.payment, changes, reader, endpoints=False)
                    self._logged(run, result, error)
                    return (await reader() if view else None), None
        shown = None
        async with self._db.transaction() as conn:
            payment = await self._payment_of(conn, run, lock=True)
            # The run's row too, before record_outcome takes its snapshot (see there).
            await conn.execute(Q["lock_run"], {"merchant_id": run.merchant_id, "id": run.id})
            if asked is not None and result is not None and _figures_moved(run, payment, asked):
                if resolved is not None:
                    raise RunNotResolvable(
                        f"run {run.id}: the payment's captures or refunds changed while the "
                        "processor was asked; resolve it again"
                    )
                error = OutcomeUnknown("the payment changed while the processor was asked")
                result = None
                answer = None
            following = None
            if answer is not None and self._may_fall_back(run, payment, answer):
                following = await self._next_route(conn, run, payment)
            if following is not None:
                changes = outcomes.fell_back(run, payment, answer)  # type: ignore[arg-type]
            else:
                changes = self._decide(run, payment, answer)
            detail: dict[str, Any] = {}
            if following is not None:
                detail["account"] = payment.processor_account or payment.processor
                detail["next_account"] = following[0].name
                if following[1]:
                    detail["passed_over"] = following[1]
            if asked is not None:
                detail["asked_status"] = True  # the answer of a status question, nothing re-sent
            if resolved is not None:
                detail.update(resolved)
            row = await self._write(
                conn,
                self._outcome_params(
                    run,
                    owner,
                    payment,
                    changes,
                    attempts,
                    error,
                    reached=reached,
                    detail=detail,
                    resolved=resolved is not None,
                    # (After a fallback's next attempt, read once that is written.)
                    view=view and following is None,
                ),
            )
            recorded = row is not None
            next_run = None
            if recorded and following is not None:
                next_run = await self._next_attempt(
                    conn, run, following[0], owner if resolved is None else None
                )
            # (Every write of the transaction is done: the view is read once, for both.)
            reader = ViewReader(
                conn, run.merchant_id, run.payment_id, self._processors.display_name
            )
            if row is not None:
                if row["payment"] is not None:
                    reader.given(self._view_of(row))
                await self._notify(
                    conn, run, payment, changes, reader, endpoints=row["webhook_endpoints"]
                )
            if view and next_run is None:
                shown = await reader(events)
        if recorded:
            self._logged(run, result, error)
        if next_run is not None:
            log.info("authorization_fell_back", run_id=run.id, account=following[0].name)  # type: ignore[index]
            return None, next_run if resolved is None else None
        return shown, None

    @staticmethod
    async def _write(conn: Connection, params: dict[str, Any]) -> dict[str, Any] | None:
        """record_outcome: its row if it wrote (see _outcome_params), else None."""
        cur = conn.cursor(row_factory=dict_row)
        await cur.execute(Q["record_outcome"], params)
        return await cur.fetchone()

    def _decide(self, run: Run, payment: Payment, answer: Result | None) -> outcomes.Changes:
        return outcomes.decide(
            run,
            payment,
            answer,
            recovery_backoff_seconds=self.config.recovery_backoff_seconds,
            poll_seconds=self.config.settlement_poll_seconds,
        )

    def _view_of(self, row: dict[str, Any]) -> PaymentView:
        """The payment as record_outcome returned it (`view`)."""
        payment = msgspec.convert(row["payment"], Payment)
        return PaymentView(
            payment=payment,
            transactions=msgspec.convert(row["transactions"], list[Transaction]),
            events=[],
            processor_name=self._processors.display_name(payment.processor),
        )

    @staticmethod
    def _logged(run: Run, result: Result | None, error: Exception | None) -> None:
        if result is None:
            log.warning("processor_outcome_unknown", run_id=run.id, error=str(error))
        elif result.outcome is Outcome.MISMATCH:
            log.error("reconciliation_needed", run_id=run.id, payment_id=run.payment_id)

    @staticmethod
    def _outcome_params(
        run: Run,
        owner: str,
        payment: Payment,
        changes: outcomes.Changes,
        attempts: int,
        error: Exception | None,
        *,
        reached: bool,
        detail: dict[str, Any],
        resolved: bool = False,
        version: str | None = None,
        view: bool,
    ) -> dict[str, Any]:
        """record_outcome's parameters: `changes` decided on `payment`; `version`: that row's
        version, for the statement on its own (None: the row is locked already)."""
        failure = None if error is None else f"{type(error).__name__}: {error}"
        detail = {"attempts": attempts, **detail}
        if changes.outcome is not None:
            detail.update(msgspec.to_builtins(changes.outcome))
        if failure:
            detail["error"] = failure
        figures = changes.payment or payment
        transaction = changes.transaction
        event = changes.event
        released, refunded = changes.refunded_of_capture or (0, 0)
        after = changes.payment
        return {
            "merchant_id": run.merchant_id,
            "run_id": run.id,
            "payment_id": run.payment_id,
            "transaction_id": run.transaction_id,
            "lease_owner": owner,
            "version": version,
            # Would the merchant's webhooks hear of it (see _notify)?
            "notice": (after is not None and after.status is not payment.status)
            or (run.kind is RunKind.REFUND and changes.state.finished),
            "view": view,
            "state": changes.state,
            "recovery_point": changes.recovery_point,
            "attempts": attempts,
            "outcome": jsonb(changes.outcome),
            "last_error": failure,
            "reached": reached,
            "retry_after_seconds": changes.retry_after_seconds,
            "history_id": uuid.uuid4(),
            "event": "resolved" if resolved else changes.history_event,
            "history_detail": jsonb(detail),
            "change_payment": changes.payment is not None,
            "status": figures.status,
            "status_reason": jsonb(figures.status_reason),
            "amount": figures.amount,
            "amount_authorized": figures.amount_authorized,
            "amount_captured": figures.amount_captured,
            "amount_refunded": figures.amount_refunded,
            "capture_reserved": figures.capture_reserved,
            "refund_reserved": figures.refund_reserved,
            "captures_closed": figures.captures_closed,
            "required_action": jsonb(figures.required_action),
            "change_transaction": transaction is not None,
            "transaction_status": transaction.status if transaction else None,
            "transaction_reason": jsonb(transaction.reason) if transaction else None,
            "processor_transaction_id": (
                transaction.processor_transaction_id if transaction else None
            ),
            "outcome_unknown": transaction.outcome_unknown if transaction else False,
            "event_id": uuid.uuid4(),
            "event_type": event.type if event else None,
            "event_amount": event.amount if event else None,
            "event_final": event.final if event else None,
            "capture_event_id": run.capture_event_id,
            "capture_released": released,
            "capture_refunded": refunded,
            "mode": payment.mode,
        }

    @staticmethod
    async def _notify(
        conn: Connection,
        run: Run,
        before: Payment,
        changes: outcomes.Changes,
        view: ViewReader,
        *,
        endpoints: bool,
    ) -> None:
        """The merchant's notifications of what phase 3 changed, in its transaction: the
        payment's new status, and a refund's end. `endpoints`: whether the merchant has one to
        tell, as phase 3's statement read it."""
        after = changes.payment
        if after is not None and after.status is not before.status:
            await announce_status(conn, after, view, endpoints=endpoints)
        if run.kind is RunKind.REFUND and changes.state.finished:
            await notifications.emit(
                conn,
                run.merchant_id,
                before.mode,
                run.payment_id,
                EventType.PAYMENT_REFUND,
                view,
                transaction_id=run.transaction_id,
                endpoints=endpoints,
            )

    @staticmethod
    def _may_fall_back(run: Run, payment: Payment, answer: Result) -> bool:
        """An authorization still pending, whose attempt ended in a way that lets another
        account try, and whose rule named accounts after this one."""
        return (
            run.kind is RunKind.AUTHORIZE
            and payment.status is PaymentStatus.PENDING
            # A cancel under way (it closes captures first): nothing may be authorized after it.
            and not payment.captures_closed
            and isinstance(run.input, AuthorizeInput)
            and len(run.input.accounts) > 1
            and outcomes.falls_back(answer)
        )

    async def _next_route(
        self, conn: Connection, run: Run, payment: Payment
    ) -> tuple[Route, dict[str, str]] | None:
        """The account to try next: the first of the rule's accounts after the current one, not
        tried yet, still able to take the payment, whose connector can be built."""
        assert isinstance(run.input, AuthorizeInput)
        cur = await conn.execute(
            Q["tried_accounts"], {"merchant_id": run.merchant_id, "payment_id": run.payment_id}
        )
        tried = {row[0] for row in await cur.fetchall()}
        names = run.input.accounts
        current = payment.processor_account or payment.processor
        later = names[names.index(current) + 1 :] if current in names else []
        routes, _ = await routing.routes_of(
            conn,
            run.merchant_id,
            [name for name in later if name not in tried],
            payment.payment_method_token,
            "card" if payment.card is not None else "processor_token",
        )
        if not routes:
            return None
        try:
            return await self.first_usable(run.merchant_id, routes, conn)
        except ProcessorUnavailable:
            return None

    async def first_usable(
        self, merchant_id: str, routes: list[Route], conn: Connection
    ) -> tuple[Route, dict[str, str]]:
        """The first of the routes whose connector can be built and whose circuit is not open,
        and those passed over (why); ProcessorUnavailable if no connector can be built. When
        every route that can be built has its circuit open, the first of them is tried anyway:
        there is nowhere else to send the payment."""
        passed_over: dict[str, str] = {}
        shunned: list[Route] = []
        for route in routes:
            try:
                await self.processor(merchant_id, route.kind, route.account, conn)
            except ProcessorUnavailable as error:
                passed_over[route.name] = str(error)
                continue
            if not await self.circuits.allows(merchant_id, route.name):
                passed_over[route.name] = "circuit open: failing calls, cooling off"
                shunned.append(route)
                continue
            return route, passed_over
        if shunned:
            del passed_over[shunned[0].name]
            return shunned[0], passed_over
        raise ProcessorUnavailable("; ".join(f"{name}: {why}" for name, why in passed_over.items()))

    async def _next_attempt(
        self, conn: Connection, run: Run, route: Route, owner: str | None
    ) -> Run:
        """The run with its next attempt, written: a new SALE on `route`'s account and a new
        processor key; its lease kept by `owner` (None: due for any worker now)."""
        cur = conn.cursor(row_factory=dict_row)
        await cur.execute(
            Q["next_attempt"],
            {
                "merchant_id": run.merchant_id,
                "run_id": run.id,
                "payment_id": run.payment_id,
                "transaction_id": new_id("txn"),
                "processor": route.kind,
                "processor_account": route.account,
                "processor_merchant_id": route.account or run.merchant_id,
                "processor_key": processor_key(run.merchant_id, run.kind),
                "lease_owner": owner,
                "lease_seconds": self.config.lease_seconds,
            },
        )
        row = await cur.fetchone()
        assert row is not None  # record_outcome, just before, left it running and unheld
        return from_row(Run, row)

    # ---------------------------------------------------------------- reads of a run

    @staticmethod
    async def _payment_of(conn: Connection, run: Run, *, lock: bool) -> Payment:
        cur = conn.cursor(row_factory=dict_row)
        await cur.execute(
            Q["lock_payment" if lock else "get_payment"],
            {"merchant_id": run.merchant_id, "id": run.payment_id},
        )
        row = await cur.fetchone()
        assert row is not None
        return from_row(Payment, row)

    @staticmethod
    async def _key_age(conn: Connection, run: Run) -> timedelta:
        """How long ago the run's key was committed (by the database's clock), which is before
        its first call: never less than the key's true age."""
        cur = await conn.execute(Q["run_key_age"], {"merchant_id": run.merchant_id, "id": run.id})
        row = await cur.fetchone()
        assert row is not None
        return row[0]  # type: ignore[no-any-return]

    @staticmethod
    async def _sale_processor_id(conn: Connection, payment: Payment) -> str | None:
        """The processor's id of the payment's SALE in force."""
        cur = await conn.execute(
            Q["sale_transaction"], {"merchant_id": payment.merchant_id, "sale_id": payment.sale_id}
        )
        row = await cur.fetchone()
        assert row is not None
        return row[1]  # type: ignore[no-any-return]

    async def history(
        self, run: Run, event: str, detail: dict[str, Any], conn: Connection | None = None
    ) -> None:
        params = {
            "merchant_id": run.merchant_id,
            "run_id": run.id,
            "history_id": uuid.uuid4(),
            "event": event,
            "detail": jsonb(detail),
        }
        if conn is not None:
            await conn.execute(Q["append_history"], params)
            return
        async with self._db.connection() as own:
            await own.execute(Q["append_history"], params)
