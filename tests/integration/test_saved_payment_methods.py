"""Primer's saved (vaulted) payment methods: vault a card for a customer, list, make default,
delete. Every 2xx body is checked against Primer's spec (Shop.call)."""

from __future__ import annotations

import asyncio
from typing import Any

from tests.integration.conftest import new_merchant
from tests.integration.shop import MASTERCARD, VISA, Shop


async def vault(shop: Shop, token: str, customer: str = "cus-1") -> dict[str, Any]:
    answer = await shop.call(
        "POST", f"/payment-instruments/{token}/vault", {"customerId": customer}
    )
    assert answer.status_code == 200, answer.text
    return answer.json()  # type: ignore[no-any-return]


async def test_a_customers_cards_are_saved_listed_defaulted_and_deleted(shop: Shop) -> None:
    visa = await vault(shop, await shop.tokenize(VISA))
    assert (visa["tokenType"], visa["customerId"], visa["default"]) == ("MULTI_USE", "cus-1", False)
    assert visa["paymentMethodData"]["last4Digits"] == "1111"
    first = await shop.tokenize(MASTERCARD)
    mastercard = await vault(shop, first)
    assert mastercard["token"] != first  # a token of its own
    assert (await vault(shop, first))["token"] == mastercard["token"]  # saved once
    assert (await vault(shop, mastercard["token"]))["token"] == mastercard["token"]

    listed = (await shop.call("GET", "/payment-instruments?customer_id=cus-1")).json()["data"]
    assert [m["token"] for m in listed] == [visa["token"], mastercard["token"]]
    made = await shop.call("POST", f"/payment-instruments/{visa['token']}/default")
    assert made.json()["default"] is True
    made = await shop.call("POST", f"/payment-instruments/{mastercard['token']}/default")
    listed = (await shop.call("GET", "/payment-instruments?customer_id=cus-1")).json()["data"]
    assert [(m["token"], m["default"]) for m in listed] == [
        (visa["token"], False),
        (mastercard["token"], True),
    ]

    # A saved card pays again and again.
    for amount in (100, 200):
        paid = await shop.call(
            "POST",
            "/payments",
            {
                "orderId": "o",
                "currencyCode": "EUR",
                "amount": amount,
                "paymentMethodToken": visa["token"],
            },
        )
        assert paid.json()["status"] == "AUTHORIZED"

    deleted = await shop.call("DELETE", f"/payment-instruments/{visa['token']}")
    assert deleted.json()["deleted"] is True and deleted.json()["deletedAt"]
    listed = (await shop.call("GET", "/payment-instruments?customer_id=cus-1")).json()["data"]
    assert [m["token"] for m in listed] == [mastercard["token"]]
    refused = await shop.call(
        "POST",
        "/payments",
        {"orderId": "o", "currencyCode": "EUR", "amount": 100, "paymentMethodToken": visa["token"]},
    )
    assert refused.json()["error"]["errorId"] == "PaymentMethodTokenNotFound"
    again = await shop.call("DELETE", f"/payment-instruments/{visa['token']}")
    assert (again.status_code, again.json()["error"]["errorId"]) == (
        400,
        "InvalidPaymentInstrumentToken",
    )


async def test_another_merchants_cards_are_not_seen_nor_touched(shop: Shop, db: Any) -> None:
    saved = await vault(shop, await shop.tokenize(VISA), "cus-shared")
    other = Shop(shop.client, (await new_merchant(db)).key)
    listed = (await other.call("GET", "/payment-instruments?customer_id=cus-shared")).json()
    assert listed == {"data": []}
    for method, path in (
        ("DELETE", f"/payment-instruments/{saved['token']}"),
        ("POST", f"/payment-instruments/{saved['token']}/default"),
    ):
        refused = await other.call(method, path)
        assert refused.json()["error"]["errorId"] == "InvalidPaymentInstrumentToken"
    stolen = await other.call(
        "POST", f"/payment-instruments/{saved['token']}/vault", {"customerId": "cus-x"}
    )
    assert stolen.json()["error"]["errorId"] == "InvalidPaymentInstrumentToken"
    missing = await shop.call("GET", "/payment-instruments")
    assert missing.status_code == 422
    unknown = await shop.call("POST", "/payment-instruments/tok_nothing/default")
    assert unknown.json()["error"]["errorId"] == "InvalidPaymentInstrumentToken"


async def test_defaults_at_once_and_odd_tokens_and_a_second_customer(shop: Shop) -> None:
    first = (await vault(shop, await shop.tokenize(VISA), "cus-race"))["token"]
    second = (await vault(shop, await shop.tokenize(MASTERCARD), "cus-race"))["token"]
    for _ in range(5):
        answers = await asyncio.gather(
            *(shop.call("POST", f"/payment-instruments/{t}/default") for t in (first, second))
        )
        assert [a.status_code for a in answers] == [200, 200]
    listed = (await shop.call("GET", "/payment-instruments?customer_id=cus-race")).json()["data"]
    assert sum(m["default"] for m in listed) == 1
    nul = await shop.call("POST", "/payment-instruments/tok%00x/vault", {"customerId": "c"})
    assert nul.json()["error"]["errorId"] == "InvalidPaymentInstrumentToken"
    # A card saved for one customer is not quietly another's.
    source = await shop.tokenize(VISA)
    await vault(shop, source, "cus-a")
    other = await shop.call("POST", f"/payment-instruments/{source}/vault", {"customerId": "cus-b"})
    assert other.json()["error"]["errorId"] == "InvalidPaymentInstrumentToken"
    # Deleted, it can be saved again (a new token).
    saved = await vault(shop, source, "cus-a")
    await shop.call("DELETE", f"/payment-instruments/{saved['token']}")
    again = await vault(shop, source, "cus-b")
    assert again["token"] != saved["token"] and again["customerId"] == "cus-b"


async def test_a_card_not_saved_pays_once_even_asked_twice_at_once(shop: Shop, db: Any) -> None:
    token = await shop.tokenize(VISA)
    body = {"orderId": "o", "currencyCode": "EUR", "amount": 100, "paymentMethodToken": token}
    answers = await asyncio.gather(*(shop.call("POST", "/payments", body) for _ in range(4)))
    assert sorted(a.status_code for a in answers) == [200, 400, 400, 400]
    refused = next(a for a in answers if a.status_code == 400).json()["error"]
    assert (
        refused["errorId"] == "PaymentMethodTokenNotFound"
        and "single-use" in refused["description"]
    )
    cur = await db.execute(
        "SELECT count(*) FROM payments WHERE payment_method_token = %s", (token,)
    )
    assert (await cur.fetchone())[0] == 1
    # Saved for the customer afterwards, it pays again (its own, multi-use token).
    saved = await vault(shop, token)
    again = await shop.call("POST", "/payments", {**body, "paymentMethodToken": saved["token"]})
    assert again.json()["status"] == "AUTHORIZED"
