"""`POST /payment-instruments`: a card becomes a `paymentMethodToken`; and Primer's saved
(vaulted) payment methods: vault one for a customer, list a customer's, delete one, make one the
customer's default.

Sandbox keys accept only the sandbox's test cards; live keys refuse raw card data (a live card is
tokenized by a PCI-compliant vault, never sent through the gateway). Only network, first 6, last 4,
expiry and holder name are kept; the number and the CVV are dropped here and never logged.
"""

from __future__ import annotations

from datetime import UTC, datetime

from starlette.responses import Response

from gateway.api.primer import render
from gateway.api.primer.endpoint import MerchantCall, merchant_endpoint
from gateway.api.primer.schemas import (
    CardDetails,
    PaymentInstrument,
    PaymentInstrumentList,
    PaymentMethodsQuery,
    VaultPaymentMethodAPIRequest,
)
from gateway.http.bodies import read_query
from gateway.http.errors import ApiError, validation_error
from gateway.http.responses import JSONResponse
from processors.cards import luhn_valid, network_of
from processors.sandbox import ISSUER_COUNTRIES, TEST_CARDS
from workflows import instruments
from workflows.model import Card


class NotATestCard(ApiError):
    """Sandbox keys accept only the sandbox's test card numbers (see the README)."""

    status = 400
    error_id = "InvalidTestCard"


class RawCardDataRefused(ApiError):
    """Live keys do not accept raw card data; tokenize cards with a PCI-compliant vault."""

    status = 400
    error_id = "RawCardDataNotAllowed"


@merchant_endpoint("payment_instrument:write")
async def create_instrument(call: MerchantCall) -> Response:
    if call.principal.mode == "live":
        raise RawCardDataRefused()
    card = await call.body(CardDetails)
    if not luhn_valid(card.number):
        raise validation_error("CardDetails", "Not a valid card number - at `$.number`")
    now = datetime.now(UTC)
    if (int(card.expirationYear), int(card.expirationMonth)) < (now.year, now.month):
        raise validation_error("CardDetails", "The card has expired - at `$.expirationYear`")
    if card.number not in TEST_CARDS:
        raise NotATestCard()
    kept = Card(
        network=network_of(card.number),
        first6=card.number[:6],
        last4=card.number[-4:],
        expiration_month=card.expirationMonth,
        expiration_year=card.expirationYear,
        cardholder_name=card.cardholderName,
        issuer_country=ISSUER_COUNTRIES.get(card.number[:6]),
    )
    assert call.principal.mode is not None
    token, created_at = await instruments.tokenize(
        call.services.engine.db, call.merchant_id, call.principal.mode, kept, card.clientToken
    )
    return JSONResponse(
        PaymentInstrument(
            createdAt=created_at.isoformat(),
            token=token,
            tokenType="SINGLE_USE",  # one payment; saved for a customer (vault): MULTI_USE
            paymentMethodType="PAYMENT_CARD",
            paymentMethodData=render.card_data(kept),
            deleted=False,
            default=False,
        )
    )


def _saved(saved: instruments.Saved) -> PaymentInstrument:
    return PaymentInstrument(
        createdAt=saved.created_at.isoformat(),
        token=saved.token,
        tokenType="MULTI_USE",
        paymentMethodType="PAYMENT_CARD",
        paymentMethodData=render.card_data(saved.card),
        deleted=saved.deleted_at is not None,
        default=saved.default,
        customerId=saved.customer_id,
        deletedAt=saved.deleted_at.isoformat() if saved.deleted_at else None,
    )


def _token(call: MerchantCall) -> str:
    token: str = call.request.path_params["paymentMethodToken"]
    if len(token) > 255 or "\x00" in token:
        raise instruments.InvalidPaymentInstrument()
    return token


@merchant_endpoint("payment_instrument:write")
async def vault_instrument(call: MerchantCall) -> Response:
    """Save a card for a customer: a multi-use token of its own (the same one if saved before)."""
    body = await call.body(VaultPaymentMethodAPIRequest)
    assert call.principal.mode is not None
    async with call.services.engine.db.connection() as conn:
        saved = await instruments.vault(
            conn, call.merchant_id, call.principal.mode, _token(call), body.customerId
        )
    return JSONResponse(_saved(saved))


@merchant_endpoint("payment_instrument:read")
async def list_instruments(call: MerchantCall) -> Response:
    customer_id = read_query(call.request, PaymentMethodsQuery).customer_id
    assert call.principal.mode is not None
    async with call.services.engine.db.connection() as conn:
        saved = await instruments.saved_of(conn, call.merchant_id, call.principal.mode, customer_id)
    return JSONResponse(PaymentInstrumentList(data=[_saved(s) for s in saved]))


@merchant_endpoint("payment_instrument:write")
async def delete_instrument(call: MerchantCall) -> Response:
    assert call.principal.mode is not None
    async with call.services.engine.db.connection() as conn:
        saved = await instruments.delete(conn, call.merchant_id, call.principal.mode, _token(call))
    return JSONResponse(_saved(saved))


@merchant_endpoint("payment_instrument:write")
async def default_instrument(call: MerchantCall) -> Response:
    assert call.principal.mode is not None
    async with call.services.engine.db.connection() as conn:
        saved = await instruments.make_default(
            conn, call.merchant_id, call.principal.mode, _token(call)
        )
    return JSONResponse(_saved(saved))
