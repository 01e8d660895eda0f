"""Webhooks out: a real local receiver hears of every change, signed, at least once, in order."""

from __future__ import annotations

import asyncio
import functools
import re
import uuid
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from typing import Any

import msgspec
import pytest
import yaml

from gateway import accounts
from gateway.settings import Settings
from tests.conftest import REPO_ROOT, run_gateway
from tests.contract import PrimerContract
from tests.integration.conftest import GatewayFactory, Running, SomeMerchant
from tests.integration.shop import Shop
from tests.integration.webhook_receiver import Receiver, serve
from workflows import notifications
from workflows.credentials import new_master_key
from workflows.runner import Runner

WEBHOOKS_SPEC = REPO_ROOT / "contracts" / "primer" / "webhooks-v2.4.openapi.yml"
PAYLOADS = {
    "PAYMENT.STATUS": "PaymentStatusWebhookPayload",
    "PAYMENT.REFUND": "PaymentRefundWebhookPayload",
}


@functools.cache
def webhooks_contract() -> PrimerContract:
    return PrimerContract(yaml.safe_load(WEBHOOKS_SPEC.read_text()), name="primer-webhooks")


@functools.cache
def documented_verify() -> Callable[[bytes, dict[str, str], str], bool]:
    """The README's recipe for a receiver, run as written."""
    readme = (REPO_ROOT / "README.md").read_text()
    found = re.search(r"<!-- webhook-verify-recipe -->\n```python\n(.*?)```", readme, re.S)
    assert found, "the README's verification recipe is missing"
    assert len(found[1].strip().splitlines()) <= 10
    scope: dict[str, Any] = {}
    exec(found[1], scope)
    return scope["verify"]  # type: ignore[no-any-return]


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    yield from serve()


@pytest.fixture
async def keyed(gateway: GatewayFactory, settings: Settings) -> tuple[Running, Settings]:
    own = msgspec.structs.replace(
        settings,
        secret_key=new_master_key(),
        webhook_retry_base_seconds=30,
        webhook_retry_max_seconds=3600,
        webhook_give_up_seconds=86400,
    )
    return await gateway(own), own


async def endpoint_of(running: Running, merchant: SomeMerchant, url: str) -> tuple[uuid.UUID, str]:
    async with running.services.engine.db.connection() as conn:
        endpoint, secret = await notifications.add_endpoint(
            conn,
            running.services.box,
            merchant_id=merchant.id,
            mode="sandbox",
            url=url,
            description="orders service",
        )
    return endpoint.id, secret


async def deliver(running: Running, merchant: SomeMerchant | None = None) -> int:
    """One delivery pass; with `merchant`, its pending deliveries are made due first (no test
    waits for a schedule)."""
    if merchant is not None:
        async with running.services.engine.db.connection() as conn:
            await conn.execute(
                "UPDATE webhook_deliveries SET next_attempt_at = now() "
                "WHERE state = 'pending' AND merchant_id = %s",
                (merchant.id,),
            )
    return await running.services.webhooks.deliver_due()


async def pending(running: Running, merchant: SomeMerchant) -> int:
    async with running.services.engine.db.connection() as conn:
        cur = await conn.execute(
            "SELECT count(*) FROM webhook_deliveries WHERE state = 'pending' AND merchant_id = %s",
            (merchant.id,),
        )
        row = await cur.fetchone()
    assert row is not None
    return int(row[0])


async def deliver_all(running: Running, merchant: SomeMerchant) -> None:
    """Passes until the merchant has nothing pending (bounded: a test never loops for ever)."""
    for _ in range(50):
        await deliver(running, merchant)
        if not await pending(running, merchant):
            return
    pytest.fail("deliveries still pending after 50 passes")


def checked(received: Any, secret: str) -> dict[str, Any]:
    assert documented_verify()(received.body, received.headers, secret)
    payload = received.json
    webhooks_contract().validate(PAYLOADS[payload["eventType"]], payload)
    return payload  # type: ignore[no-any-return]


