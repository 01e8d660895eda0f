"""The Payments API: `/payments*` endpoints, decoded into commands for the workflow engine.

Each handler decodes the body (422 on anything malformed), hands a typed command to the engine
under the idempotency guard, and encodes the resulting payment as Primer does.
"""

from __future__ import annotations

import base64
import re
from datetime import datetime
from typing import Annotated, Literal, TypeVar

import msgspec
from msgspec import Meta
from starlette.responses import Response

from gateway.api.primer import render
from gateway.api.primer.checks import check_metadata, converted, refuse_card_numbers
from gateway.api.primer.endpoint import MerchantCall, merchant_endpoint
from gateway.api.primer.schemas import (
    Expand,
    PaymentAdjustAuthorizationAPIRequest,
    PaymentAuthorizationAPIRequest,
    PaymentCancelAPIRequest,
    PaymentCaptureAPIRequest,
    PaymentCreationAPIRequest,
    PaymentList,
    PaymentListQuery,
    PaymentQuery,
    PaymentRefundAPIRequest,
    PaymentResumeAPIRequest,
)
from gateway.http.bodies import read_query
from gateway.http.errors import validation_error
from gateway.http.idempotency import Claim
from gateway.http.responses import JSONResponse
from processors import registry
from workflows.commands import CreatePayment
from workflows.errors import PaymentNotFound
from workflows.model import Customer, Payment, PaymentOptions, PaymentView
from workflows.runner import RequestKey

T = TypeVar("T")


# What a payment id can look like: anything else (a NUL, a megabyte) names no payment.
PAYMENT_ID = "^[A-Za-z0-9_-]{1,64}$"
_PAYMENT_ID = re.compile(PAYMENT_ID)


def _payment_id(call: MerchantCall) -> str:
    payment_id: str = call.request.path_params["id"]
    if not _PAYMENT_ID.match(payment_id):
        raise PaymentNotFound()
    return payment_id


def _request_key(claim: Claim) -> RequestKey | None:
    """The merchant's key as the engine records it: its run per key is the durable record."""
    if claim.key is None or claim.fingerprint is None:
        return None
    return RequestKey(claim.key, claim.fingerprint)


def _answer(view: PaymentView, claim: Claim, expand: Expand | None) -> Response:
    claim.processed(view.payment.id, view.payment.status)
    return JSONResponse(render.payment(view, expand_events=bool(expand)))


@merchant_endpoint("transactions:authorize")
async def create_payment(call: MerchantCall) -> Response:
    body = await call.body(PaymentCreationAPIRequest)
    check_metadata("PaymentCreationAPIRequest", body.metadata)
    refuse_card_numbers(
        "PaymentCreationAPIRequest",
        orderId=body.orderId,
        customerId=body.customerId,
        customer=body.customer,
        order=body.order,
        metadata=body.metadata,
    )

    async def work(claim: Claim) -> Response:
        # The card's client session, if it was entered in one, gives what the request leaves
        # out (read by the engine's phase 1 with the merchant's settings).
        command = CreatePayment(
            merchant_id=call.merchant_id,
            mode=call.principal.mode or "sandbox",
            order_id=body.orderId,
            currency_code=body.currencyCode,
            amount=body.amount,
            payment_method_token=body.paymentMethodToken,
            customer_id=body.customerId,
            customer=converted(body.customer, Customer),
            order_details=body.order,
            metadata=body.metadata,
            payment_options=converted(body.paymentMethod, PaymentOptions),
            idempotency=_request_key(claim),
        )
        # (A field neither gives: PaymentFieldMissing, Primer's validation error; errors.py.)
        view = await call.services.engine.payments.authorize(command, events=bool(body.expand))
        return _answer(view, claim, body.expand)

    return await call.once("create", body, work, durable=False)


@merchant_endpoint("transactions:authorize")
async def authorize_payment(call: MerchantCall) -> Response:
    """A payment its routing rule held, authorized on the processor the merchant names."""
    payment_id = _payment_id(call)
    body = await call.body(PaymentAuthorizationAPIRequest)

    async def work(claim: Claim) -> Response:
        view = await call.services.engine.payments.authorize_on(
            call.merchant_id,
            payment_id,
            processor_merchant_id=body.processor.processorMerchantId,
            processor_name=body.processor.name,
            idempotency=_request_key(claim),
            events=bool(body.expand),
        )
        return _answer(view, claim, body.expand)

    return await call.once("authorize", body, work, target=payment_id, durable=False)


@merchant_endpoint("transactions:authorize")
async def resume_payment(call: MerchantCall) -> Response:
    """A payment waiting for the customer (3-D Secure), resumed with the checkout's token."""
    payment_id = _payment_id(call)
    body = await call.body(PaymentResumeAPIRequest)

    async def work(claim: Claim) -> Response:
        view = await call.services.engine.payments.resume(
            call.merchant_id, payment_id, body.resumeToken, events=bool(body.expand)
        )
        return _answer(view, claim, body.expand)

    return await call.once("resume", body, work, target=payment_id)


