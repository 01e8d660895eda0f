"""The money-moving commands: authorize (create), capture, cancel, refund.

Each command is phase 1's plan (the lifecycle rules, the reservation, the rows it adds) handed to
the runner, which writes the run, calls the processor and records the answer. Each returns the
payment as it stands after the answer was recorded, as phase 3's statement returned it.
"""

from __future__ import annotations

import dataclasses
import random
import secrets
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import msgspec
from msgspec.structs import replace
from psycopg.rows import dict_row

from processors import registry
from workflows import instruments, lifecycle
from workflows import routing as routing_rules
from workflows.db import Connection, Database, Q, jsonb
from workflows.errors import (
    NoActionsToHandle,
    PaymentError,
    PaymentMethodTokenNotFound,
    PaymentNotFound,
    ProcessorUnavailable,
    ResumeInProgress,
    TransactionEventNotFound,
)
from workflows.instruments import card_behind
from workflows.model import (
    AdjustInput,
    AuthorizeInput,
    CancelInput,
    CaptureInput,
    Card,
    Customer,
    Payment,
    PaymentOptions,
    PaymentStatus,
    PaymentView,
    RefundInput,
    Run,
    RunKind,
    RunOutcome,
    RunState,
    TransactionType,
    from_row,
)
from workflows.routing import MerchantRouting, Route
from workflows.rules import RulesError
from workflows.runner import (
    Plan,
    RequestKey,
    Runner,
    ViewReader,
    announce_status,
    keyed_run,
    new_id,
    read_view,
)
from workflows.sessions import PaymentFieldMissing, SessionFields


@dataclass(frozen=True, kw_only=True)
class CreatePayment:
    """A new payment. What the request leaves out (None) is taken from the client session its
    card was entered in, if any (see `completed`); order_id, currency_code and amount are
    required from one or the other."""

    merchant_id: str
    mode: str
    order_id: str | None
    currency_code: str | None
    amount: int | None
    payment_method_token: str
    customer_id: str | None = None
    customer: Customer | None = None
    order_details: dict[str, Any] | None = None
    metadata: dict[str, Any] | None = None
    payment_options: PaymentOptions | None = None
    idempotency: RequestKey | None = None


def completed(command: CreatePayment, given: SessionFields | None) -> CreatePayment:
    """The command with what it leaves out taken from its card's client session (`given`);
    PaymentFieldMissing if an order id, currency or amount is still missing."""
    given = given or SessionFields()
    filled = dataclasses.replace(
        command,
        order_id=command.order_id or given.order_id,
        currency_code=command.currency_code or given.currency_code,
        amount=command.amount if command.amount is not None else given.amount,
        customer_id=command.customer_id or given.customer_id,
        customer=command.customer or given.customer,
        order_details=(command.order_details if command.order_details is not None else given.order),
        metadata=command.metadata if command.metadata is not None else given.metadata,
        payment_options=command.payment_options or given.payment_options,
    )
    for name in ("order_id", "currency_code", "amount"):
        if getattr(filled, name) is None:
            raise PaymentFieldMissing(name)
    return filled


@dataclass(frozen=True, kw_only=True)
class KeyedRun:
    state: RunState
    payment_id: str
    payment_status: str
    fingerprint: bytes | None  # of the request that made it (None: runs from before 0005)


# The outcome of a held payment's creation: sent nowhere.
HELD = RunOutcome(outcome="HELD")


