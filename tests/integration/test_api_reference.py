"""GET /openapi.json and GET /docs: the document every surface is described by, and a reference
page that reads offline; the operator API's answers are what the document says."""

from __future__ import annotations

import re
import uuid
from typing import Any

import httpx
import msgspec

from gateway import accounts
from gateway.api import reference
from gateway.settings import Settings
from tests.contract import own_contract
from tests.integration.conftest import GatewayFactory, Running, SomeMerchant
from workflows.credentials import new_master_key


async def test_the_document_describes_every_surface_and_is_public(running: Running) -> None:
    answer = await running.client.get("/openapi.json")
    assert answer.status_code == 200
    assert answer.headers["content-type"] == "application/json"
    document = answer.json()
    assert document == reference.openapi()
    assert {tag["name"] for tag in document["tags"]} == {
        "Primer Payments API v2.4",
        "Operator API",
        "Medusa admin Payments API",
    }
    capture = document["paths"]["/payments/{id}/capture"]["post"]
    assert capture["requestBody"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/PaymentCaptureAPIRequest"
    }
    assert [p["name"] for p in capture["parameters"]] == [
        "id",
        "X-Idempotency-Key",
        "X-API-VERSION",
    ]
    assert "/admin/payments/{id}/refund" in document["paths"]
    assert "/admin/workflows/{id}/replay" in document["paths"]
    # The fields a merchant must send are the Struct's: the capture's are all optional, a
    # refund's reason is one of Medusa's five.
    schemas = document["components"]["schemas"]
    assert schemas["PaymentCaptureAPIRequest"]["required"] == []
    reasons = schemas["AdminPostPaymentRefundsReq"]["properties"]["reason"]["enum"]
    assert sorted(reasons) == ["claim", "discount", "other", "return", "swap"]


async def test_the_reference_page_lists_every_operation_and_needs_nothing_from_outside(
    running: Running,
) -> None:
    answer = await running.client.get("/docs")
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/html")
    assert answer.headers["content-security-policy"].startswith("default-src 'none'")
    page = answer.text
    for methods in reference.openapi()["paths"].values():
        for operation in methods.values():
            assert f'id="{operation["operationId"]}"' in page
    assert "<script" not in page
    # Every link and resource is on the page or the gateway itself.
    assert not re.findall(r'(?:src|href)="(?:https?:)?//', page)


async def test_operator_answers_and_errors_are_what_the_document_says(
    gateway: GatewayFactory, settings: Settings, merchant: SomeMerchant, db: Any
) -> None:
    operator = {"X-API-KEY": (await accounts.create_key(db, kind="operator")).secret}
    contract = own_contract()
    before = contract.checked
    name = merchant.name
    hook = {"url": "http://127.0.0.1:9/hook"}

    # Without a master key, an endpoint cannot be added: a clear 503, not a 500.
    unkeyed = await gateway(settings)
    refused = await unkeyed.client.post(
        f"/admin/webhooks/{name}/endpoints", json=hook, headers=operator
    )
    assert refused.status_code == 503
    assert refused.json()["error"]["errorId"] == "SecretKeyNotConfigured"
    contract.validate("POST", f"/admin/webhooks/{name}/endpoints", 503, refused.json())

    running = await gateway(msgspec.structs.replace(settings, secret_key=new_master_key()))

    async def call(method: str, path: str, **kw: Any) -> httpx.Response:
        answer = await running.client.request(method, path, headers=operator, **kw)
        contract.validate(method, path, answer.status_code, answer.json())
        return answer

    assert (await call("GET", "/admin/workflows")).status_code == 200
    assert (await call("GET", "/admin/workflows?state=sleeping")).status_code == 422
    assert (await call("GET", "/admin/workflows/nope")).status_code == 404
    assert (await call("GET", f"/admin/routing/{name}")).status_code == 200
    rules = {"rules": [{"name": "all", "accounts": ["SANDBOX"]}]}
    assert (await call("PUT", f"/admin/routing/{name}", json=rules)).status_code in (200, 422)
    assert (await call("GET", f"/admin/routing/{name}/history")).status_code == 200
    explain = {"currencyCode": "EUR", "amount": 100}
    assert (await call("POST", f"/admin/routing/{name}/explain", json=explain)).status_code == 200
    added = await call("POST", f"/admin/webhooks/{name}/endpoints", json=hook)
    assert added.status_code == 201 and added.json()["secret"]
    endpoint = added.json()["id"]
    listed = await call("GET", f"/admin/webhooks/{name}/endpoints")
    assert "secret" not in listed.json()["data"][0]
    disabled = await call("POST", f"/admin/webhooks/{name}/endpoints/{endpoint}/disable")
    assert disabled.json()["state"] == "disabled"
    rotated = await call("POST", f"/admin/webhooks/{name}/endpoints/{endpoint}/rotate-secret")
    assert rotated.json()["id"] == endpoint
    deliveries = await call("GET", f"/admin/webhooks/{name}/deliveries?limit=5&state=dead")
    assert deliveries.json() == {"data": []}
    assert (await call("GET", f"/admin/webhooks/{name}/deliveries?limit=0")).status_code == 422
    attempts = await call("GET", f"/admin/webhooks/{name}/deliveries/{uuid.uuid4()}/{endpoint}")
    assert attempts.json() == {"data": []}
    redelivered = await call(
        "POST", f"/admin/webhooks/{name}/redeliver", json={"eventId": str(uuid.uuid4())}
    )
    assert redelivered.json() == {"redelivered": 0}
    assert contract.checked - before == 16
