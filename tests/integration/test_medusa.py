"""Medusa's admin Payments API over the gateway, driven as Medusa's JS client drives it:
`x-medusa-access-token`, an `Idempotency-Key` (a uuid4) on every POST, no body on a capture.
Every 2xx body is checked against contracts/medusa/admin-payments.openapi.yml."""

from __future__ import annotations

import asyncio
import json
import uuid
from typing import Any

import httpx
import pytest

from gateway import accounts
from tests.contract import medusa_contract, own_contract
from tests.integration.conftest import Running, SomeMerchant, new_merchant
from tests.integration.shop import Shop, assert_figures_add_up

SCHEMAS = {"GET": "AdminPaymentRes", "capture": "AdminPaymentRes", "refund": "AdminRefundRes"}


class MedusaAdmin:
    """What @medusajs/medusa-js sends: the admin payments calls, with its headers."""

    def __init__(self, client: httpx.AsyncClient, token: str) -> None:
        self.client, self.token = client, token

    def _headers(self, key: str | None) -> dict[str, str]:
        headers = {"x-medusa-access-token": self.token, "Accept": "application/json"}
        if key is not None:
            headers["Idempotency-Key"] = key
        return headers

    async def retrieve(self, payment_id: str) -> httpx.Response:
        answer = await self.client.get(f"/admin/payments/{payment_id}", headers=self._headers(None))
        return checked(answer, "GET")

    async def capture(self, payment_id: str, key: str | None = "new") -> httpx.Response:
        key = str(uuid.uuid4()) if key == "new" else key
        # capturePayment(id) sends no body at all.
        answer = await self.client.post(
            f"/admin/payments/{payment_id}/capture", headers=self._headers(key)
        )
        return checked(answer, "capture")

    async def refund(
        self, payment_id: str, body: dict[str, Any], key: str | None = "new"
    ) -> httpx.Response:
        key = str(uuid.uuid4()) if key == "new" else key
        headers = {**self._headers(key), "Content-Type": "application/json"}
        answer = await self.client.post(
            f"/admin/payments/{payment_id}/refund", content=json.dumps(body), headers=headers
        )
        return checked(answer, "refund")


def checked(answer: httpx.Response, operation: str) -> httpx.Response:
    request = answer.request
    own_contract().validate(request.method, request.url.path, answer.status_code, answer.json())
    if 200 <= answer.status_code < 300:
        medusa_contract().validate(SCHEMAS[operation], answer.json())
    else:
        assert_medusa_error(answer)
    return answer


def assert_medusa_error(answer: httpx.Response, status: int | None = None, kind: str = "") -> None:
    """Medusa's shape, never Primer's envelope, never a stack trace."""
    body = answer.json()
    assert set(body) <= {"type", "message", "code"} and body["type"] and body["message"], body
    assert "Traceback" not in answer.text
    if status is not None:
        assert answer.status_code == status, answer.text
    if kind:
        assert body["type"] == kind, body


@pytest.fixture
def shop(running: Running, merchant: SomeMerchant) -> Shop:
    return Shop(running.client, merchant.key)


@pytest.fixture
def admin(running: Running, merchant: SomeMerchant) -> MedusaAdmin:
    return MedusaAdmin(running.client, merchant.key)


async def sandbox_operations(db: Any, payment_id: str, verb: str) -> int:
    cur = await db.execute(
        "SELECT count(*) FROM sandbox_operations WHERE reference = %s AND verb = %s",
        (payment_id, verb),
    )
    row = await cur.fetchone()
    return int(row[0])