async def test_every_change_is_delivered_signed_and_valid(
    keyed: tuple[Running, Settings], merchant: SomeMerchant, receiver: Receiver
) -> None:
    running, _ = keyed
    endpoint, secret = await endpoint_of(running, merchant, receiver.url)
    shop = Shop(running.client, merchant.key)
    payment = await shop.create(1000)
    await shop.capture(payment["id"])
    await shop.refund(payment["id"], amount=300)
    await deliver_all(running, merchant)
    payloads = [checked(r, secret) for r in receiver.received]
    assert [(p["eventType"], p["payment"]["status"]) for p in payloads] == [
        ("PAYMENT.STATUS", "PENDING"),
        ("PAYMENT.STATUS", "AUTHORIZED"),
        ("PAYMENT.STATUS", "SETTLED"),
        ("PAYMENT.REFUND", "SETTLED"),
    ]
    assert payloads[-1]["payment"]["processor"]["amountRefunded"] == 300
    assert payloads[0]["notificationConfig"] == {
        "id": str(endpoint),
        "description": "orders service",
    }
    sequences = [int(r.headers["X-Event-Sequence"]) for r in receiver.received]
    assert sequences == [1, 2, 3, 4]
    assert len({r.headers["X-Event-Id"] for r in receiver.received}) == 4
    # A body changed in transit, or signed with another secret, does not verify.
    first = receiver.received[0]
    assert not documented_verify()(first.body + b" ", first.headers, secret)
    assert not documented_verify()(first.body, first.headers, "whsec_other")


async def test_failures_are_retried_on_schedule_as_one_logical_delivery(
    keyed: tuple[Running, Settings], merchant: SomeMerchant, receiver: Receiver, db: Any
) -> None:
    running, _ = keyed
    _, secret = await endpoint_of(running, merchant, receiver.url)
    receiver.script = [500, 503]
    payment = await Shop(running.client, merchant.key).create(1000, currency="USD")
    event_ids: set[str] = set()
    for attempt, base in enumerate([30, 60], start=1):
        before = datetime.now().astimezone()
        assert await deliver(running, merchant if attempt > 1 else None) >= 1
        cur = await db.execute(
            "SELECT next_attempt_at, attempts FROM webhook_deliveries d JOIN webhook_events e "
            "ON e.merchant_id = d.merchant_id AND e.id = d.event_id "
            "WHERE d.payment_id = %s AND e.sequence = 1",
            (payment["id"],),
        )
        next_at, attempts = await cur.fetchone()
        assert attempts == attempt
        # Exponential backoff with jitter: half to one and a half times the base.
        waited = (next_at - before).total_seconds()
        assert base * 0.5 - 1 <= waited <= base * 1.5 + 1, (attempt, waited)
        event_ids |= {r.headers["X-Event-Id"] for r in receiver.received}
    await deliver_all(running, merchant)
    first_event = [r for r in receiver.received if r.headers["X-Event-Sequence"] == "1"]
    assert len(first_event) == 3 and len({r.headers["X-Event-Id"] for r in first_event}) == 1
    checked(first_event[-1], secret)
    # The later event waited for the first: nothing of sequence 2 before sequence 1 got its 200.
    order = [r.headers["X-Event-Sequence"] for r in receiver.received]
    assert order == ["1", "1", "1", "2"]
    shown = run_gateway(keyed[1], "webhooks", "deliveries", "--payment", payment["id"])
    assert shown.returncode == 0, shown.stderr
    assert [line.split()[5] for line in shown.stdout.splitlines()[1:]] == ["delivered"] * 2


