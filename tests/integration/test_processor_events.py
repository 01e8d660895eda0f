"""Stripe's events in: signed, once each, and resolving the runs waiting on them through the
same status question the worker asks (polling is then only the fallback)."""

from __future__ import annotations

import json
import secrets
import time
from typing import Any

import msgspec
import pytest

from gateway.settings import Settings
from processors.stripe.events import sign
from tests.conftest import run_gateway
from tests.integration.conftest import GatewayFactory, Running
from tests.integration.fake_stripe import FakeStripe
from tests.integration.shop import Shop
from tests.integration.test_stripe import MASTER_KEY, create, stripe_shop

WEBHOOK_SECRET = "whsec_" + "w" * 32


@pytest.fixture
async def polling_off(gateway: GatewayFactory, settings: Settings) -> tuple[Running, Settings]:
    """A gateway whose worker would not ask Stripe again for a day on its own."""
    own = msgspec.structs.replace(
        settings,
        secret_key=MASTER_KEY,
        settlement_poll_seconds=86400,
        workflow_recovery_backoff_seconds=86400,
    )
    return await gateway(own), own


async def merchant_of(running: Running, db: Any, settings: Settings) -> tuple[Any, str, str]:
    """A merchant on its Stripe account, which takes events: (shop, merchant id, the URL)."""
    shop = await stripe_shop(running, db)
    cur = await db.execute(
        "SELECT id, name FROM merchants WHERE id = (SELECT merchant_id FROM api_keys "
        "WHERE id = %s)",
        (shop.key.split("_")[2],),
    )
    merchant_id, name = await cur.fetchone()
    told = run_gateway(
        settings,
        "processors",
        "set-webhook-secret",
        "--merchant",
        name,
        "--name",
        "stripe-main",
        "--secret-env",
        "STRIPE_WHSEC",
        extra_env={"STRIPE_WHSEC": WEBHOOK_SECRET, "GATEWAY_SECRET_KEY": MASTER_KEY},
    )
    assert told.returncode == 0, told.stderr
    url = f"/webhooks/stripe/{merchant_id}/stripe-main"
    assert url in told.stdout
    return shop, merchant_id, url


async def waiting_for_3ds(
    running: Running, db: Any, settings: Settings, fake: FakeStripe
) -> tuple[Shop, str, str, dict[str, Any], dict[str, Any]]:
    """A payment waiting for 3-D Secure at Stripe: (shop, merchant id, the events URL, the
    payment, its PaymentIntent as the fake keeps it)."""
    shop, merchant_id, url = await merchant_of(running, db, settings)
    payment = await create(shop, "pm_card_threeDSecure2Required")
    return shop, merchant_id, url, payment, next(iter(fake.intents.values()))


def event(intent: dict[str, Any], kind: str = "payment_intent.amount_capturable_updated") -> bytes:
    return json.dumps(
        {
            "id": f"evt_{secrets.token_hex(8)}",
            "object": "event",
            "type": kind,
            "data": {"object": {**intent, "object": "payment_intent"}},
        }
    ).encode()


async def post(running: Running, url: str, body: bytes, signature: str | None) -> Any:
    headers = {"Content-Type": "application/json"}
    if signature is not None:
        headers["Stripe-Signature"] = signature
    return await running.client.post(url, content=body, headers=headers)


async def test_a_3ds_authorization_is_resolved_by_its_event_with_polling_off(
    polling_off: tuple[Running, Settings], db: Any, fake: FakeStripe
) -> None:
    running, settings = polling_off
    shop, _, url, payment, intent = await waiting_for_3ds(running, db, settings, fake)
    assert payment["status"] == "PENDING"
    intent["status"] = "requires_capture"  # the customer authenticated, at Stripe
    await running.services.engine.recovery.recover_due()
    assert (await shop.get(payment["id"]))["status"] == "PENDING"  # nobody asked: not due
    asked = fake.asked

    body = event(intent)
    answer = await post(running, url, body, sign(WEBHOOK_SECRET, body, int(time.time())))
    assert answer.status_code == 200, answer.text
    assert answer.json() == {"received": True, "duplicate": False}
    await running.services.engine.recovery.recover_due()
    authorized = await shop.get(payment["id"])
    assert authorized["status"] == "AUTHORIZED"
    assert fake.asked > asked  # the status was asked of Stripe, not taken from the event

    # The same event again (Stripe retries): acknowledged, nothing done.
    again = await post(running, url, body, sign(WEBHOOK_SECRET, body, int(time.time())))
    assert again.json() == {"received": True, "duplicate": True}


