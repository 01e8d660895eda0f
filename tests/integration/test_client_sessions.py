"""Primer's client sessions: an order's details under a client token, and payments that take
them. Every 2xx body is checked against Primer's spec (Shop.call)."""

from __future__ import annotations

from typing import Any

from gateway import accounts
from tests.integration.conftest import SomeMerchant, new_merchant
from tests.integration.shop import VISA, Shop
from workflows import merchants

SESSION = {
    "orderId": "order-42",
    "currencyCode": "EUR",
    "amount": 4200,
    "customerId": "cus-7",
    "customer": {"emailAddress": "ada@example.com", "firstName": "Ada"},
    "metadata": {"channel": "web"},
    "order": {"countryCode": "DE", "lineItems": [{"itemId": "sku-1", "amount": 4200}]},
    "paymentMethod": {"vaultOnSuccess": False, "orderedAllowedCardNetworks": ["VISA"]},
}


async def open_session(shop: Shop, body: dict[str, Any] = SESSION) -> dict[str, Any]:
    answer = await shop.call("POST", "/client-session", body)
    assert answer.status_code == 200, answer.text
    return answer.json()  # type: ignore[no-any-return]


async def test_a_session_is_created_read_and_patched_field_by_field(shop: Shop) -> None:
    created = await open_session(shop)
    token = created["clientToken"]
    assert token.startswith("cst_") and created["clientTokenExpirationDate"]
    assert {k: created[k] for k in ("orderId", "amount", "currencyCode")} == {
        "orderId": "order-42",
        "amount": 4200,
        "currencyCode": "EUR",
    }
    read = (await shop.call("GET", f"/client-session?clientToken={token}")).json()
    assert "clientToken" not in read and read["customer"]["emailAddress"] == "ada@example.com"

    patched = await shop.call(
        "PATCH",
        "/client-session",
        {
            "clientToken": token,
            "amount": 5000,
            "customer": {"lastName": "Lovelace"},  # merged into the customer kept
            "order": {"lineItems": [{"itemId": "sku-2", "amount": 5000}]},  # replaced whole
            "metadata": None,  # cleared
        },
    )
    assert patched.status_code == 200, patched.text
    body = patched.json()
    assert body["amount"] == 5000 and body["orderId"] == "order-42"  # untouched fields stay
    assert body["customer"] == {
        "emailAddress": "ada@example.com",
        "firstName": "Ada",
        "lastName": "Lovelace",
    }
    assert body["order"] == {"lineItems": [{"itemId": "sku-2", "amount": 5000}]}
    assert "metadata" not in body
    assert body["paymentMethod"] == {
        "vaultOnSuccess": False,
        "orderedAllowedCardNetworks": ["VISA"],
    }


async def test_a_payment_with_a_sessions_card_takes_the_sessions_details(shop: Shop) -> None:
    token = (await open_session(shop))["clientToken"]
    card = await shop.tokenize(VISA, clientToken=token)
    created = await shop.call("POST", "/payments", {"paymentMethodToken": card})
    assert created.status_code == 200, created.text
    payment = created.json()
    assert (payment["orderId"], payment["amount"], payment["currencyCode"]) == (
        "order-42",
        4200,
        "EUR",
    )
    assert payment["customerId"] == "cus-7" and payment["metadata"] == {"channel": "web"}
    assert payment["status"] == "AUTHORIZED"
    # What the request gives wins over the session (another card of it: a card pays once).
    other_card = await shop.tokenize(VISA, clientToken=token)
    overridden = await shop.call(
        "POST",
        "/payments",
        {"paymentMethodToken": other_card, "amount": 100, "orderId": "order-43"},
    )
    assert (overridden.json()["amount"], overridden.json()["orderId"]) == (100, "order-43")
    # A card of no session needs the three itself, and says which is missing.
    plain = await shop.tokenize(VISA)
    missing = await shop.call("POST", "/payments", {"paymentMethodToken": plain, "amount": 100})
    assert missing.status_code == 422
    assert missing.json()["error"]["validationErrors"][0]["errors"][0]["path"] == "$.orderId"