class Payments:
    def __init__(
        self, db: Database, runner: Runner, draw: Callable[[], float] | None = None
    ) -> None:
        self._db = db
        self._runner = runner
        # A number in [0, 1) for the routing rules' splits (a test passes a seeded one).
        self.draw = draw or random.random

    async def authorize(self, asked: CreatePayment, *, events: bool = False) -> PaymentView:
        """Create and authorize a payment (and capture it, if the merchant says so): `asked`
        completed from its card's client session first (PaymentFieldMissing)."""
        payment_id = new_id("pay")

        async def plan(conn: Connection) -> Plan:
            cur = await conn.execute(
                Q["payment_setting"],
                {
                    "merchant_id": asked.merchant_id,
                    "token": asked.payment_method_token,
                    "mode": asked.mode,
                },
            )
            row = await cur.fetchone()
            assert row is not None
            kind, capture_on_create, account, rules, account_state = row[:5]
            # The card behind the token (None: not one of the gateway's tokens in this mode).
            known = instruments.card_of(row[5:13], asked.mode)
            single_use = bool(row[13])
            session = None if row[14] is None else msgspec.convert(row[14], SessionFields)
            try:
                command = completed(asked, session)
            except PaymentFieldMissing:
                # The same request again, once its session expired, is a repeat all the same.
                if asked.idempotency is not None:
                    repeat = await keyed_run(conn, asked.merchant_id, asked.idempotency)
                    if repeat is not None:
                        raise repeat from None
                raise
            assert command.amount is not None  # (completed)
            routing = MerchantRouting(
                Route(kind, account, disabled=account_state == "disabled"),
                bool(capture_on_create),
                routing_rules.rules_of(rules),
            )
            try:
                routes, decision = await routing_rules.route_for(
                    conn,
                    command.merchant_id,
                    routing,
                    routing_rules.facts_of(command, known),
                    self.draw(),
                    command.payment_method_token,
                )
            except RulesError as error:
                raise ProcessorUnavailable(str(error)) from None
            held = decision is not None and not decision.accounts
            passed_over: dict[str, str] = {}
            if held:
                # Sent nowhere yet: recorded with the merchant's configured processor, which
                # POST /payments/{id}/authorize replaces with the one it names.
                route = routing.default
                card = self._held_card(command.payment_method_token, known)
            else:
                route, passed_over = await self._runner.first_usable(
                    command.merchant_id, routes, conn
                )
                card = self._card_for(route, command.payment_method_token, known)
            try:
                if single_use:  # (a saved token, or a processor's own, any number of times)
                    await instruments.use(
                        conn, command.merchant_id, command.payment_method_token, payment_id
                    )
            except PaymentError as refusal:
                # The same request again (both idempotency stores forgot it) is a repeat,
                # not a second use of its token.
                if command.idempotency is not None:
                    repeat = await keyed_run(conn, command.merchant_id, command.idempotency)
                    if repeat is not None:
                        raise repeat from None
                raise refusal
            sale_id = new_id("txn")
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
                    "customer": jsonb(command.customer),
                    "order_details": jsonb(command.order_details),
                    "metadata": jsonb(command.metadata),
                    "payment_options": jsonb(command.payment_options),
                    "payment_method_token": command.payment_method_token,
                    # (And the SALE of its first attempt, by the same statement.)
                    "sale_id": None if held else sale_id,
                    **_placed(command.merchant_id, route, card),
                },
            )
            inserted = await cur.fetchone()
            assert inserted is not None
            payment = from_row(Payment, inserted)
            await announce_status(
                conn,
                payment,
                ViewReader(conn, payment.merchant_id, payment.id, registry.display_name),
                endpoints=inserted["webhook_endpoints"],  # read by the insert itself
            )
            return Plan(
                amount=command.amount,
                transaction_id="" if held else sale_id,
                input=AuthorizeInput(
                    capture_on_create=capture_on_create,
                    rule=decision.rule if decision else None,
                    accounts=list(decision.accounts) if decision else [],
                    passed_over=passed_over,
                ),
                payment=payment,
                sale_processor_id=None,
                unsent=HELD if held else None,
            )

        run, owner, planned = await self._runner.start(
            RunKind.AUTHORIZE,
            asked.merchant_id,
            payment_id,
            asked.idempotency,
            plan,
            target="",
        )
        if planned.unsent:
            return await self.view(asked.merchant_id, payment_id, events=events)
        return await self._driven(run, owner, planned, events)

    async def authorize_on(
        self,
        merchant_id: str,
        payment_id: str,
        *,
        processor_merchant_id: str,
        processor_name: str | None = None,
        idempotency: RequestKey | None = None,
        events: bool = False,
    ) -> PaymentView:
        """Authorize a payment its routing rule held, on the processor the merchant names (as
        payments show it: processorMerchantId, and the processor's name if that is not enough),
        with no fallback: the merchant chose the processor."""

        async def plan(conn: Connection, payment: Payment, sale: tuple[str, str | None]) -> Plan:
            lifecycle.check_authorize(payment, attempted=sale[0] is not None)
            route = await routing_rules.named_route(
                conn, merchant_id, processor_merchant_id, processor_name
            )
            if not routing_rules.takes(
                route,
                payment.payment_method_token,
                "card" if payment.card is not None else "processor_token",
            ):
                raise PaymentMethodTokenNotFound(
                    f"{registry.display_name(route.kind)} does not take this payment's "
                    "paymentMethodToken.",
                    payment_id=payment.id,
                    payment_status=payment.status,
                )
            await self._runner.processor(merchant_id, route.kind, route.account, conn)
            known = await card_behind(conn, merchant_id, payment.payment_method_token, payment.mode)
            card = self._card_for(route, payment.payment_method_token, known)
            cur = conn.cursor(row_factory=dict_row)
            await cur.execute(
                Q["place_payment"],
                {
                    "merchant_id": merchant_id,
                    "id": payment.id,
                    "sale_id": new_id("txn"),
                    **_placed(merchant_id, route, card),
                },
            )
            placed = await cur.fetchone()
            assert placed is not None
            payment = from_row(Payment, placed)
            found = await conn.execute(Q["merchant_routing"], {"merchant_id": merchant_id})
            settings = await found.fetchone()
            assert settings is not None
            return Plan(
                amount=payment.amount,
                transaction_id=await _insert_sale(conn, payment, route),  # payment.sale_id
                input=AuthorizeInput(capture_on_create=bool(settings[1]), accounts=[route.name]),
                payment=payment,
                sale_processor_id=None,
            )

        return await self._follow_up(
            RunKind.AUTHORIZE, merchant_id, payment_id, idempotency, plan, events
        )

    async def adjust(
        self,
        merchant_id: str,
        payment_id: str,
        *,
        amount: int,
        idempotency: RequestKey | None = None,
        events: bool = False,
    ) -> PaymentView:
        """An ESTIMATED authorization changed to `amount` in all (an incremental authorization at
        the processor). While it runs, what was authorized is held from captures (and cancels):
        phase 3 releases the hold with the answer."""

        async def plan(conn: Connection, payment: Payment, sale: tuple[str, str | None]) -> Plan:
            processor = await self._runner.processor(
                merchant_id, payment.processor, payment.processor_account, conn
            )
            lifecycle.check_adjust(
                payment,
                amount,
                supported=processor.capabilities.incremental_authorization,
                processor=registry.display_name(payment.processor),
                authorization_known=sale[1] is not None,
            )
            updated = await _update_payment(
                conn, payment, capture_reserved=payment.capture_reserved + payment.amount_authorized
            )
            return Plan(
                amount=amount,
                transaction_id=sale[0],
                input=AdjustInput(previous=payment.amount_authorized),
                payment=updated,
                sale_processor_id=sale[1],
            )

        return await self._follow_up(
            RunKind.ADJUST, merchant_id, payment_id, idempotency, plan, events
        )

    async def resume(
        self, merchant_id: str, payment_id: str, resume_token: str, *, events: bool = False
    ) -> PaymentView:
        """A payment whose authorization waits for the customer (3-D Secure), resumed now by
        the merchant (the checkout's resume token passed to the processor)."""
        owner = f"{self._runner.owner}/resume-{secrets.token_hex(4)}"
        async with self._db.connection() as conn:
            cur = conn.cursor(row_factory=dict_row)
            await cur.execute(
                Q["claim_run_awaiting_action"],
                {
                    "merchant_id": merchant_id,
                    "payment_id": payment_id,
                    "lease_owner": owner,
                    "lease_seconds": self._runner.config.lease_seconds,
                },
            )
            row = await cur.fetchone()
        if row is None:
            status = await self.status(merchant_id, payment_id)
            if status is None:
                raise PaymentNotFound()
            async with self._db.connection() as conn:
                found = await conn.execute(
                    Q["awaiting_action"], {"merchant_id": merchant_id, "payment_id": payment_id}
                )
                waiting = await found.fetchone()
            if waiting and waiting[0]:  # held by a worker asking the processor, right now
                raise ResumeInProgress(payment_id=payment_id, payment_status=status)
            raise NoActionsToHandle(payment_id=payment_id, payment_status=status)
        run = from_row(Run, row)
        view = await self._runner.resume(run, owner, resume_token, events=events)
        captured = await self.capture_on_create(run, view.payment.status, events=events)
        return captured or view

    async def capture(
        self,
        merchant_id: str,
        payment_id: str,
        *,
        amount: int | None,
        final: bool,
        idempotency: RequestKey | None = None,
        events: bool = False,
    ) -> PaymentView:
        async def plan(conn: Connection, payment: Payment, sale: tuple[str, str | None]) -> Plan:
            reserved = lifecycle.capture_amount(payment, amount)
            updated = await _update_payment(
                conn,
                payment,
                capture_reserved=payment.capture_reserved + reserved,
                captures_closed=payment.captures_closed or final,
            )
            return Plan(
                amount=reserved,
                transaction_id=sale[0],
                input=CaptureInput(amount=amount, final=final, was_closed=payment.captures_closed),
                payment=updated,
                sale_processor_id=sale[1],
            )

        return await self._follow_up(
            RunKind.CAPTURE, merchant_id, payment_id, idempotency, plan, events
        )

    async def cancel(
        self,
        merchant_id: str,
        payment_id: str,
        *,
        reason: str | None = None,
        idempotency: RequestKey | None = None,
        events: bool = False,
    ) -> PaymentView:
        async def plan(conn: Connection, payment: Payment, sale: tuple[str, str | None]) -> Plan:
            held = sale[0] is None
            lifecycle.check_cancel(payment, authorization_known=sale[1] is not None, held=held)
            if held:  # sent to no processor: cancelled here, nothing to void
                updated = await _update_payment(
                    conn, payment, status=PaymentStatus.CANCELLED, captures_closed=True
                )
                await announce_status(
                    conn,
                    updated,
                    ViewReader(conn, updated.merchant_id, updated.id, registry.display_name),
                )
                return Plan(
                    amount=0,
                    transaction_id="",
                    input=CancelInput(reason=reason, was_closed=False),
                    payment=updated,
                    sale_processor_id=None,
                    unsent=RunOutcome(outcome=PaymentStatus.CANCELLED.value),
                )
            updated = await _update_payment(conn, payment, captures_closed=True)
            return Plan(
                amount=0,
                transaction_id=sale[0],
                input=CancelInput(reason=reason, was_closed=payment.captures_closed),
                payment=updated,
                sale_processor_id=sale[1],
            )

        return await self._follow_up(
            RunKind.CANCEL, merchant_id, payment_id, idempotency, plan, events
        )

    async def refund(
        self,
        merchant_id: str,
        payment_id: str,
        *,
        amount: int | None,
        order_id: str | None = None,
        reason: str | None = None,
        note: str | None = None,
        transaction_event_id: uuid.UUID | None = None,
        idempotency: RequestKey | None = None,
        events: bool = False,
    ) -> PaymentView:
        async def plan(conn: Connection, payment: Payment, sale: tuple[str, str | None]) -> Plan:
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
            updated = await _update_payment(
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
                    "type": TransactionType.REFUND,
                    "amount": reserved,
                    "currency_code": payment.currency_code,
                    "order_id": order_id or payment.order_id,
                    "reason": reason,
                    "processor_status": PaymentStatus.PENDING,
                    "processor": payment.processor,
                    "processor_account": payment.processor_account,
                },
            )
            return Plan(
                amount=reserved,
                transaction_id=refund_id,
                input=RefundInput(amount=amount, reason=reason, order_id=order_id, note=note),
                payment=updated,
                sale_processor_id=sale[1],
                capture_event_id=transaction_event_id,
            )

        return await self._follow_up(
            RunKind.REFUND, merchant_id, payment_id, idempotency, plan, events
        )

    # ---------------------------------------------------------------- reads

    async def view(self, merchant_id: str, payment_id: str, *, events: bool = False) -> PaymentView:
        """The payment and its transactions; their events only when asked for (expand)."""
        async with self._db.connection() as conn:
            found = await read_view(
                conn, merchant_id, payment_id, registry.display_name, events=events
            )
        if found is None:
            raise PaymentNotFound()
        return found

    async def run_by_key(self, merchant_id: str, key: str) -> Run | None:
        """The run itself that the merchant's idempotency key names, if any."""
        async with self._db.connection() as conn:
            cur = conn.cursor(row_factory=dict_row)
            await cur.execute(
                Q["run_by_idempotency_key"], {"merchant_id": merchant_id, "idempotency_key": key}
            )
            row = await cur.fetchone()
        return None if row is None else from_row(Run, row)

    async def run_for_key(self, merchant_id: str, key: str) -> KeyedRun | None:
        """The run the merchant's idempotency key names, if any."""
        async with self._db.connection() as conn:
            cur = await conn.execute(
                Q["find_run_by_idempotency_key"],
                {"merchant_id": merchant_id, "idempotency_key": key},
            )
            row = await cur.fetchone()
        if row is None:
            return None
        state, payment_id, payment_status, fingerprint = row
        return KeyedRun(
            state=RunState(state),
            payment_id=payment_id,
            payment_status=payment_status,
            fingerprint=None if fingerprint is None else bytes(fingerprint),
        )

    async def status(self, merchant_id: str, payment_id: str) -> str | None:
        async with self._db.connection() as conn:
            cur = await conn.execute(
                Q["get_payment_status"], {"merchant_id": merchant_id, "id": payment_id}
            )
            row = await cur.fetchone()
        return None if row is None else str(row[0])

    async def capture_on_create(
        self, run: Run, status: str | None = None, *, events: bool = False
    ) -> PaymentView | None:
        """A merchant set to capture on create gets it once the authorization is done: in the
        request, or later when the worker or an operator completes the authorization."""
        if not isinstance(run.input, AuthorizeInput) or not run.input.capture_on_create:
            return None
        if status is None:
            status = await self.status(run.merchant_id, run.payment_id)
        if status != PaymentStatus.AUTHORIZED:
            return None
        return await self.capture(
            run.merchant_id, run.payment_id, amount=None, final=True, events=events
        )

    # ---------------------------------------------------------------- phase 1 of follow-ups

    async def _follow_up(
        self,
        kind: RunKind,
        merchant_id: str,
        payment_id: str,
        idempotency: RequestKey | None,
        plan: Any,
        events: bool,
    ) -> PaymentView:
        """Phase 1 of an operation on an existing payment: `plan` with the payment locked and its
        SALE (id and processor id; None: held, never sent). A payment that has one has its
        processor's connector checked first."""

        async def locked_plan(conn: Connection) -> Plan:
            cur = conn.cursor(row_factory=dict_row)
            key = {"merchant_id": merchant_id, "id": payment_id}
            await cur.execute(Q["lock_payment_with_sale"], key)
            row = await cur.fetchone()
            if row is None:  # (none; or, to be sure, a row the lock's re-check left out)
                await cur.execute(Q["lock_payment"], key)
                row = await cur.fetchone()
                if row is None:
                    raise PaymentNotFound()
            payment = from_row(Payment, row)
            sale = (row.get("sale_transaction_id"), row.get("sale_processor_id"))
            if payment.sale_id is None:
                sale = (None, None)
            elif sale[0] != payment.sale_id or sale[1] is None:
                # The SALE as the joined read saw it may be older than the lock (READ COMMITTED
                # re-reads only the locked row): read after the lock, in a statement of its own,
                # unless its processor id was known already (set once, never changed).
                found = await conn.execute(
                    Q["sale_transaction"], {"merchant_id": merchant_id, "sale_id": payment.sale_id}
                )
                sale = await found.fetchone() or (None, None)
            if sale[0] is not None:  # a held payment has no processor yet
                await self._runner.processor(
                    merchant_id, payment.processor, payment.processor_account, conn
                )
            try:
                planned: Plan = await plan(conn, payment, (sale[0], sale[1]))
            except PaymentError as refusal:
                # A repeat of a request already done is answered as a repeat, not judged by
                # the rules again (it may have closed the payment to itself). Looked up now,
                # after the lock: its run may have been committed while this one waited.
                if idempotency is not None:
                    repeat = await keyed_run(conn, merchant_id, idempotency)
                    if repeat is not None:
                        raise repeat from None
                raise refusal
            return planned

        run, owner, planned = await self._runner.start(
            kind, merchant_id, payment_id, idempotency, locked_plan, target=payment_id
        )
        if planned.unsent:
            return await self.view(merchant_id, payment_id, events=events)
        return await self._driven(run, owner, planned, events)

    async def _driven(self, run: Run, owner: str, planned: Plan, events: bool) -> PaymentView:
        """Phases 2 and 3 of a run just started; the payment as they left it (an authorization
        then captured, if the merchant captures on create)."""
        view = await self._runner.drive(run, owner, planned, view=True, events=events)
        assert view is not None
        captured = await self.capture_on_create(run, view.payment.status, events=events)
        return captured or view

    @staticmethod
    def _card_for(route: Route, token: str, card: Card | None) -> Card | None:
        """The card a payment on `route` takes: the one the gateway kept behind the token
        (`card`), or None for a processor's own token."""
        own = registry.kind(route.kind).own_tokens
        if own is not None:
            if not token.startswith(own.prefix):
                raise PaymentMethodTokenNotFound(
                    f"This merchant's payments go to {registry.display_name(route.kind)}: pass "
                    f"{own.name} ({own.prefix}...) as paymentMethodToken."
                )
            return None
        if card is None:
            raise PaymentMethodTokenNotFound()
        return card

    @staticmethod
    def _held_card(token: str, card: Card | None) -> Card | None:
        """A held payment's card (None: a processor's own token), before any processor is
        chosen: the token must be the gateway's (`card`, the one kept behind it), or look like
        one a processor issues."""
        if card is not None:
            return card
        if any(
            k.own_tokens and token.startswith(k.own_tokens.prefix) for k in registry.KINDS.values()
        ):
            return None
        raise PaymentMethodTokenNotFound()


