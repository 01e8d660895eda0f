"""The gateway's own flow against Stripe's real test mode: opt-in, with STRIPE_TEST_SECRET_KEY.

Authorize with Stripe's test PaymentMethod, capture part of it (final), refund part of that.
"""

from __future__ import annotations

import os
from typing import Any

import msgspec
import pytest

from gateway.settings import Settings
from processors.stripe import API_BASE
from tests.integration.conftest import GatewayFactory
from tests.integration.test_stripe import stripe_shop
from workflows.credentials import new_master_key

pytestmark = pytest.mark.remote
STRIPE_KEY = os.environ.get("STRIPE_TEST_SECRET_KEY", "")


@pytest.mark.skipif(
    not STRIPE_KEY.startswith("sk_test_"),
    reason="set STRIPE_TEST_SECRET_KEY to a Stripe test-mode secret key (sk_test_...) to run",
)
async def test_authorize_capture_part_and_refund_part_on_stripe_test_mode(
    gateway: GatewayFactory, settings: Settings, db: Any
) -> None:
    master = new_master_key()
    running = await gateway(msgspec.structs.replace(settings, secret_key=master))
    shop = await stripe_shop(
        running,
        db,
        multicapture=False,
        secret=STRIPE_KEY,
        api_base_url=API_BASE,
        master_key=master,
    )
    created = await shop.call(
        "POST",
        "/payments",
        {
            "orderId": "remote-1",
            "currencyCode": "EUR",
            "amount": 1000,
            "paymentMethodToken": "pm_card_visa",
        },
    )
    assert created.json()["status"] == "AUTHORIZED", created.text
    payment_id = created.json()["id"]
    captured = (await shop.capture(payment_id, amount=600)).json()
    assert captured["status"] == "PARTIALLY_SETTLED"
    assert captured["processor"]["amountCaptured"] == 600
    refunded = (await shop.refund(payment_id, amount=200)).json()
    assert refunded["processor"]["amountRefunded"] == 200
    assert refunded["transactions"][-1]["processorTransactionId"].startswith("re_")
