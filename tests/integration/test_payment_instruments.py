"""POST /payment-instruments: test cards only in sandbox, no raw cards in live, nothing kept that
must not be."""

from __future__ import annotations

import json
from typing import Any

import pytest

from gateway import accounts
from tests.integration.shop import Shop
from workflows import merchants

CARD = {
    "number": "4242424242424242",
    "expirationMonth": "07",
    "expirationYear": "2030",
    "cvv": "987",
    "cardholderName": "Grace Hopper",
}


async def test_a_test_card_becomes_a_token_showing_only_what_may_be_shown(
    shop: Shop, db: Any
) -> None:
    response = await shop.call("POST", "/payment-instruments", CARD)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["token"].startswith("tok_")
    assert body["paymentMethodType"] == "PAYMENT_CARD"
    assert body["paymentMethodData"] == {
        "first6Digits": "424242",
        "last4Digits": "4242",
        "expirationMonth": "07",
        "expirationYear": "2030",
        "network": "VISA",
        "cardholderName": "Grace Hopper",
        "isNetworkTokenized": False,
    }
    # The token and the dates are random or time-made: they may hold any digits.
    shown = json.dumps({k: v for k, v in body.items() if k not in ("token", "createdAt")})
    assert CARD["cvv"] not in shown and CARD["number"] not in response.text
    cur = await db.execute(
        "SELECT (to_jsonb(t) - 'token' - 'created_at')::text FROM payment_instruments t"
        " WHERE token = %s",
        (body["token"],),
    )
    (row,) = await cur.fetchone()
    assert CARD["number"] not in row and CARD["cvv"] not in row


@pytest.mark.parametrize("number", ["4012888888881881", "378282246310005"])
async def test_sandbox_keys_accept_only_test_cards(shop: Shop, number: str) -> None:
    response = await shop.call("POST", "/payment-instruments", {**CARD, "number": number})
    assert response.status_code == 400
    assert response.json()["error"]["errorId"] == "InvalidTestCard"


async def test_live_keys_refuse_raw_card_data(client: Any, db: Any, merchant: Any) -> None:
    found = await merchants.find_merchant(db, merchant.name)
    live = await accounts.create_key(db, kind="merchant", merchant=found, mode="live")
    response = await client.post(
        "/payment-instruments", json=CARD, headers={"X-API-KEY": live.secret}
    )
    assert response.status_code == 400
    assert response.json()["error"]["errorId"] == "RawCardDataNotAllowed"


@pytest.mark.parametrize(
    "change",
    [
        {"number": "4242424242424241"},
        {"number": "42"},
        {"expirationMonth": "13"},
        {"expirationYear": "2001"},
        {"cvv": "12"},
        {"cvv": "12345"},
        {"surprise": 1},
    ],
)
async def test_malformed_cards_are_422(shop: Shop, change: dict[str, Any]) -> None:
    response = await shop.call("POST", "/payment-instruments", {**CARD, **change})
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    del error["diagnosticsId"]  # random hex: it may contain any digits
    shown = json.dumps(error)
    assert CARD["cvv"] not in shown and CARD["number"] not in shown


async def test_tokenizing_needs_the_write_scope(client: Any, db: Any) -> None:
    from tests.integration.conftest import new_merchant

    reader = await new_merchant(db, scopes=("payment_instrument:read",))
    response = await client.post(
        "/payment-instruments", json=CARD, headers={"X-API-KEY": reader.key}
    )
    assert response.status_code == 403


async def test_a_token_of_one_merchant_is_useless_to_another(
    shop: Shop, client: Any, db: Any
) -> None:
    from tests.integration.conftest import new_merchant

    token = await shop.tokenize()
    other = Shop(client, (await new_merchant(db)).key)
    response = await other.call(
        "POST",
        "/payments",
        {"orderId": "o", "currencyCode": "EUR", "amount": 1, "paymentMethodToken": token},
    )
    assert response.status_code == 400
    assert response.json()["error"]["errorId"] == "PaymentMethodTokenNotFound"