def _placed(merchant_id: str, route: Route, card: Card | None) -> dict[str, Any]:
    """A payment's columns for the account it goes to, and the card it takes there."""
    return {
        "card_token_type": "PROCESSOR_TOKEN" if card is None else "CARD_PAN",
        "card": jsonb(card),
        "card_last4": card.last4 if card else None,
        "processor": route.kind,
        "processor_account": route.account,
        "processor_merchant_id": route.account or merchant_id,
    }


async def _insert_sale(conn: Connection, payment: Payment, route: Route) -> str:
    """The SALE of an authorization's first attempt (the one the payment names), on `route`'s
    account."""
    sale_id = payment.sale_id
    assert sale_id is not None
    await conn.execute(
        Q["insert_transaction"],
        {
            "merchant_id": payment.merchant_id,
            "id": sale_id,
            "payment_id": payment.id,
            "type": TransactionType.SALE,
            "amount": payment.amount,
            "currency_code": payment.currency_code,
            "order_id": payment.order_id,
            "reason": None,
            "processor_status": PaymentStatus.PENDING,
            "processor": route.kind,
            "processor_account": route.account,
        },
    )
    return sale_id


async def _update_payment(conn: Connection, payment: Payment, **changes: Any) -> Payment:
    updated = replace(payment, **changes)
    await conn.execute(
        Q["update_payment"],
        {
            "merchant_id": updated.merchant_id,
            "id": updated.id,
            "status": updated.status,
            "status_reason": jsonb(updated.status_reason),
            "amount_authorized": updated.amount_authorized,
            "amount_captured": updated.amount_captured,
            "amount_refunded": updated.amount_refunded,
            "capture_reserved": updated.capture_reserved,
            "refund_reserved": updated.refund_reserved,
            "captures_closed": updated.captures_closed,
            "required_action": jsonb(updated.required_action),
        },
    )
    return updated
