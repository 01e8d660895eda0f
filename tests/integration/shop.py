"""A merchant's backend, as the tests drive the Payments API: every call over HTTP, and every 2xx
body checked against Primer's response schema when the spec is at hand."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import httpx

from tests.contract import RESPONSE_SCHEMAS, own_contract, primer_contract

VISA = "4111111111111111"
VISA_CREDIT = "4242424242424242"
MASTERCARD = "5555555555554444"
DECLINED_VISA = "4000000000000002"
FAILED_VISA = "4000000000000010"


def _template(path: str) -> str:
    path = path.split("?", 1)[0]
    path = re.sub(r"^/payments/[^/]+", "/payments/{id}", path)
    return re.sub(r"^/payment-instruments/[^/]+", "/payment-instruments/{token}", path)


@dataclass
class Shop:
    client: httpx.AsyncClient
    key: str

    async def call(
        self, method: str, path: str, body: Any = None, *, key: str | None = None, **kw: Any
    ) -> httpx.Response:
        headers = {"X-API-KEY": self.key, **kw.pop("headers", {})}
        if key is not None:
            headers["X-Idempotency-Key"] = key
        response = await self.client.request(method, path, json=body, headers=headers, **kw)
        contract = primer_contract()
        schema = RESPONSE_SCHEMAS.get((method, _template(path)))
        if schema and 200 <= response.status_code < 300:
            contract.validate(schema, response.json())
        if response.headers.get("content-type", "").startswith("application/json"):
            own_contract().validate(method, path, response.status_code, response.json())
        return response

    async def tokenize(self, number: str = VISA, **fields: Any) -> str:
        card = {
            "number": number,
            "expirationMonth": "12",
            "expirationYear": "2031",
            "cvv": "123",
            "cardholderName": "Ada Lovelace",
            **fields,
        }
        response = await self.call("POST", "/payment-instruments", card)
        assert response.status_code == 200, response.text
        return str(response.json()["token"])

    async def create(
        self,
        amount: int = 1000,
        *,
        card: str = VISA,
        currency: str = "EUR",
        metadata: dict[str, Any] | None = None,
        key: str | None = None,
        expect: int = 200,
        **extra: Any,
    ) -> dict[str, Any]:
        body = {
            "orderId": extra.pop("orderId", "order-1"),
            "currencyCode": currency,
            "amount": amount,
            "paymentMethodToken": await self.tokenize(card),
            **extra,
        }
        if metadata is not None:
            body["metadata"] = metadata
        response = await self.call("POST", "/payments", body, key=key)
        assert response.status_code == expect, response.text
        return response.json()  # type: ignore[no-any-return]

    async def capture(self, payment_id: str, key: str | None = None, **body: Any) -> httpx.Response:
        return await self.call("POST", f"/payments/{payment_id}/capture", body, key=key)

    async def cancel(self, payment_id: str, key: str | None = None, **body: Any) -> httpx.Response:
        return await self.call("POST", f"/payments/{payment_id}/cancel", body, key=key)

    async def refund(self, payment_id: str, key: str | None = None, **body: Any) -> httpx.Response:
        return await self.call("POST", f"/payments/{payment_id}/refund", body, key=key)

    async def get(self, payment_id: str, expand: bool = True) -> dict[str, Any]:
        query = "?expand=transactions.events" if expand else ""
        response = await self.call("GET", f"/payments/{payment_id}{query}")
        assert response.status_code == 200, response.text
        return response.json()  # type: ignore[no-any-return]


def captured_by_events(payment: dict[str, Any]) -> int:
    return sum(
        event["amount"]
        for transaction in payment["transactions"]
        for event in transaction.get("events", [])
        if event["type"] == "CAPTURE_SUCCEEDED"
    )


def refunded_by_transactions(payment: dict[str, Any]) -> int:
    return sum(
        t["amount"]
        for t in payment["transactions"]
        if t["type"] == "REFUND" and t["status"] == "SETTLED"
    )


def assert_figures_add_up(payment: dict[str, Any]) -> None:
    """The payment's figures equal the sum of its transactions (and stay within its limits)."""
    processor = payment["processor"]
    assert processor["amountCaptured"] == captured_by_events(payment)
    assert processor["amountRefunded"] == refunded_by_transactions(payment)
    assert 0 <= processor["amountRefunded"] <= processor["amountCaptured"] <= payment["amount"]
