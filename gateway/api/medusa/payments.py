"""Medusa's three operations on a payment, over the engine: read, capture (what is left, final),
refund. Every POST is a run keyed by Medusa's Idempotency-Key (or by a key of its own when the
client sends none), so that a repeat is the same request; the answer to a finished request is kept
(`medusa_answers`) and a repeat gets it again, as Medusa's retrying client expects."""

from __future__ import annotations

import re
import uuid
from datetime import datetime
from typing import Annotated, Any, Literal

import msgspec
from starlette.responses import Response

from gateway.api.medusa.endpoint import MedusaCall, medusa_endpoint
from gateway.api.medusa.errors import (
    CONFLICT,
    DUPLICATE,
    INVALID_DATA,
    NOT_ALLOWED,
    NOT_FOUND,
    MedusaError,
    from_domain,
    shape,
)
from gateway.db import QUERIES
from gateway.http.errors import (
    IdempotencyKeyAlreadyExists,
    IdempotencyKeyInProgress,
    IdempotencyKeyReused,
)
from gateway.http.idempotency import IdempotencyScope, fingerprint
from processors.cards import holds_card_number
from workflows import errors as domain
from workflows.errors import RunAlreadyExists
from workflows.model import (
    EventType,
    PaymentView,
    RecoveryPoint,
    RefundInput,
    Run,
    RunState,
    TransactionType,
)
from workflows.runner import RequestKey

_PAYMENT_ID = re.compile("^[A-Za-z0-9_-]{1,64}$")
_encode = msgspec.json.Encoder().encode
MAX_AMOUNT = 2**63 - 1