async def test_an_event_is_only_news_it_never_moves_a_payment_past_what_stripe_says(
    polling_off: tuple[Running, Settings], db: Any, fake: FakeStripe
) -> None:
    running, settings = polling_off
    shop, _, url, payment, intent = await waiting_for_3ds(running, db, settings, fake)
    # A forged-looking claim of success, signed: Stripe itself still says requires_action.
    body = event({**intent, "status": "succeeded"}, "payment_intent.succeeded")
    answer = await post(running, url, body, sign(WEBHOOK_SECRET, body, int(time.time())))
    assert answer.status_code == 200
    await running.services.engine.recovery.recover_due()
    assert (await shop.get(payment["id"]))["status"] == "PENDING"


@pytest.mark.parametrize(
    ("signature", "says"),
    [
        (None, "No Stripe-Signature header"),
        ("t=1,v1=", "no timestamp or no v1"),
        ("wrong secret", "no signature matches"),
        ("stale", "outside the 5-minute tolerance"),
    ],
)
async def test_bad_or_stale_signatures_are_refused_and_change_nothing(
    polling_off: tuple[Running, Settings], db: Any, fake: FakeStripe, signature: Any, says: str
) -> None:
    running, settings = polling_off
    shop, merchant_id, url, payment, intent = await waiting_for_3ds(running, db, settings, fake)
    intent["status"] = "requires_capture"
    body = event(intent)
    if signature == "wrong secret":
        signature = sign("whsec_" + "x" * 32, body, int(time.time()))
    elif signature == "stale":
        signature = sign(WEBHOOK_SECRET, body, int(time.time()) - 301)
    answer = await post(running, url, body, signature)
    assert answer.status_code == 400
    assert answer.json()["error"]["errorId"] == "InvalidSignature"
    assert says in answer.json()["error"]["description"]
    cur = await db.execute(
        "SELECT count(*) FROM processor_events WHERE merchant_id = %s", (merchant_id,)
    )
    assert (await cur.fetchone())[0] == 0
    await running.services.engine.recovery.recover_due()
    assert (await shop.get(payment["id"]))["status"] == "PENDING"  # nothing woke


async def test_an_unknown_account_answers_as_a_bad_signature(
    polling_off: tuple[Running, Settings],
) -> None:
    running, _ = polling_off
    body = b'{"id": "evt_1", "type": "payment_intent.succeeded"}'
    answer = await post(
        running,
        "/webhooks/stripe/mer_nobody/stripe-main",
        body,
        sign(WEBHOOK_SECRET, body, int(time.time())),
    )
    assert answer.status_code == 400
    assert answer.json()["error"]["errorId"] == "InvalidSignature"


async def test_an_event_that_comes_while_the_run_is_held_is_not_lost(
    polling_off: tuple[Running, Settings], db: Any, fake: FakeStripe
) -> None:
    running, settings = polling_off
    shop, _, url, payment, intent = await waiting_for_3ds(running, db, settings, fake)
    recovery = running.services.engine.recovery
    # A worker holds the run (asking Stripe) when the event comes.
    await db.execute(
        "UPDATE workflow_runs SET next_attempt_at = now() WHERE payment_id = %s", (payment["id"],)
    )
    [(run, owner)] = [c for c in await recovery.claim_due(50) if c[0].payment_id == payment["id"]]
    body = event(intent)
    assert (
        await post(running, url, body, sign(WEBHOOK_SECRET, body, int(time.time())))
    ).json() == {
        "received": True,
        "duplicate": False,
    }
    await recovery.resume(run, owner)  # it asked before the customer was done: still waiting
    assert (await shop.get(payment["id"]))["status"] == "PENDING"
    intent["status"] = "requires_capture"
    # The event is remembered: the run is due at once, not after the day's polling interval.
    await recovery.recover_due()
    assert (await shop.get(payment["id"]))["status"] == "AUTHORIZED"