async def test_a_medusa_admin_reads_captures_and_refunds_a_payment(
    shop: Shop, admin: MedusaAdmin, db: Any
) -> None:
    payment = await shop.create(1500, currency="USD", metadata={"cart_id": "cart_1"})
    read = (await admin.retrieve(payment["id"])).json()["payment"]
    assert read["id"] == payment["id"] and read["amount"] == 1500
    assert (read["currency_code"], read["provider_id"], read["cart_id"]) == (
        "usd",
        "sandbox",
        "cart_1",
    )
    assert read["captured_at"] is None and read["amount_refunded"] == 0
    assert "4111" not in json.dumps(read)  # no card data in `data`

    captured = await admin.capture(payment["id"])
    assert captured.status_code == 200, captured.text
    after = captured.json()["payment"]
    assert after["captured_at"] is not None and after["data"]["amount_captured"] == 1500
    assert after["data"]["status"] == "SETTLED"

    refunded = await admin.refund(payment["id"], {"amount": 400, "reason": "return", "note": "box"})
    assert refunded.status_code == 200, refunded.text
    refund = refunded.json()["refund"]
    assert (refund["amount"], refund["reason"], refund["note"]) == (400, "return", "box")
    assert refund["payment_id"] == payment["id"] and refund["order_id"] == payment["orderId"]
    assert (await admin.retrieve(payment["id"])).json()["payment"]["amount_refunded"] == 400
    assert await sandbox_operations(db, payment["id"], "refund") == 1
    assert_figures_add_up(await shop.get(payment["id"]))


async def test_tokens_are_read_as_medusas_clients_send_them(
    running: Running, shop: Shop, merchant: SomeMerchant, db: Any
) -> None:
    payment = await shop.create(1000)
    path = f"/admin/payments/{payment['id']}"
    bearer = await running.client.get(path, headers={"Authorization": f"Bearer {merchant.key}"})
    assert bearer.status_code == 200
    missing = await running.client.get(path)
    assert_medusa_error(missing, 401, "unauthorized")
    wrong = await running.client.get(path, headers={"x-medusa-access-token": "gw_nope"})
    assert_medusa_error(wrong, 401, "unauthorized")
    operator = await accounts.create_key(db, kind="operator")
    as_operator = await running.client.get(path, headers={"x-medusa-access-token": operator.secret})
    assert_medusa_error(as_operator, 401, "unauthorized")
    # A key of another merchant: the payment does not exist for it.
    other = await new_merchant(db)
    foreign = await MedusaAdmin(running.client, other.key).retrieve(payment["id"])
    assert_medusa_error(foreign, 404, "not_found")
    assert_medusa_error(await MedusaAdmin(running.client, other.key).capture(payment["id"]), 404)
    # A key without the capture scope.
    reader = await new_merchant(db, scopes=("transactions:retrieve",))
    assert_medusa_error(
        await MedusaAdmin(running.client, reader.key).capture(payment["id"]), 400, "not_allowed"
    )
    # The operator API beside it still answers operator keys, in its own shape.
    workflows = await running.client.get("/admin/workflows", headers={"X-API-KEY": operator.secret})
    assert workflows.status_code == 200


async def test_refusals_are_in_medusas_shape_and_change_nothing(
    shop: Shop, admin: MedusaAdmin, db: Any
) -> None:
    assert_medusa_error(await admin.retrieve("pay_nothing"), 404, "not_found")
    assert_medusa_error(await admin.capture("pay_nothing"), 404, "not_found")
    payment = await shop.create(1000)
    assert (await admin.capture(payment["id"])).status_code == 200
    assert_medusa_error(await admin.capture(payment["id"]), 400, "not_allowed")  # nothing left
    over = await admin.refund(payment["id"], {"amount": 1001, "reason": "return"})
    assert_medusa_error(over, 400, "invalid_data")
    for body in (
        {"amount": "10", "reason": "return"},
        {"amount": 10, "reason": "because"},
        {"amount": 0, "reason": "other"},
        {"reason": "other"},
        {"amount": 10, "reason": "other", "extra": 1},
    ):
        assert_medusa_error(await admin.refund(payment["id"], body), 400, "invalid_data")
    big = await admin.client.post(
        f"/admin/payments/{payment['id']}/refund",
        content=b'{"amount": 1, "reason": "other", "note": "' + b"x" * 70_000 + b'"}',
        headers={"x-medusa-access-token": admin.token, "Content-Type": "application/json"},
    )
    assert_medusa_error(big, 413, "invalid_data")
    twice = await admin.client.get(
        f"/admin/payments/{payment['id']}",
        headers=[("x-medusa-access-token", admin.token), ("x-medusa-access-token", admin.token)],
    )
    assert_medusa_error(twice, 400, "invalid_data")
    assert await sandbox_operations(db, payment["id"], "refund") == 0
    assert (await admin.retrieve(payment["id"])).json()["payment"]["amount_refunded"] == 0