class AdminPostPaymentRefundsReq(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    amount: Annotated[int, msgspec.Meta(gt=0, le=MAX_AMOUNT)]
    reason: Literal["discount", "return", "swap", "claim", "other"]
    note: Annotated[str, msgspec.Meta(max_length=2000)] | None = None


def _payment_id(call: MedusaCall) -> str:
    payment_id: str = call.request.path_params["id"]
    if not _PAYMENT_ID.match(payment_id):
        raise MedusaError(404, NOT_FOUND, "Payment was not found")
    return payment_id


def _at(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment else None


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) else None


class PaymentData(msgspec.Struct, frozen=True, kw_only=True):
    """The gateway's own figures, in Medusa's free-form `data`."""

    status: str
    amount_captured: int
    processor_account: str | None
    processor_transaction_id: str | None


class Payment(msgspec.Struct, frozen=True, kw_only=True):
    """Medusa's `Payment`: a gateway payment (never a secret, never card data)."""

    id: str
    swap_id: str | None
    cart_id: str | None
    order_id: str
    amount: int
    currency_code: str
    amount_refunded: int
    provider_id: str | None
    data: PaymentData
    captured_at: str | None
    canceled_at: str | None
    idempotency_key: None
    created_at: str
    updated_at: str
    metadata: dict[str, Any] | None

    @classmethod
    def of(cls, view: PaymentView) -> Payment:
        payment = view.payment
        metadata = payment.metadata or {}
        # The SALE in force (an authorization that fell back has several): the payment names it.
        sale = next((t for t in view.transactions if t.id == payment.sale_id), None)

        def first(kind: EventType) -> str | None:
            return _at(min((e.created_at for e in view.events if e.type is kind), default=None))

        return cls(
            id=payment.id,
            swap_id=_text(metadata.get("swap_id")),
            cart_id=_text(metadata.get("cart_id")),
            order_id=payment.order_id,
            amount=payment.amount_authorized,
            currency_code=payment.currency_code.lower(),
            amount_refunded=payment.amount_refunded,
            provider_id=payment.processor,
            data=PaymentData(
                status=payment.status.value,
                amount_captured=payment.amount_captured,
                processor_account=payment.processor_account,
                processor_transaction_id=sale.processor_transaction_id if sale else None,
            ),
            captured_at=first(EventType.CAPTURE_SUCCEEDED),
            canceled_at=first(EventType.CANCELLATION_SUCCEEDED),
            idempotency_key=None,
            created_at=payment.created_at.isoformat(),
            updated_at=payment.updated_at.isoformat(),
            metadata=payment.metadata,
        )


class PaymentResponse(msgspec.Struct, frozen=True):
    payment: Payment


class Refund(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """Medusa's `Refund`: the refund a run made, the same on every read of a finished run."""

    id: str
    order_id: str
    payment_id: str
    amount: int | None
    reason: str | None
    created_at: str
    updated_at: str
    metadata: dict[str, Any]
    note: str | None = None
    idempotency_key: str | None = None

    @classmethod
    def of(cls, run: Run, view: PaymentView, merchant_key: str | None) -> Refund:
        assert isinstance(run.input, RefundInput)
        transaction = next(t for t in view.transactions if t.id == run.transaction_id)
        return cls(
            id=transaction.id,
            order_id=view.payment.order_id,
            payment_id=view.payment.id,
            amount=run.amount,
            reason=run.input.reason,
            created_at=transaction.created_at.isoformat(),
            updated_at=run.updated_at.isoformat(),
            metadata={},
            note=run.input.note,
            idempotency_key=merchant_key,
        )


class RefundResponse(msgspec.Struct, frozen=True):
    refund: Refund


def answer_of(run: Run, view: PaymentView, merchant_key: str | None) -> tuple[int, bytes, bool]:
    """What a run's request is answered: status, body, and whether it is final (kept)."""
    if run.kind == "capture" and run.recovery_point is RecoveryPoint.AWAIT_SETTLEMENT:
        # Accepted, settlement confirmed later: the payment as it stands (not kept: it moves on).
        return 200, _encode(PaymentResponse(Payment.of(view))), False
    if not run.state.finished:
        again = (
            "retry with the same Idempotency-Key"
            if merchant_key is not None
            else "do not send it again: read the payment to see when it is done"
        )
        message = f"The {run.kind}'s outcome is being confirmed with the processor; {again}"
        body = {"type": CONFLICT, "message": message, "code": "invalid_state_error"}
        return 409, _encode(body), False
    if run.state is RunState.FAILED:
        reason = run.outcome.reason.message if run.outcome and run.outcome.reason else None
        message = f"The processor refused the {run.kind}" + (f": {reason}" if reason else "")
        return 400, _encode({"type": NOT_ALLOWED, "message": message}), True
    if run.kind == "refund":
        return 200, _encode(RefundResponse(Refund.of(run, view, merchant_key))), True
    return 200, _encode(PaymentResponse(Payment.of(view))), True


async def _kept(call: MedusaCall, key: str) -> tuple[int, bytes, bytes | None] | None:
    async with call.services.engine.db.connection() as conn:
        cur = await conn.execute(
            QUERIES["medusa_answer"], {"merchant_id": call.merchant_id, "key": key}
        )
        row = await cur.fetchone()
    if row is None:
        return None
    return row[0], bytes(row[1]), None if row[2] is None else bytes(row[2])


async def _keep(call: MedusaCall, key: str, status: int, body: bytes, fp: bytes) -> Response:
    """Keep the answer to the request `key` names (the first kept wins), and give it."""
    async with call.services.engine.db.connection() as conn:
        params = {"merchant_id": call.merchant_id, "key": key}
        await conn.execute(
            QUERIES["keep_medusa_answer"],
            {**params, "status": status, "body": body, "fingerprint": fp},
        )
    kept = await _kept(call, key)
    if kept is not None:  # a concurrent request kept its answer first: that one
        status, body = kept[0], kept[1]
    return Response(body, status_code=status, media_type="application/json")


async def _answer(
    call: MedusaCall, key: str, merchant_key: str | None, fp: bytes, run: Run | None = None
) -> Response:
    """The answer to the request that `key` names, from its run (`run`, or read now; kept if
    final; if another request kept one first, that one)."""
    engine = call.services.engine
    run = run or await engine.payments.run_by_key(call.merchant_id, key)
    if run is None:
        raise MedusaError(409, CONFLICT, "This request is being processed", "invalid_state_error")
    view = await engine.payments.view(call.merchant_id, run.payment_id, events=True)
    status, body, final = answer_of(run, view, merchant_key)
    if final and merchant_key is not None:
        return await _keep(call, merchant_key, status, body, fp)
    return Response(body, status_code=status, media_type="application/json")


# Refusals that a repeat of the same request would meet again: kept under its key, so that a
# repeat is answered the same even once the payment has changed (never done later instead).
_KEPT_REFUSALS = (
    domain.PaymentNotFound,
    domain.InvalidPaymentStatus,
    domain.UnprocessableCaptureAmount,
    domain.UnprocessableRefundAmount,
    domain.PaymentAlreadyRefunded,
)


async def _keyed(
    call: MedusaCall, operation: str, payment_id: str, canonical: bytes, act: Any
) -> Response:
    """Run `act(RequestKey)` at most once per Idempotency-Key, and answer as the first did."""
    merchant_key = call.idempotency_key
    scope = IdempotencyScope(call.merchant_id, operation, payment_id)
    fp = fingerprint(scope, canonical)
    if merchant_key is None:  # a key of its own (with spaces: never one a client can send)
        key = f"medusa {operation} {uuid.uuid4().hex}"
        await act(RequestKey(key, fp))
        return await _answer(call, key, None, fp)
    kept = await _kept(call, merchant_key)  # a finished request's answer, or a kept refusal
    if kept is not None:
        if kept[2] is not None and kept[2] != fp:
            raise _reused()
        return Response(kept[1], status_code=kept[0], media_type="application/json")
    earlier = await call.services.engine.payments.run_by_key(call.merchant_id, merchant_key)
    if earlier is not None:
        if earlier.request_fingerprint is not None and earlier.request_fingerprint != fp:
            raise _reused()
        return await _answer(call, merchant_key, merchant_key, fp, earlier)
    in_progress = MedusaError(
        409, CONFLICT, "A request with this Idempotency-Key is in progress", "invalid_state_error"
    )
    try:
        hold = call.services.idempotency.hold(scope, merchant_key, fp, durable=False)
        async with hold as claim:
            await act(RequestKey(merchant_key, fp))
            claim.processed(payment_id, None)
    except IdempotencyKeyReused:
        raise _reused() from None
    except IdempotencyKeyInProgress:
        raise in_progress from None
    except _KEPT_REFUSALS as refusal:
        status, body = shape(from_domain(refusal), "")
        return await _keep(call, merchant_key, status, body, fp)
    except (IdempotencyKeyAlreadyExists, RunAlreadyExists) as repeat:
        if isinstance(repeat, RunAlreadyExists) and not repeat.finished:
            raise in_progress from None
    return await _answer(call, merchant_key, merchant_key, fp)


def _reused() -> MedusaError:
    return MedusaError(
        422, DUPLICATE, "This Idempotency-Key was used for another request (payment or body)"
    )


@medusa_endpoint("transactions:retrieve")
async def get_payment(call: MedusaCall) -> Response:
    view = await call.services.engine.payments.view(
        call.merchant_id, _payment_id(call), events=True
    )
    return Response(_encode(PaymentResponse(Payment.of(view))), media_type="application/json")


@medusa_endpoint("transactions:capture")
async def capture_payment(call: MedusaCall) -> Response:
    """Capture what is left, as a final capture (Medusa's client sends no body)."""
    payment_id = _payment_id(call)

    async def act(key: RequestKey) -> None:
        await call.services.engine.payments.capture(
            call.merchant_id, payment_id, amount=None, final=True, idempotency=key
        )

    return await _keyed(call, "medusa:capture", payment_id, b"", act)


@medusa_endpoint("transactions:refund")
async def refund_payment(call: MedusaCall) -> Response:
    payment_id = _payment_id(call)
    body = await call.body(AdminPostPaymentRefundsReq)
    if body.note is not None and holds_card_number(body.note):
        # It would be stored and shown in clear: the database stays out of card-data scope.
        raise MedusaError(
            400, INVALID_DATA, "A card number must not be sent in a free-form field (at $.note)"
        )
    if call.idempotency_key is None:
        # Without a key a repeat is a new refund: none while another's outcome is unknown, or an
        # admin's second click would refund twice.
        view = await call.services.engine.payments.view(call.merchant_id, payment_id)
        if any(t.type is TransactionType.REFUND and t.outcome_unknown for t in view.transactions):
            raise MedusaError(
                409,
                CONFLICT,
                "A refund of this payment is still being confirmed with the processor: read the "
                "payment, and refund again once it is done (or send an Idempotency-Key)",
                "invalid_state_error",
            )

    async def act(key: RequestKey) -> None:
        await call.services.engine.payments.refund(
            call.merchant_id,
            payment_id,
            amount=body.amount,
            reason=body.reason,
            note=body.note,
            idempotency=key,
        )

    return await _keyed(call, "medusa:refund", payment_id, _encode(body), act)
