"""The durable workflow engine: each authorize, capture, cancel and refund is a run of three phases.

1. One transaction: lock the payment, check the lifecycle rules, reserve the amount, write the
   run with a freshly generated processor key (and the REFUND transaction of a refund). Commit.
2. Call the processor with that key, retrying only transient failures (bounded, jittered backoff).
   A heartbeat keeps the run's lease while the call lasts.
3. One transaction: lock the payment, record the outcome on the transaction, the payment and the
   run. Commit.

An outcome that stays unknown after the retries leaves the payment's status as it was (with
`statusReason.type = GATEWAY_TIMEOUT`), marks the transaction unknown, and leaves the run for
recovery: a worker (any process, any machine) claims it when it is due, resumes it with the same
processor key, and after `max_recoveries` passes marks it stuck for an operator to replay.
A process that dies mid-run leaves a lease that runs out; the run is then due like any other.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import os
import secrets
import socket
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import psycopg
import structlog
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb
from psycopg_pool import AsyncConnectionPool
from tenacity import (
    AsyncRetrying,
    retry_if_exception,
    stop_after_attempt,
    stop_after_delay,
    wait_exponential_jitter,
)

from processors.base import (
    Call,
    Card,
    Processor,
    ProcessorError,
    Result,
)
from workflows import lifecycle, outcomes
from workflows.errors import (
    IdempotencyKeyReused,
    PaymentError,
    PaymentMethodTokenNotFound,
    PaymentNotFound,
    RunAlreadyExists,
    RunNotReplayable,
    TransactionEventNotFound,
)
from workflows.reads import Reads
from workflows.records import Event, Payment, PaymentView, Run, Transaction, from_row
from workflows.sql import load_queries

Q = load_queries(Path(__file__).with_name("queries.sql"))
log = structlog.get_logger("workflows.engine")

# As merchants see them (Primer's processor names).
PROCESSOR_NAMES = {"sandbox": "SANDBOX", "manual": "MANUAL", "stripe": "STRIPE"}
# Recovery points where the processor's answer is awaited by asking for the status.
_WAITING = ("await_action", "await_settlement")


class ProcessorDirectory(Protocol):
    """Finds the processor of a payment: its kind, and the merchant's account if any."""

    async def get(self, merchant_id: str, kind: str, account: str | None) -> Processor: ...

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


@dataclass(frozen=True)
class Sale:
    """A payment's SALE transaction: ours, and the processor's id of the authorization."""

    id: str
    processor_id: str | None


@dataclass(frozen=True)
class RequestKey:
    """A merchant's X-Idempotency-Key, with the fingerprint of the request that carried it."""

    key: str
    fingerprint: bytes


@dataclass(frozen=True, kw_only=True)
class CreatePayment:
    merchant_id: str
    mode: str
    order_id: str
    currency_code: str
    amount: int
    payment_method_token: str
    customer_id: str | None = None
    customer: dict[str, Any] | None = None
    order_details: dict[str, Any] | None = None
    metadata: dict[str, Any] | None = None
    payment_options: dict[str, Any] | None = None
    idempotency: RequestKey | None = None


def new_id(prefix: str) -> str:
    return f"{prefix}_{secrets.token_hex(10)}"


def _repeat(
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
        finished=state in ("succeeded", "failed"),  # a stuck run is still in progress
    )


def _worth_retrying(error: BaseException) -> bool:
    """Only transport failures the processor has not ruled out retrying (never a decline)."""
    return isinstance(error, ProcessorError) and error.retryable


def _json(value: Any) -> Jsonb | None:
    return None if value is None else Jsonb(value)