@merchant_endpoint("transactions:authorize")
async def adjust_authorization(call: MerchantCall) -> Response:
    payment_id = _payment_id(call)
    body = await call.body(PaymentAdjustAuthorizationAPIRequest)

    async def work(claim: Claim) -> Response:
        view = await call.services.engine.payments.adjust(
            call.merchant_id,
            payment_id,
            amount=body.amount,
            idempotency=_request_key(claim),
            events=bool(body.expand),
        )
        return _answer(view, claim, body.expand)

    return await call.once("adjust", body, work, target=payment_id, durable=False)


@merchant_endpoint("transactions:capture")
async def capture_payment(call: MerchantCall) -> Response:
    payment_id = _payment_id(call)
    body = await call.body(PaymentCaptureAPIRequest)
    refuse_card_numbers("PaymentCaptureAPIRequest", order=body.order, metadata=body.metadata)

    async def work(claim: Claim) -> Response:
        view = await call.services.engine.payments.capture(
            call.merchant_id,
            payment_id,
            amount=body.amount,
            final=body.final,
            idempotency=_request_key(claim),
            events=bool(body.expand),
        )
        return _answer(view, claim, body.expand)

    return await call.once("capture", body, work, target=payment_id, durable=False)


@merchant_endpoint("transactions:cancel")
async def cancel_payment(call: MerchantCall) -> Response:
    payment_id = _payment_id(call)
    body = await call.body(PaymentCancelAPIRequest)
    refuse_card_numbers("PaymentCancelAPIRequest", reason=body.reason)

    async def work(claim: Claim) -> Response:
        view = await call.services.engine.payments.cancel(
            call.merchant_id,
            payment_id,
            reason=body.reason,
            idempotency=_request_key(claim),
            events=bool(body.expand),
        )
        return _answer(view, claim, body.expand)

    return await call.once("cancel", body, work, target=payment_id, durable=False)


@merchant_endpoint("transactions:refund")
async def refund_payment(call: MerchantCall) -> Response:
    payment_id = _payment_id(call)
    body = await call.body(PaymentRefundAPIRequest)
    refuse_card_numbers("PaymentRefundAPIRequest", reason=body.reason, orderId=body.orderId)

    async def work(claim: Claim) -> Response:
        view = await call.services.engine.payments.refund(
            call.merchant_id,
            payment_id,
            amount=body.amount,
            order_id=body.orderId,
            reason=body.reason,
            transaction_event_id=body.transactionEventId,
            idempotency=_request_key(claim),
            events=bool(body.expand),
        )
        return _answer(view, claim, body.expand)

    return await call.once("refund", body, work, target=payment_id, durable=False)


@merchant_endpoint("transactions:retrieve")
async def get_payment(call: MerchantCall) -> Response:
    expand = read_query(call.request, PaymentQuery).expand
    view = await call.services.engine.payments.view(
        call.merchant_id, _payment_id(call), events=bool(expand)
    )
    return JSONResponse(render.payment(view, expand_events=bool(expand)))


# ------------------------------------------------------------------ listing


class Cursor(msgspec.Struct, frozen=True, array_like=True):
    direction: Literal["next", "prev"]
    created_at: datetime
    payment_id: Annotated[str, Meta(pattern=PAYMENT_ID)]


_cursor_decoder = msgspec.json.Decoder(Cursor)


def _encode_cursor(direction: Literal["next", "prev"], payment: Payment) -> str:
    raw = msgspec.json.encode(Cursor(direction, payment.created_at, payment.id))
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode_cursor(text: str) -> Cursor:
    try:
        return _cursor_decoder.decode(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)))
    except (ValueError, msgspec.DecodeError):
        raise validation_error("PaymentListQuery", "Invalid cursor - at `$.cursor`") from None


@merchant_endpoint("transactions:retrieve")
async def list_payments(call: MerchantCall) -> Response:
    query = read_query(call.request, PaymentListQuery)
    cursor = _decode_cursor(query.cursor) if query.cursor else None
    # Processors by the names merchants see (a name no processor has matches nothing).
    processors = None
    if query.processor:
        processors = [
            kind.name
            for kind in registry.KINDS.values()
            if kind.display_name in {name.upper() for name in query.processor}
        ]
    position = (cursor.created_at, cursor.payment_id) if cursor else None
    page, has_more = await call.services.reads.list_payments(
        call.merchant_id,
        statuses=query.status,
        currencies=query.currency_code,
        order_id=query.order_id,
        customer_ids=query.customer_id,
        from_date=query.from_date,
        to_date=query.to_date,
        min_amount=query.min_amount,
        max_amount=query.max_amount,
        processors=processors,
        last4s=query.last_4_digits,
        limit=query.limit,
        after=position if cursor and cursor.direction == "next" else None,
        before=position if cursor and cursor.direction == "prev" else None,
    )
    body = PaymentList(data=[render.summary(p, registry.display_name(p.processor)) for p in page])
    backwards = cursor is not None and cursor.direction == "prev"
    if page:
        if has_more or backwards:
            body.nextCursor = _encode_cursor("next", page[-1])
        if (cursor is not None and not backwards) or (backwards and has_more):
            body.prevCursor = _encode_cursor("prev", page[0])
    return JSONResponse(body)