async def test_a_receiver_down_for_the_whole_schedule_gets_it_once_redelivered(
    gateway: GatewayFactory,
    settings: Settings,
    merchant: SomeMerchant,
    receiver: Receiver,
    db: Any,
) -> None:
    own = msgspec.structs.replace(
        settings,
        secret_key=new_master_key(),
        webhook_retry_base_seconds=1,
        webhook_retry_max_seconds=2,
        webhook_give_up_seconds=0,  # no schedule: a failed first attempt is the last
    )
    running = await gateway(own)
    endpoint, secret = await endpoint_of(running, merchant, receiver.url)
    receiver.default = 500
    payment = await Shop(running.client, merchant.key).create(1000)
    for _ in range(10):  # a bound, not a clock
        await deliver(running, merchant)
        cur = await db.execute(
            "SELECT count(*) FROM webhook_deliveries WHERE payment_id = %s AND state = 'dead'",
            (payment["id"],),
        )
        if (await cur.fetchone())[0] == 2:
            break
    else:
        pytest.fail("the deliveries were never dead-lettered")
    tried = len(receiver.received)
    shown = run_gateway(
        own, "webhooks", "deliveries", "--state", "dead", "--payment", payment["id"]
    )
    assert shown.stdout.count("dead") == 2
    # The receiver is back; an operator redelivers what failed.
    receiver.default = 200
    since = (datetime.now().astimezone() - timedelta(hours=1)).isoformat()
    redelivered = run_gateway(
        own, "webhooks", "redeliver", "--failed-since", since, "--merchant", merchant.name
    )
    assert redelivered.returncode == 0, redelivered.stderr
    assert "2 delivery(ies) due again now" in redelivered.stdout
    await deliver_all(running, merchant)
    late = receiver.received[tried:]
    assert [r.json["payment"]["status"] for r in late] == ["PENDING", "AUTHORIZED"]
    for r in late:
        checked(r, secret)
    attempts = run_gateway(
        own,
        "webhooks",
        "attempts",
        "--merchant",
        merchant.name,
        late[0].headers["X-Event-Id"],
        str(endpoint),
    )
    assert attempts.returncode == 0, attempts.stderr
    statuses = [line.split()[3] for line in attempts.stdout.splitlines()]
    assert statuses[-1] == "200" and set(statuses[:-1]) == {"500"}


async def test_one_payments_events_arrive_in_order_under_concurrent_changes(
    keyed: tuple[Running, Settings], merchant: SomeMerchant, receiver: Receiver
) -> None:
    running, _ = keyed
    await endpoint_of(running, merchant, receiver.url)
    shop = Shop(running.client, merchant.key)
    # Every other answer fails: retries interleave with later events of the same payment.
    receiver.script = [500, 200] * 40

    async def lifecycle() -> str:
        payment = await shop.create(1000)
        await asyncio.gather(
            shop.capture(payment["id"], amount=400, final=False),
            shop.capture(payment["id"], amount=100, final=False),
        )
        await shop.capture(payment["id"])
        return str(payment["id"])

    payments = await asyncio.gather(*(lifecycle() for _ in range(6)))
    other = running.services.webhooks  # two workers deliver at once
    for _ in range(200):  # a bound, not a clock
        await deliver(running, merchant)
        await asyncio.gather(other.deliver_due(), other.deliver_due())
        if not await pending(running, merchant):
            break
    delivered: dict[str, list[int]] = {}
    for r in receiver.received:
        if r.json["payment"]["id"] in payments:
            delivered.setdefault(r.json["payment"]["id"], []).append(
                int(r.headers["X-Event-Sequence"])
            )
    for payment_id in payments:
        sequence = delivered[payment_id]
        firsts = list(dict.fromkeys(sequence))  # each event's first arrival, in order
        assert firsts == sorted(firsts) and firsts[0] == 1, (payment_id, sequence)
        assert sequence == sorted(sequence), (payment_id, sequence)  # retries before the next