class Engine:
    def __init__(
        self,
        pool: AsyncConnectionPool,
        processors: ProcessorDirectory,
        config: EngineConfig | None = None,
    ) -> None:
        self._pool = pool
        self._processors = processors
        self.config = config or EngineConfig()
        self.owner = f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"
        self._reads = Reads(pool)

    async def aclose(self) -> None:
        await self._processors.aclose()

    @staticmethod
    def processor_name(kind: str) -> str:
        return PROCESSOR_NAMES[kind]

    # ---------------------------------------------------------------- commands

    async def authorize(self, command: CreatePayment) -> str:
        """Create and authorize a payment (and capture it, if the merchant says so); its id."""
        payment_id = new_id("pay")

        async def plan(conn: psycopg.AsyncConnection[Any]) -> dict[str, Any]:
            cur = await conn.execute(Q["merchant_routing"], {"merchant_id": command.merchant_id})
            routing = await cur.fetchone()
            assert routing is not None
            processor, capture_on_create, account = routing
            token = command.payment_method_token
            card = await self._card_of(conn, command, processor)
            cur = conn.cursor(row_factory=dict_row)
            await cur.execute(
                Q["insert_payment"],
                {
                    "merchant_id": command.merchant_id,
                    "id": payment_id,
                    "mode": command.mode,
                    "order_id": command.order_id,
                    "currency_code": command.currency_code,
                    "amount": command.amount,
                    "customer_id": command.customer_id,
                    "customer": _json(command.customer),
                    "order_details": _json(command.order_details),
                    "metadata": _json(command.metadata),
                    "payment_options": _json(command.payment_options),
                    "payment_method_token": token,
                    "card_token_type": "PROCESSOR_TOKEN" if card is None else "CARD_PAN",
                    "card": _json(card),
                    "card_last4": card["last4"] if card else None,
                    "processor": processor,
                    "processor_account": account,
                    "processor_merchant_id": account or command.merchant_id,
                },
            )
            sale_id = new_id("txn")
            await conn.execute(
                Q["insert_transaction"],
                {
                    "merchant_id": command.merchant_id,
                    "id": sale_id,
                    "payment_id": payment_id,
                    "type": "SALE",
                    "amount": command.amount,
                    "currency_code": command.currency_code,
                    "order_id": command.order_id,
                    "reason": None,
                    "processor_status": "PENDING",
                },
            )
            inserted = await cur.fetchone()
            assert inserted is not None
            return {
                "amount": command.amount,
                "transaction_id": sale_id,
                "input": {"captureOnCreate": capture_on_create},
                "context": (from_row(Payment, inserted), None),
            }

        run, owner, context = await self._start(
            "authorize", command.merchant_id, payment_id, command.idempotency, plan, target=""
        )
        await self._drive(run, owner, context)
        await self._capture_on_create(run)
        return payment_id

    async def capture(
        self,
        merchant_id: str,
        payment_id: str,
        *,
        amount: int | None,
        final: bool,
        idempotency: RequestKey | None = None,
    ) -> str:
        async def plan(
            conn: psycopg.AsyncConnection[Any], payment: Payment, sale: Sale
        ) -> dict[str, Any]:
            reserved = lifecycle.capture_amount(payment, amount)
            await self._update_payment(
                conn,
                payment,
                capture_reserved=payment.capture_reserved + reserved,
                captures_closed=payment.captures_closed or final,
            )
            return {
                "amount": reserved,
                "transaction_id": sale.id,
                "input": {"amount": amount, "final": final, "wasClosed": payment.captures_closed},
            }

        return await self._follow_up("capture", merchant_id, payment_id, idempotency, plan)

    async def cancel(
        self,
        merchant_id: str,
        payment_id: str,
        *,
        reason: str | None = None,
        idempotency: RequestKey | None = None,
    ) -> str:
        async def plan(
            conn: psycopg.AsyncConnection[Any], payment: Payment, sale: Sale
        ) -> dict[str, Any]:
            lifecycle.check_cancel(payment, authorization_known=sale.processor_id is not None)
            await self._update_payment(conn, payment, captures_closed=True)
            return {
                "amount": 0,
                "transaction_id": sale.id,
                "input": {"reason": reason, "wasClosed": payment.captures_closed},
            }

        return await self._follow_up("cancel", merchant_id, payment_id, idempotency, plan)

    async def refund(
        self,
        merchant_id: str,
        payment_id: str,
        *,
        amount: int | None,
        order_id: str | None = None,
        reason: str | None = None,
        transaction_event_id: uuid.UUID | None = None,
        idempotency: RequestKey | None = None,
    ) -> str:
        async def plan(
            conn: psycopg.AsyncConnection[Any], payment: Payment, sale: Sale
        ) -> dict[str, Any]:
            event_refundable = None
            if transaction_event_id is not None:
                cur = await conn.execute(
                    Q["lock_capture_event"],
                    {
                        "merchant_id": merchant_id,
                        "payment_id": payment.id,
                        "id": transaction_event_id,
                    },
                )
                event = await cur.fetchone()
                if event is None:
                    raise TransactionEventNotFound(
                        payment_id=payment.id, payment_status=payment.status
                    )
                event_refundable = event[1] - event[2] - event[3]
            reserved = lifecycle.refund_amount(payment, amount, event_refundable)
            await self._update_payment(
                conn, payment, refund_reserved=payment.refund_reserved + reserved
            )
            if transaction_event_id is not None:
                await conn.execute(
                    Q["reserve_event_refund"],
                    {"merchant_id": merchant_id, "id": transaction_event_id, "amount": reserved},
                )
            refund_id = new_id("txn")
            await conn.execute(
                Q["insert_transaction"],
                {
                    "merchant_id": merchant_id,
                    "id": refund_id,
                    "payment_id": payment.id,
                    "type": "REFUND",
                    "amount": reserved,
                    "currency_code": payment.currency_code,
                    "order_id": order_id or payment.order_id,
                    "reason": reason,
                    "processor_status": "PENDING",
                },
            )
            return {
                "amount": reserved,
                "transaction_id": refund_id,
                "capture_event_id": transaction_event_id,
                "input": {"amount": amount, "reason": reason, "orderId": order_id},
            }

        return await self._follow_up("refund", merchant_id, payment_id, idempotency, plan)

    # ---------------------------------------------------------------- reads

    async def view(self, merchant_id: str, payment_id: str, *, events: bool = False) -> PaymentView:
        """The payment and its transactions; their events only when asked for (expand)."""
        params = {"merchant_id": merchant_id, "id": payment_id, "payment_id": payment_id}
        async with self._pool.connection() as conn:
            cur = conn.cursor(row_factory=dict_row)
            await cur.execute(Q["get_payment"], params)
            row = await cur.fetchone()
            if row is None:
                raise PaymentNotFound()
            payment = from_row(Payment, row)
            await cur.execute(Q["payment_transactions"], params)
            transactions = [from_row(Transaction, r) for r in await cur.fetchall()]
            found: list[Event] = []
            if events:
                await cur.execute(Q["payment_events"], params)
                found = [from_row(Event, r) for r in await cur.fetchall()]
        return PaymentView(
            payment=payment,
            transactions=transactions,
            events=found,
            processor_name=self.processor_name(payment.processor),
        )

    async def payment_status(self, merchant_id: str, payment_id: str) -> str | None:
        async with self._pool.connection() as conn:
            cur = await conn.execute(
                Q["get_payment_status"], {"merchant_id": merchant_id, "id": payment_id}
            )
            row = await cur.fetchone()
        return None if row is None else str(row[0])

    # ---------------------------------------------------------------- recovery

    async def recover_due(self, limit: int = 20) -> int:
        """One worker pass: claim due runs (SKIP LOCKED) and resume them. Returns how many."""
        owner = f"{self.owner}/worker-{secrets.token_hex(4)}"
        async with self._pool.connection() as conn:
            cur = conn.cursor(row_factory=dict_row)
            await cur.execute(
                Q["claim_due_runs"],
                {"limit": limit, "lease_owner": owner, "lease_seconds": self.config.lease_seconds},
            )
            runs = [from_row(Run, row) for row in await cur.fetchall()]
        await asyncio.gather(*(self._recover(run, owner) for run in runs))
        return len(runs)

    async def _recover(self, run: Run, owner: str) -> None:
        with structlog.contextvars.bound_contextvars(run_id=run.id, payment_id=run.payment_id):
            try:
                if (
                    run.recovery_point == "call_processor"
                    and run.recoveries > self.config.max_recoveries
                ):
                    await self._mark_stuck(run, owner)
                    return
                await self._history(
                    run,
                    "recovery_started",
                    {"recoveries": run.recoveries, "point": run.recovery_point},
                )
                await self._drive(run, owner)
                await self._capture_on_create(run)
            except Exception:
                # The run keeps its lease until it runs out, then it is due again.
                log.exception("recovery_failed")

    async def replay(self, run_id: str) -> Run:
        """An operator's replay: resume a stuck (or due) run now, with the same processor key."""
        owner = f"{self.owner}/replay-{secrets.token_hex(4)}"
        async with self._pool.connection() as conn:
            cur = conn.cursor(row_factory=dict_row)
            await cur.execute(
                Q["claim_run_for_replay"],
                {"id": run_id, "lease_owner": owner, "lease_seconds": self.config.lease_seconds},
            )
            row = await cur.fetchone()
        if row is None:
            run = await self._reads.run(run_id)
            if run.state in ("succeeded", "failed"):
                raise RunNotReplayable(
                    f"run {run_id} already {run.state}: it is finished, there is nothing to replay"
                )
            raise RunNotReplayable(
                f"run {run_id} is in progress ({run.lease_owner} holds it until "
                f"{run.lease_expires_at}); replay it if it gets stuck"
            )
        run = from_row(Run, row)
        await self._history(run, "replayed", {"by": "operator", "point": run.recovery_point})
        await self._drive(run, owner)
        await self._capture_on_create(run)
        return await self._reads.run(run_id)

    async def _capture_on_create(self, run: Run) -> None:
        """A merchant set to capture on create gets it once the authorization is done: in the
        request, or later when the worker or an operator completes the authorization."""
        if run.kind != "authorize" or not run.input.get("captureOnCreate"):
            return
        if await self.payment_status(run.merchant_id, run.payment_id) == "AUTHORIZED":
            await self.capture(run.merchant_id, run.payment_id, amount=None, final=True)

    # ---------------------------------------------------------------- phase 1

    async def _follow_up(
        self,
        kind: str,
        merchant_id: str,
        payment_id: str,
        idempotency: RequestKey | None,
        plan: Callable[[psycopg.AsyncConnection[Any], Payment, Sale], Awaitable[dict[str, Any]]],
    ) -> str:
        async def locked_plan(conn: psycopg.AsyncConnection[Any]) -> dict[str, Any]:
            cur = conn.cursor(row_factory=dict_row)
            await cur.execute(
                Q["lock_payment_with_sale"], {"merchant_id": merchant_id, "id": payment_id}
            )
            row = await cur.fetchone()
            if row is None:
                raise PaymentNotFound()
            payment = from_row(Payment, row)
            try:
                sale = Sale(row["sale_id"], row["sale_processor_id"])
                planned = await plan(conn, payment, sale)
            except PaymentError as refusal:
                # A repeat of a request already done is answered as a repeat, not judged by
                # the rules again (it may have closed the payment to itself). Looked up now,
                # after the lock: its run may have been committed while this one waited.
                if idempotency is not None:
                    repeat = await self._keyed_run(conn, merchant_id, kind, payment_id, idempotency)
                    if repeat is not None:
                        raise repeat from None
                raise refusal
            return {**planned, "context": (payment, row["sale_processor_id"])}

        run, owner, context = await self._start(
            kind, merchant_id, payment_id, idempotency, locked_plan, target=payment_id
        )
        await self._drive(run, owner, context)
        return payment_id

    async def _start(
        self,
        kind: str,
        merchant_id: str,
        payment_id: str,
        idempotency: RequestKey | None,
        plan: Callable[[psycopg.AsyncConnection[Any]], Awaitable[dict[str, Any]]],
        *,
        target: str,
    ) -> tuple[Run, str, tuple[Payment, str | None]]:
        """Phase 1. Returns the run, its lease owner, and what phase 2 needs of the payment."""
        owner = f"{self.owner}/{secrets.token_hex(4)}"
        try:
            async with self._pool.connection() as conn, conn.transaction():
                planned = await plan(conn)
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
                        "input": Jsonb(planned["input"]),
                        "amount": planned["amount"],
                        "transaction_id": planned["transaction_id"],
                        "capture_event_id": planned.get("capture_event_id"),
                        # Committed before the first call, sent on every retry and recovery.
                        "processor_key": f"{merchant_id}:{kind}:{secrets.token_urlsafe(18)}",
                        "lease_owner": owner,
                        "lease_seconds": self.config.lease_seconds,
                        "history_id": uuid.uuid4(),
                        "history_detail": Jsonb({"amount": planned["amount"], **planned["input"]}),
                    },
                )
                row = await cur.fetchone()
                assert row is not None
                run = from_row(Run, row)
        except psycopg.errors.UniqueViolation as error:
            if error.diag.constraint_name != "workflow_runs_one_per_idempotency_key":
                raise
            assert idempotency is not None
            raise await self._existing_run(merchant_id, kind, target, idempotency) from None
        structlog.contextvars.bind_contextvars(run_id=run.id, payment_id=payment_id)
        return run, owner, planned["context"]

    async def _existing_run(
        self, merchant_id: str, kind: str, target: str, idempotency: RequestKey
    ) -> PaymentError:
        """Why a run for this key exists already: the same request, or another one."""
        async with self._pool.connection() as conn:
            repeat = await self._keyed_run(conn, merchant_id, kind, target, idempotency)
        assert repeat is not None
        return repeat

    @staticmethod
    async def _keyed_run(
        conn: psycopg.AsyncConnection[Any],
        merchant_id: str,
        kind: str,
        target: str,
        idempotency: RequestKey,
    ) -> PaymentError | None:
        cur = await conn.execute(
            Q["find_run_by_idempotency_key"],
            {
                "merchant_id": merchant_id,
                "kind": kind,
                "target": target,
                "idempotency_key": idempotency.key,
            },
        )
        row = await cur.fetchone()
        if row is None:
            return None
        state, payment_id, payment_status, fingerprint = row
        return _repeat(idempotency, state, fingerprint, payment_id, payment_status)

    @staticmethod
    async def _card_of(
        conn: psycopg.AsyncConnection[Any], command: CreatePayment, processor: str
    ) -> dict[str, Any] | None:
        """What the gateway kept of the card behind the token; None for a processor's token."""
        token = command.payment_method_token
        if processor == "stripe":
            # Stripe payments take Stripe's own PaymentMethod ids (pm_...), passed through.
            if not token.startswith("pm_"):
                raise PaymentMethodTokenNotFound(
                    "This merchant's payments go to Stripe: pass a Stripe PaymentMethod id "
                    "(pm_...) as paymentMethodToken."
                )
            return None
        cur = await conn.execute(
            Q["find_instrument"], {"merchant_id": command.merchant_id, "token": token}
        )
        instrument = await cur.fetchone()
        if instrument is None or instrument[6] != command.mode:
            raise PaymentMethodTokenNotFound()
        names = ("network", "first6", "last4", "expirationMonth", "expirationYear", "holder")
        return dict(zip(names, instrument[:6], strict=True))

    async def _sale(
        self, conn: psycopg.AsyncConnection[Any], payment: Payment
    ) -> tuple[str, str | None]:
        """The payment's SALE transaction: its id, and the processor's id for it."""
        cur = await conn.execute(
            Q["sale_transaction"], {"merchant_id": payment.merchant_id, "payment_id": payment.id}
        )
        row = await cur.fetchone()
        assert row is not None
        return row[0], row[1]

    # ---------------------------------------------------------------- phase 2

    async def _drive(
        self, run: Run, owner: str, context: tuple[Payment, str | None] | None = None
    ) -> None:
        """Phases 2 and 3 of a run whose lease `owner` holds.

        `context` is the payment and its SALE's processor id as phase 1 saw them; a recovery
        reads them anew.
        """
        if context is None:
            async with self._pool.connection() as conn:
                payment = await self._payment_of(conn, run, lock=False)
                _, sale = await self._sale(conn, payment)
        else:
            payment, sale = context
        processor = await self._processors.get(
            payment.merchant_id, payment.processor, payment.processor_account
        )
        card = payment.card
        call = Call(
            processor_key=run.processor_key,
            reference=payment.id,
            amount=run.amount,
            currency_code=payment.currency_code,
            card=None
            if card is None
            else Card(
                network=card["network"],
                first6=card["first6"],
                last4=card["last4"],
                expiration_month=card["expirationMonth"],
                expiration_year=card["expirationYear"],
                cardholder_name=card.get("holder"),
            ),
            payment_method_token=payment.payment_method_token,
            processor_transaction_id=sale,
            final=bool(run.input.get("final", True)),
            verb=run.kind,
            metadata=payment.metadata or {},
        )
        if run.recovery_point in _WAITING:
            operation = processor.status
        else:
            operation = getattr(processor, run.kind)
        attempts = 0
        result: Result | None = None
        error: Exception | None = None
        async with self._heartbeat(run, owner):
            try:
                async for attempt in self._retrying():
                    with attempt:
                        attempts += 1
                        result = await operation(call)
            except ProcessorError as exhausted:
                error = exhausted
        await self._record(run, owner, payment, result, attempts, error)

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
                    async with self._pool.connection() as conn:
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
        payment: Payment,
        result: Result | None,
        attempts: int,
        error: Exception | None,
    ) -> None:
        """Phase 3: the payment locked, the answer's changes (outcomes.decide) in one statement."""
        async with self._pool.connection() as conn, conn.transaction():
            payment = await self._payment_of(conn, run, lock=True)
            changes = outcomes.decide(
                run,
                payment,
                result,
                recovery_backoff_seconds=self.config.recovery_backoff_seconds,
                poll_seconds=self.config.settlement_poll_seconds,
            )
            failure = None if error is None else f"{type(error).__name__}: {error}"
            detail: dict[str, Any] = {"attempts": attempts, **(changes.outcome or {})}
            if failure:
                detail["error"] = failure
            figures = changes.payment or payment
            transaction = changes.transaction
            event = changes.event
            released, refunded = changes.refunded_of_capture or (0, 0)
            cur = await conn.execute(
                Q["record_outcome"],
                {
                    "merchant_id": run.merchant_id,
                    "run_id": run.id,
                    "payment_id": run.payment_id,
                    "transaction_id": run.transaction_id,
                    "lease_owner": owner,
                    "state": changes.state,
                    "recovery_point": changes.recovery_point,
                    "attempts": attempts,
                    "outcome": _json(changes.outcome),
                    "last_error": failure,
                    "retry_after_seconds": changes.retry_after_seconds,
                    "history_id": uuid.uuid4(),
                    "event": changes.history_event,
                    "history_detail": Jsonb(detail),
                    "change_payment": changes.payment is not None,
                    "status": figures.status,
                    "status_reason": _json(figures.status_reason),
                    "amount_authorized": figures.amount_authorized,
                    "amount_captured": figures.amount_captured,
                    "amount_refunded": figures.amount_refunded,
                    "capture_reserved": figures.capture_reserved,
                    "refund_reserved": figures.refund_reserved,
                    "captures_closed": figures.captures_closed,
                    "required_action": _json(figures.required_action),
                    "change_transaction": transaction is not None,
                    "transaction_status": transaction.status if transaction else None,
                    "transaction_reason": _json(transaction.reason) if transaction else None,
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
                },
            )
            recorded = await cur.fetchone() is not None
        if recorded and result is None:
            log.warning("processor_outcome_unknown", run_id=run.id, error=str(error))

    # ---------------------------------------------------------------- writes

    @staticmethod
    async def _payment_of(conn: psycopg.AsyncConnection[Any], run: Run, *, lock: bool) -> Payment:
        cur = conn.cursor(row_factory=dict_row)
        await cur.execute(
            Q["lock_payment" if lock else "get_payment"],
            {"merchant_id": run.merchant_id, "id": run.payment_id},
        )
        row = await cur.fetchone()
        assert row is not None
        return from_row(Payment, row)

    async def _update_payment(
        self, conn: psycopg.AsyncConnection[Any], payment: Payment, **changes: Any
    ) -> Payment:
        updated = dataclasses.replace(payment, **changes)
        await conn.execute(
            Q["update_payment"],
            {
                "merchant_id": updated.merchant_id,
                "id": updated.id,
                "status": updated.status,
                "status_reason": _json(updated.status_reason),
                "amount_authorized": updated.amount_authorized,
                "amount_captured": updated.amount_captured,
                "amount_refunded": updated.amount_refunded,
                "capture_reserved": updated.capture_reserved,
                "refund_reserved": updated.refund_reserved,
                "captures_closed": updated.captures_closed,
                "required_action": _json(updated.required_action),
            },
        )
        return updated

    async def _mark_stuck(self, run: Run, owner: str) -> None:
        async with self._pool.connection() as conn, conn.transaction():
            await conn.execute(
                Q["mark_stuck"],
                {"merchant_id": run.merchant_id, "id": run.id, "lease_owner": owner},
            )
            await self._history(run, "stuck", {"recoveries": run.recoveries - 1}, conn)
        log.error("workflow_run_stuck", run_id=run.id, payment_id=run.payment_id)

    async def _history(
        self,
        run: Run,
        event: str,
        detail: dict[str, Any],
        conn: psycopg.AsyncConnection[Any] | None = None,
    ) -> None:
        params = {
            "merchant_id": run.merchant_id,
            "run_id": run.id,
            "history_id": uuid.uuid4(),
            "event": event,
            "detail": Jsonb(detail),
        }
        if conn is not None:
            await conn.execute(Q["append_history"], params)
            return
        async with self._pool.connection() as own:
            await own.execute(Q["append_history"], params)