async def test_a_repeated_idempotency_key_gets_the_first_answer_and_moves_no_money(
    shop: Shop, admin: MedusaAdmin, db: Any
) -> None:
    payment = await shop.create(1000)
    key = str(uuid.uuid4())
    first_capture = await admin.capture(payment["id"], key=key)
    again = await admin.capture(payment["id"], key=key)
    assert (again.status_code, again.content) == (200, first_capture.content)

    refund_key = str(uuid.uuid4())
    body = {"amount": 300, "reason": "return", "note": "once"}
    first = await admin.refund(payment["id"], body, key=refund_key)
    assert first.status_code == 200
    await admin.refund(payment["id"], {"amount": 100, "reason": "other"})  # the payment moves on
    repeat = await admin.refund(payment["id"], body, key=refund_key)
    assert (repeat.status_code, repeat.content) == (200, first.content)
    # The capture's repeat still answers what the capture answered then.
    late = await admin.capture(payment["id"], key=key)
    assert late.content == first_capture.content
    # The key with another body, or on another payment, is refused.
    other_body = await admin.refund(
        payment["id"], {"amount": 301, "reason": "return"}, key=refund_key
    )
    assert_medusa_error(other_body, 422, "duplicate_error")
    elsewhere = await shop.create(1000)
    await shop.capture(elsewhere["id"])
    assert_medusa_error(await admin.refund(elsewhere["id"], body, key=refund_key), 422)
    assert await sandbox_operations(db, payment["id"], "refund") == 2
    assert await sandbox_operations(db, elsewhere["id"], "refund") == 0
    assert (await admin.retrieve(payment["id"])).json()["payment"]["amount_refunded"] == 400


async def test_fifty_concurrent_identical_refunds_with_one_key_refund_once(
    shop: Shop, admin: MedusaAdmin, db: Any
) -> None:
    payment = await shop.create(1000)
    await shop.capture(payment["id"])
    key, body = str(uuid.uuid4()), {"amount": 250, "reason": "return"}
    answers = await asyncio.gather(*(admin.refund(payment["id"], body, key=key) for _ in range(50)))
    statuses = sorted({a.status_code for a in answers})
    assert set(statuses) <= {200, 409}, statuses
    assert len({a.content for a in answers if a.status_code == 200}) == 1
    for answer in answers:
        if answer.status_code == 409:  # the client retries these, same key
            assert_medusa_error(answer, 409, "conflict")
    settled = await admin.refund(payment["id"], body, key=key)
    assert settled.status_code == 200
    assert await sandbox_operations(db, payment["id"], "refund") == 1
    assert (await admin.retrieve(payment["id"])).json()["payment"]["amount_refunded"] == 250


async def test_both_surfaces_keep_one_truth(shop: Shop, admin: MedusaAdmin, db: Any) -> None:
    # Capture through Medusa, refund through Primer...
    one = await shop.create(1000)
    assert (await admin.capture(one["id"])).status_code == 200
    assert (await shop.refund(one["id"], amount=600)).status_code == 200
    assert (await admin.retrieve(one["id"])).json()["payment"]["amount_refunded"] == 600
    # ...and the rest cannot be refunded twice, whichever surface tries.
    assert_medusa_error(await admin.refund(one["id"], {"amount": 401, "reason": "other"}), 400)
    assert (await shop.refund(one["id"], amount=401)).status_code == 422
    # Capture through Primer, refund through Medusa, and both at once for the last of it.
    two = await shop.create(1000)
    await shop.capture(two["id"])
    medusa, primer = await asyncio.gather(
        admin.refund(two["id"], {"amount": 700, "reason": "return"}),
        shop.refund(two["id"], amount=700),
    )
    assert sorted([medusa.status_code, primer.status_code]) in ([200, 422], [200, 400])
    for payment_id in (one["id"], two["id"]):
        assert_figures_add_up(await shop.get(payment_id))
    assert (await shop.get(two["id"]))["processor"]["amountRefunded"] == 700


