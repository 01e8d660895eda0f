"""`POST /payments/{id}/resume`: a payment waiting for the customer (3-D Secure) continues when
the merchant hands back the checkout's token; the sandbox has a card that asks for it."""

from __future__ import annotations

from typing import Any

import msgspec

from gateway.settings import Settings
from tests.integration.conftest import GatewayFactory
from tests.integration.fake_stripe import FakeStripe
from tests.integration.shop import Shop
from tests.integration.test_stripe import MASTER_KEY, create, stripe_shop

THREE_DS_CARD = "4000000000003220"


async def resume(shop: Shop, payment_id: str, token: str = "checkout-token") -> Any:
    return await shop.call("POST", f"/payments/{payment_id}/resume", {"resumeToken": token})


async def test_a_3ds_payment_is_authorized_when_resumed(shop: Shop, db: Any) -> None:
    payment = await shop.create(1500, card=THREE_DS_CARD)
    assert payment["status"] == "PENDING"
    assert payment["requiredAction"]["name"] == "3DS_AUTHENTICATION"
    resumed = await resume(shop, payment["id"])
    assert resumed.status_code == 200, resumed.text
    body = resumed.json()
    assert body["status"] == "AUTHORIZED" and "requiredAction" not in body
    cur = await db.execute(
        "SELECT count(*) FROM sandbox_operations WHERE reference = %s AND verb = 'authorize'",
        (payment["id"],),
    )
    assert (await cur.fetchone())[0] == 1  # resumed, not authorized again
    # Nothing is waiting any more.
    again = await resume(shop, payment["id"])
    assert (again.status_code, again.json()["error"]["errorId"]) == (202, "NoActionsToHandle")
    assert (await shop.capture(payment["id"])).json()["status"] == "SETTLED"


async def test_a_failed_challenge_declines_it_and_bad_requests_change_nothing(shop: Shop) -> None:
    payment = await shop.create(1500, card=THREE_DS_CARD)
    missing = await shop.call("POST", f"/payments/{payment['id']}/resume", {})
    assert missing.status_code == 422
    unknown = await resume(shop, "pay_nothing")
    assert unknown.status_code == 404
    assert (await shop.get(payment["id"]))["status"] == "PENDING"
    declined = (await resume(shop, payment["id"], "sandbox_3ds_failed")).json()
    assert declined["status"] == "DECLINED"
    plain = await shop.create(1500)
    assert (await resume(shop, plain["id"])).json()["error"]["errorId"] == "NoActionsToHandle"


async def test_stripes_requires_action_goes_through_resume(
    db: Any, fake: FakeStripe, gateway: GatewayFactory, settings: Settings
) -> None:
    stripe = await gateway(msgspec.structs.replace(settings, secret_key=MASTER_KEY))
    shop = await stripe_shop(stripe, db)
    payment = await create(shop, "pm_card_threeDSecure2Required")
    assert payment["status"] == "PENDING"
    next(iter(fake.intents.values()))["status"] = "requires_capture"  # done in the browser
    resumed = (await resume(shop, payment["id"])).json()
    assert resumed["status"] == "AUTHORIZED"


async def test_a_resume_while_the_worker_asks_is_to_be_retried_not_dropped(
    shop: Shop, db: Any
) -> None:
    payment = await shop.create(1500, card=THREE_DS_CARD)
    await db.execute(
        "UPDATE workflow_runs SET lease_owner = 'a worker', "
        "lease_expires_at = now() + interval '1 minute' WHERE payment_id = %s",
        (payment["id"],),
    )
    busy = await resume(shop, payment["id"])
    assert (busy.status_code, busy.json()["error"]["errorId"]) == (409, "ResumeInProgress")
    # Its lease ran out (the worker died): the resume takes the run over.
    await db.execute(
        "UPDATE workflow_runs SET lease_expires_at = now() - interval '1 second' "
        "WHERE payment_id = %s",
        (payment["id"],),
    )
    assert (await resume(shop, payment["id"])).json()["status"] == "AUTHORIZED"
