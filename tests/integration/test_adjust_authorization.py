"""`POST /payments/{id}/adjust-authorization`: an ESTIMATED authorization's amount changed, on a
processor that supports incremental authorization (the sandbox does, Stripe is refused)."""

from __future__ import annotations

from typing import Any

import msgspec

from gateway.settings import Settings
from tests.integration.conftest import GatewayFactory, Running
from tests.integration.fake_stripe import FakeStripe
from tests.integration.shop import Shop
from tests.integration.test_stripe import MASTER_KEY, stripe_shop

ESTIMATED = {"authorizationType": "ESTIMATED"}


async def adjust(shop: Shop, payment_id: str, amount: int) -> Any:
    return await shop.call(
        "POST", f"/payments/{payment_id}/adjust-authorization", {"amount": amount}
    )


async def test_an_estimated_authorization_is_raised_and_lowered_and_captures_follow(
    shop: Shop, db: Any
) -> None:
    up = await shop.create(1000, paymentMethod=ESTIMATED)
    raised = await adjust(shop, up["id"], 1500)
    assert raised.status_code == 200, raised.text
    assert raised.json()["amount"] == 1500 and raised.json()["status"] == "AUTHORIZED"
    settled = (await shop.capture(up["id"])).json()
    assert (settled["status"], settled["processor"]["amountCaptured"]) == ("SETTLED", 1500)

    down = await shop.create(1000, paymentMethod=ESTIMATED)
    assert (await adjust(shop, down["id"], 600)).json()["amount"] == 600
    too_much = await shop.capture(down["id"], amount=700)
    assert too_much.json()["error"]["errorId"] == "UnprocessableCaptureAmount"
    assert (await shop.capture(down["id"], amount=600)).json()["status"] == "SETTLED"
    cur = await db.execute(
        "SELECT count(*) FROM sandbox_operations WHERE reference = %s AND verb = 'adjust'",
        (down["id"],),
    )
    assert (await cur.fetchone())[0] == 1


async def test_only_an_estimated_authorized_payment_is_adjusted(shop: Shop) -> None:
    final = await shop.create(1000)
    refused = (await adjust(shop, final["id"], 1500)).json()["error"]
    assert refused["errorId"] == "IncorrectPaymentAuthorizationType"
    captured = await shop.create(1000, paymentMethod=ESTIMATED)
    await shop.capture(captured["id"], amount=100, final=False)
    refused = (await adjust(shop, captured["id"], 1500)).json()["error"]
    assert refused["errorId"] == "PaymentIsNotAuthorized"
    zero = await adjust(shop, (await shop.create(1000, paymentMethod=ESTIMATED))["id"], 0)
    assert zero.status_code == 422
    assert (await adjust(shop, "pay_nothing", 100)).status_code == 404


async def test_an_adjustment_whose_answer_is_lost_holds_captures_until_it_is_known(
    running: Running, shop: Shop, db: Any
) -> None:
    payment = await shop.create(
        1000,
        paymentMethod=ESTIMATED,
        metadata={"sandbox_fault_on": "adjust", "sandbox_timeouts": 3},
    )
    lost = (await adjust(shop, payment["id"], 1800)).json()
    assert lost["amount"] == 1000 and lost["statusReason"]["type"] == "GATEWAY_TIMEOUT"
    held = await shop.capture(payment["id"], amount=500)
    assert held.json()["error"]["errorId"] == "UnprocessableCaptureAmount"  # nothing capturable
    await running.services.engine.recovery.recover_due()
    known = await shop.get(payment["id"])
    assert known["amount"] == 1800 and "statusReason" not in known
    cur = await db.execute(
        "SELECT count(*) FROM sandbox_operations WHERE reference = %s AND verb = 'adjust'",
        (payment["id"],),
    )
    assert (await cur.fetchone())[0] == 1
    assert (await shop.capture(payment["id"])).json()["processor"]["amountCaptured"] == 1800


async def test_stripe_is_refused_before_anything_is_sent(
    db: Any, fake: FakeStripe, gateway: GatewayFactory, settings: Settings
) -> None:
    stripe = await gateway(msgspec.structs.replace(settings, secret_key=MASTER_KEY))
    shop = await stripe_shop(stripe, db)
    created = await shop.call(
        "POST",
        "/payments",
        {
            "orderId": "o",
            "currencyCode": "EUR",
            "amount": 1000,
            "paymentMethodToken": "pm_card_visa",
            "paymentMethod": ESTIMATED,
        },
    )
    effects = dict(fake.effects)
    refused = (await adjust(shop, created.json()["id"], 1500)).json()["error"]
    assert refused["errorId"] == "AdjustAuthorizationNotSupported"
    assert "STRIPE" in refused["description"]
    assert dict(fake.effects) == effects


async def test_a_lost_adjustment_leaves_the_authorization_itself_known(shop: Shop) -> None:
    payment = await shop.create(
        1000,
        paymentMethod=ESTIMATED,
        metadata={"sandbox_fault_on": "adjust", "sandbox_timeouts": 3},
    )
    await adjust(shop, payment["id"], 1800)
    [sale] = (await shop.get(payment["id"]))["transactions"]
    assert sale["processorStatus"] == "AUTHORIZED" and "processorStatusReason" not in sale