async def test_a_refund_whose_outcome_is_unknown_is_a_conflict_until_it_is_known(
    running: Running, shop: Shop, admin: MedusaAdmin, db: Any
) -> None:
    payment = await shop.create(
        1000, metadata={"sandbox_fault_on": "refund", "sandbox_timeouts": 3}
    )
    await shop.capture(payment["id"])
    key, body = str(uuid.uuid4()), {"amount": 500, "reason": "return"}
    unknown = await admin.refund(payment["id"], body, key=key)
    assert_medusa_error(unknown, 409, "conflict")  # Medusa's client retries it, same key
    for _ in range(50):  # a bound on passes, not a clock
        await running.services.engine.recovery.recover_due()
        retried = await admin.refund(payment["id"], body, key=key)
        if retried.status_code == 200:
            break
        await asyncio.sleep(0.05)
    assert retried.status_code == 200, retried.text
    assert retried.json()["refund"]["amount"] == 500
    assert await sandbox_operations(db, payment["id"], "refund") == 1


async def test_what_the_review_found(
    running: Running, shop: Shop, admin: MedusaAdmin, db: Any
) -> None:
    payment = await shop.create(1000)
    await shop.capture(payment["id"], amount=300, final=False)
    # A card number in the note is refused, not stored.
    carded = await admin.refund(
        payment["id"], {"amount": 1, "reason": "other", "note": "4111 1111 1111 1111"}
    )
    assert_medusa_error(carded, 400, "invalid_data")
    # A refused keyed request is answered the same when repeated, even once the payment changed.
    key, body = str(uuid.uuid4()), {"amount": 500, "reason": "return"}
    refused = await admin.refund(payment["id"], body, key=key)
    assert_medusa_error(refused, 400, "invalid_data")
    await shop.capture(payment["id"], amount=700)
    repeat = await admin.refund(payment["id"], body, key=key)
    assert (repeat.status_code, repeat.content) == (400, refused.content)
    assert await sandbox_operations(db, payment["id"], "refund") == 0
    # The bare path and a bad key are Medusa's errors too.
    bare = await running.client.get(
        "/admin/payments", headers={"x-medusa-access-token": admin.token}
    )
    assert_medusa_error(bare, 404, "not_found")
    bad_key = await admin.refund(payment["id"], body, key="k" * 300)
    assert_medusa_error(bad_key, 400, "invalid_data")
    assert "X-Idempotency-Key" not in bad_key.text


async def test_a_refund_without_a_key_is_not_sent_again_while_another_is_unknown(
    running: Running, shop: Shop, admin: MedusaAdmin, db: Any
) -> None:
    payment = await shop.create(
        1000, metadata={"sandbox_fault_on": "refund", "sandbox_timeouts": 3}
    )
    await shop.capture(payment["id"])
    body = {"amount": 400, "reason": "return"}
    unknown = await admin.refund(payment["id"], body, key=None)  # medusa-js, maxRetries 0
    assert_medusa_error(unknown, 409, "conflict")
    assert "do not send it again" in unknown.json()["message"]
    clicked_again = await admin.refund(payment["id"], body, key=None)
    assert_medusa_error(clicked_again, 409, "conflict")
    assert await sandbox_operations(db, payment["id"], "refund") == 1
    for _ in range(50):  # a bound on passes, not a clock
        await running.services.engine.recovery.recover_due()
        if (await admin.retrieve(payment["id"])).json()["payment"]["amount_refunded"] == 400:
            break
    assert (await admin.retrieve(payment["id"])).json()["payment"]["amount_refunded"] == 400


async def test_a_capture_that_settles_later_is_answered_as_accepted(
    running: Running, shop: Shop, admin: MedusaAdmin
) -> None:
    payment = await shop.create(1000, metadata={"sandbox_async_settlement": True})
    key = str(uuid.uuid4())
    accepted = await admin.capture(payment["id"], key=key)
    assert accepted.status_code == 200
    assert accepted.json()["payment"]["data"]["status"] == "SETTLING"
    again = await admin.capture(payment["id"], key=key)
    assert again.status_code == 200