async def test_operators_manage_endpoints_and_deliveries_over_http(
    keyed: tuple[Running, Settings],
    merchant: SomeMerchant,
    receiver: Receiver,
    db: Any,
) -> None:
    running, _ = keyed
    admin = {"X-API-KEY": (await accounts.create_key(db, kind="operator")).secret}
    base = f"/admin/webhooks/{merchant.name}"
    # Live endpoints: https, and never a private, loopback or link-local address.
    for url in ("http://example.com/hooks", "https://127.0.0.1/hooks", "https://169.254.169.254/"):
        refused = await running.client.post(
            f"{base}/endpoints", json={"url": url, "mode": "live"}, headers=admin
        )
        assert refused.status_code == 422, (url, refused.text)
        assert refused.json()["error"]["errorId"] == "WebhookEndpointRefused"
    added = await running.client.post(
        f"{base}/endpoints", json={"url": receiver.url}, headers=admin
    )
    assert added.status_code == 201, added.text
    endpoint, secret = added.json()["id"], added.json()["secret"]
    listed = (await running.client.get(f"{base}/endpoints", headers=admin)).json()["data"]
    assert [e["id"] for e in listed] == [endpoint] and "secret" not in listed[0]

    shop = Shop(running.client, merchant.key)
    payment = await shop.create(1000)
    receiver.script = [500]
    await deliver_all(running, merchant)
    rows = (
        await running.client.get(f"{base}/deliveries?payment={payment['id']}", headers=admin)
    ).json()["data"]
    assert sorted((r["sequence"], r["state"], r["attempts"]) for r in rows) == [
        (1, "delivered", 2),
        (2, "delivered", 1),
    ]
    first = next(r for r in rows if r["sequence"] == 1)
    tried = (
        await running.client.get(f"{base}/deliveries/{first['eventId']}/{endpoint}", headers=admin)
    ).json()["data"]
    assert [(a["number"], a["statusCode"], a["answer"]) for a in tried] == [
        (1, 500, "answered 500"),
        (2, 200, "answered 200"),
    ]

    # A rotation: the old secret still signs, as the second signature, for a day.
    rotated = await running.client.post(f"{base}/endpoints/{endpoint}/rotate-secret", headers=admin)
    new_secret = rotated.json()["secret"]
    again = await running.client.post(
        f"{base}/redeliver", json={"eventId": first["eventId"]}, headers=admin
    )
    assert again.json() == {"redelivered": 1}
    await deliver_all(running, merchant)
    last = receiver.received[-1]
    assert last.headers["X-Event-Id"] == first["eventId"]
    assert documented_verify()(last.body, last.headers, new_secret)
    assert documented_verify()(last.body, last.headers, secret)
    assert "X-Signature-Secondary" in last.headers

    # A disabled endpoint is sent nothing new.
    disabled = await running.client.post(f"{base}/endpoints/{endpoint}/disable", headers=admin)
    assert disabled.json()["state"] == "disabled"
    heard = len(receiver.received)
    await shop.create(2000)
    await deliver_all(running, merchant)
    assert len(receiver.received) == heard


async def test_endpoints_it_cannot_send_to_are_refused_and_bad_input_is_a_clear_error(
    keyed: tuple[Running, Settings], merchant: SomeMerchant, db: Any
) -> None:
    running, _ = keyed
    admin = {"X-API-KEY": (await accounts.create_key(db, kind="operator")).secret}
    base = f"/admin/webhooks/{merchant.name}"
    for url, mode in (
        ("http://example.com:80:80/hooks", "sandbox"),  # not a URL httpx can send to
        ("http://xn--zz.com/", "sandbox"),  # not a valid international name
        ("https://example.com:80:80/", "live"),
        ("https://[64:ff9b::a00:5]/", "live"),  # NAT64 of 10.0.0.5
        ("https://[2002:7f00:1::]/", "live"),  # 6to4 of 127.0.0.1
    ):
        refused = await running.client.post(
            f"{base}/endpoints", json={"url": url, "mode": mode}, headers=admin
        )
        assert refused.status_code == 422, (url, refused.text)
    assert (await running.client.get(f"{base}/endpoints", headers=admin)).json()["data"] == []
    bad_limit = await running.client.get(f"{base}/deliveries?limit=%C2%B2", headers=admin)
    assert bad_limit.status_code == 422, bad_limit.text
    stripe = await running.client.post(
        "/webhooks/stripe/mer_x/acct", content=b"{}", headers={"Stripe-Signature": b"t=\xb2,v1=ab"}
    )
    assert stripe.status_code == 400, stripe.text


