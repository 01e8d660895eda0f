"""Primer's client sessions: `POST /client-session` (a session and its client token), `GET
/client-session?clientToken=`, `PATCH /client-session` (the fields given change; null clears
one; a customer given merges into the one kept; arrays are replaced whole). A card tokenized with
the client token belongs to the session, and a payment made with it takes the session's order
id, currency, amount, order, customer and metadata where the payment request leaves them out.
"""

from __future__ import annotations

from datetime import UTC
from typing import Any

import msgspec
from starlette.responses import Response

from gateway.api.primer.checks import check_metadata, refuse_card_numbers
from gateway.api.primer.endpoint import MerchantCall, merchant_endpoint
from gateway.api.primer.schemas import (
    UNSET,
    CheckoutPaymentMethodOptions,
    ClientSessionAPIRequest,
    ClientSessionAPIResponse,
    ClientSessionQuery,
    ClientSessionUpdateAPIRequest,
    ClientSessionWithTokenAPIResponse,
    CustomerDetails,
    CustomerDetailsOut,
)
from gateway.http.bodies import read_query
from gateway.http.errors import validation_error
from gateway.http.responses import JSONResponse
from workflows import sessions
from workflows.model import Customer, PaymentOptions
from workflows.sessions import SessionFields

_CHECKOUT_ONLY = ("orderedAllowedCardNetworks", "options")


def _payment_method(
    given: CheckoutPaymentMethodOptions | None,
) -> tuple[PaymentOptions | None, dict[str, Any] | None]:
    """A checkout's payment-method options: the payment's, and the checkout's own."""
    if given is None:
        return None, None
    raw = msgspec.to_builtins(given)
    checkout = {key: raw.pop(key) for key in _CHECKOUT_ONLY if key in raw}
    return msgspec.convert(raw, PaymentOptions) if raw else None, checkout or None


def _customer(given: CustomerDetails | None) -> Customer | None:
    return None if given is None else msgspec.convert(msgspec.to_builtins(given), Customer)


def _fields(body: ClientSessionAPIRequest) -> SessionFields:
    options, checkout = _payment_method(body.paymentMethod)
    return SessionFields(
        order_id=body.orderId,
        currency_code=body.currencyCode,
        amount=body.amount,
        order=body.order,
        customer_id=body.customerId,
        customer=_customer(body.customer),
        metadata=body.metadata,
        payment_options=options,
        checkout_options=checkout,
    )


def _rendered(fields: SessionFields) -> dict[str, Any]:
    payment_method = {
        **msgspec.to_builtins(fields.payment_options or PaymentOptions()),
        **(fields.checkout_options or {}),
    }
    return {
        "orderId": fields.order_id,
        "currencyCode": fields.currency_code,
        "amount": fields.amount,
        "order": fields.order,
        "customerId": fields.customer_id,
        "customer": msgspec.convert(msgspec.to_builtins(fields.customer), CustomerDetailsOut)
        if fields.customer
        else None,
        "metadata": fields.metadata,
        "paymentMethod": payment_method or None,
    }


def _check(model: str, metadata: Any, **free_form: Any) -> None:
    check_metadata(model, metadata if isinstance(metadata, dict) else None)
    refuse_card_numbers(model, metadata=metadata, **free_form)


@merchant_endpoint("transactions:authorize")
async def create_session(call: MerchantCall) -> Response:
    body = await call.body(ClientSessionAPIRequest)
    _check(
        "ClientSessionAPIRequest",
        body.metadata,
        orderId=body.orderId,
        customerId=body.customerId,
        customer=body.customer,
        order=body.order,
        paymentMethod=body.paymentMethod,
    )
    async with call.services.engine.db.connection() as conn:
        token, session = await sessions.create(
            conn,
            call.merchant_id,
            call.principal.mode or "sandbox",
            _fields(body),
            call.services.settings.client_session_ttl_seconds,
        )
    answer = ClientSessionWithTokenAPIResponse(
        clientToken=token,
        clientTokenExpirationDate=session.expires_at.astimezone(UTC).isoformat(),
        **_rendered(session.fields),
    )
    return JSONResponse(answer)


@merchant_endpoint("transactions:retrieve")
async def get_session(call: MerchantCall) -> Response:
    token = read_query(call.request, ClientSessionQuery).clientToken
    if not token or len(token) > 255:
        raise sessions.SessionNotFound()
    async with call.services.engine.db.connection() as conn:
        session = await sessions.find(
            conn, call.merchant_id, call.principal.mode or "sandbox", token
        )
    return JSONResponse(ClientSessionAPIResponse(**_rendered(session.fields)))


@merchant_endpoint("transactions:authorize")
async def update_session(call: MerchantCall) -> Response:
    body = await call.body(ClientSessionUpdateAPIRequest)
    _check(
        "ClientSessionUpdateAPIRequest",
        body.metadata,
        orderId=body.orderId if body.orderId is not UNSET else None,
        customerId=body.customerId if body.customerId is not UNSET else None,
        customer=body.customer if body.customer is not UNSET else None,
        order=body.order if body.order is not UNSET else None,
        paymentMethod=body.paymentMethod if body.paymentMethod is not UNSET else None,
    )
    if body.paymentMethod not in (UNSET, None) and body.paymentMethod.options is not None:
        raise validation_error(
            "ClientSessionUpdateAPIRequest",
            "paymentMethod.options cannot be updated - at `$.paymentMethod.options`",
        )

    def change(fields: SessionFields) -> SessionFields:
        changes: dict[str, Any] = {}
        for given, name in (
            (body.orderId, "order_id"),
            (body.currencyCode, "currency_code"),
            (body.amount, "amount"),
            (body.order, "order"),
            (body.customerId, "customer_id"),
            (body.metadata, "metadata"),
        ):
            if given is not UNSET:
                changes[name] = given
        if body.customer is not UNSET:
            customer = body.customer
            if customer is not None and fields.customer is not None:
                merged = {**msgspec.to_builtins(fields.customer), **msgspec.to_builtins(customer)}
                changes["customer"] = msgspec.convert(merged, Customer)
            else:
                changes["customer"] = _customer(customer)
        if body.paymentMethod is not UNSET:
            options, _ = _payment_method(body.paymentMethod)
            changes["payment_options"] = options
            if body.paymentMethod is None:
                changes["checkout_options"] = None
            elif body.paymentMethod.orderedAllowedCardNetworks is not None:
                changes["checkout_options"] = {
                    **(fields.checkout_options or {}),
                    "orderedAllowedCardNetworks": body.paymentMethod.orderedAllowedCardNetworks,
                }
        return msgspec.structs.replace(fields, **changes)

    async with call.services.engine.db.connection() as conn:
        session = await sessions.update(
            conn, call.merchant_id, call.principal.mode or "sandbox", body.clientToken, change
        )
    return JSONResponse(ClientSessionAPIResponse(**_rendered(session.fields)))