async def test_a_token_of_another_merchant_or_expired_is_no_session(
    shop: Shop, merchant: SomeMerchant, db: Any
) -> None:
    token = (await open_session(shop))["clientToken"]
    other = Shop(shop.client, (await new_merchant(db)).key)
    for who in (other,):
        refused = await who.call("GET", f"/client-session?clientToken={token}")
        assert refused.status_code == 400
        assert refused.json()["error"]["errorId"] == "ClientSessionValidationError"
        assert (
            refused.json()["error"]["recoverySuggestion"] == "Please provide a valid client token."
        )
    await db.execute(
        "UPDATE client_sessions SET expires_at = now() - interval '1 second' "
        "WHERE merchant_id = %s",
        (merchant.id,),
    )
    for method, path, body in (
        ("GET", f"/client-session?clientToken={token}", None),
        ("PATCH", "/client-session", {"clientToken": token, "amount": 1}),
    ):
        expired = await shop.call(method, path, body)
        assert expired.json()["error"]["errorId"] == "ClientSessionValidationError"
    refused_card = await shop.call(
        "POST",
        "/payment-instruments",
        {
            "number": VISA,
            "expirationMonth": "12",
            "expirationYear": "2031",
            "cvv": "123",
            "clientToken": token,
        },
    )
    assert refused_card.json()["error"]["errorId"] == "ClientSessionValidationError"
    # Only its hash is kept.
    cur = await db.execute(
        "SELECT count(*) FROM client_sessions WHERE fields::text LIKE %s", (f"%{token}%",)
    )
    assert (await cur.fetchone())[0] == 0


async def test_bad_session_input_is_a_clear_error(shop: Shop) -> None:
    empty_key = await shop.call("POST", "/client-session", {"metadata": {"": "x"}})
    assert empty_key.status_code == 422
    card_in_metadata = await shop.call("POST", "/client-session", {"metadata": {"note": VISA}})
    assert card_in_metadata.status_code == 422
    options = await shop.call(
        "PATCH",
        "/client-session",
        {
            "clientToken": (await open_session(shop))["clientToken"],
            "paymentMethod": {"options": {}},
        },
    )
    assert options.status_code == 422


async def test_a_sandbox_keys_sessions_are_not_a_live_keys(
    shop: Shop, merchant: SomeMerchant, db: Any
) -> None:
    found = await merchants.find_merchant(db, merchant.name)
    live_key = await accounts.create_key(db, kind="merchant", merchant=found, mode="live")
    live = Shop(shop.client, live_key.secret)
    sandbox_token = (await open_session(shop))["clientToken"]
    for method, path, body in (
        ("GET", f"/client-session?clientToken={sandbox_token}", None),
        ("PATCH", "/client-session", {"clientToken": sandbox_token, "amount": 1}),
    ):
        refused = await live.call(method, path, body)
        assert refused.json()["error"]["errorId"] == "ClientSessionValidationError"
    live_token = (await open_session(live))["clientToken"]
    refused = await shop.call(
        "POST",
        "/payment-instruments",
        {
            "number": VISA,
            "expirationMonth": "12",
            "expirationYear": "2031",
            "cvv": "123",
            "clientToken": live_token,
        },
    )
    assert refused.json()["error"]["errorId"] == "ClientSessionValidationError"


async def test_an_expired_sessions_details_are_not_taken_and_options_hold_no_card(
    shop: Shop, merchant: SomeMerchant, db: Any
) -> None:
    token = (await open_session(shop))["clientToken"]
    card = await shop.tokenize(VISA, clientToken=token)
    await db.execute(
        "UPDATE client_sessions SET expires_at = now() WHERE merchant_id = %s", (merchant.id,)
    )
    stale = await shop.call("POST", "/payments", {"paymentMethodToken": card})
    assert stale.status_code == 422  # the order's details are no longer the session's to give
    card_in_options = await shop.call(
        "POST", "/client-session", {"paymentMethod": {"options": {"note": VISA}}}
    )
    assert card_in_options.status_code == 422