async def test_an_endpoint_that_fails_in_any_way_is_retried_then_dead_lettered(
    gateway: GatewayFactory, settings: Settings, merchant: SomeMerchant, db: Any
) -> None:
    """An address nothing listens on: every attempt is recorded, then the delivery is given up,
    and the payment's later events are not held behind it for ever."""
    own = msgspec.structs.replace(settings, secret_key=new_master_key(), webhook_give_up_seconds=0)
    running = await gateway(own)
    await endpoint_of(running, merchant, "http://127.0.0.1:9/nothing-listens")
    payment = await Shop(running.client, merchant.key).create(1000)
    for _ in range(5):
        await deliver(running, merchant)
    cur = await db.execute(
        "SELECT d.sequence, d.state, count(a.number) FROM webhook_deliveries d "
        "LEFT JOIN webhook_attempts a ON a.merchant_id = d.merchant_id "
        "AND a.event_id = d.event_id AND a.endpoint_id = d.endpoint_id "
        "WHERE d.payment_id = %s GROUP BY 1, 2 ORDER BY 1",
        (payment["id"],),
    )
    assert await cur.fetchall() == [(1, "dead", 1), (2, "dead", 1)]


async def test_a_disabled_endpoint_is_sent_nothing_until_enabled(
    keyed: tuple[Running, Settings], merchant: SomeMerchant, receiver: Receiver, db: Any
) -> None:
    running, _ = keyed
    endpoint, _ = await endpoint_of(running, merchant, receiver.url)
    receiver.default = 500
    await Shop(running.client, merchant.key).create(1000)
    await deliver(running)
    heard = len(receiver.received)
    async with running.services.engine.db.connection() as conn:
        await notifications.set_endpoint_state(conn, merchant.id, endpoint, "disabled")
    for _ in range(3):
        await deliver(running, merchant)
    assert len(receiver.received) == heard  # its retries wait, they are not sent
    async with running.services.engine.db.connection() as conn:
        await notifications.set_endpoint_state(conn, merchant.id, endpoint, "active")
    receiver.default = 200
    await deliver_all(running, merchant)
    assert [r.json["payment"]["status"] for r in receiver.received[heard:]] == [
        "PENDING",
        "AUTHORIZED",
    ]


class Interrupted(Exception):
    """Stands for a failure after the event was written, before the change committed."""


async def test_an_event_exists_only_with_its_change_committed(
    keyed: tuple[Running, Settings],
    merchant: SomeMerchant,
    receiver: Receiver,
    db: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The outbox: the authorization's answer and its event are one transaction. Interrupted
    after the event was written, both roll back; recovered, both commit."""
    running, _ = keyed
    await endpoint_of(running, merchant, receiver.url)
    notify = Runner._notify  # a staticmethod: the function itself
    written: list[int] = []

    async def then_fails(self: Runner, conn: Any, *args: Any, **kwargs: Any) -> None:
        await notify(conn, *args, **kwargs)
        cur = await conn.execute(
            "SELECT count(*) FROM webhook_events WHERE merchant_id = %s", (merchant.id,)
        )
        written.append((await cur.fetchone())[0])  # the event is there, in the transaction
        raise Interrupted()

    monkeypatch.setattr(Runner, "_notify", then_fails)
    shop = Shop(running.client, merchant.key)
    body = {"orderId": "o", "currencyCode": "EUR", "amount": 900}
    answer = await shop.call(
        "POST", "/payments", {**body, "paymentMethodToken": await shop.tokenize()}
    )
    assert answer.status_code == 500
    assert written == [2]  # PENDING's and AUTHORIZED's, then the interruption
    monkeypatch.undo()
    cur = await db.execute(
        "SELECT p.id, p.status, array_agg(e.snapshot->'payment'->>'status' ORDER BY e.sequence) "
        "FROM payments p JOIN webhook_events e ON e.merchant_id = p.merchant_id "
        "AND e.payment_id = p.id WHERE p.merchant_id = %s GROUP BY 1, 2",
        (merchant.id,),
    )
    [(payment_id, status, events)] = await cur.fetchall()
    assert (status, events) == ("PENDING", ["PENDING"])  # the answer and its event: neither
    await db.execute(
        "UPDATE workflow_runs SET lease_expires_at = now(), next_attempt_at = now() "
        "WHERE payment_id = %s",
        (payment_id,),
    )
    await running.services.engine.recovery.recover_due()
    await deliver_all(running, merchant)
    assert [r.json["payment"]["status"] for r in receiver.received] == ["PENDING", "AUTHORIZED"]
