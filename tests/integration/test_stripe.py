"""Payments through a merchant's Stripe account, with Stripe faked at the HTTP boundary.

Every request the connector sends is checked against Stripe's spec3.json (fake_stripe.check).
"""

from __future__ import annotations

import asyncio
import secrets
from typing import Any

import msgspec
import pytest

from gateway import accounts
from gateway.settings import Settings
from tests.integration.conftest import GatewayFactory, Running, until
from tests.integration.fake_stripe import BASE, FakeStripe, Fault
from tests.integration.shop import Shop, assert_figures_add_up
from tests.stripe_contract import stripe_contract
from workflows import merchants, worker
from workflows.accounts import add_account, remove_account
from workflows.credentials import CredentialBox, new_master_key
from workflows.errors import AccountError

SECRET = "sk_test_" + "x" * 24
MASTER_KEY = new_master_key()


@pytest.fixture
async def stripe_gateway(gateway: GatewayFactory, settings: Settings) -> Running:
    return await gateway(
        msgspec.structs.replace(settings, secret_key=MASTER_KEY, workflow_lease_seconds=1)
    )


async def stripe_shop(
    running: Running,
    db: Any,
    *,
    multicapture: bool = True,
    secret: str = SECRET,
    api_base_url: str = BASE,
    master_key: str = MASTER_KEY,
) -> Shop:
    """A merchant routed to its own Stripe account (stripe-main), and its backend."""
    merchant = await merchants.create_merchant(db, f"st-{secrets.token_hex(4)}")
    key = await accounts.create_key(db, kind="merchant", merchant=merchant, mode="sandbox")
    await add_account(
        db,
        CredentialBox(master_key),
        merchant_id=merchant.id,
        name="stripe-main",
        kind="stripe",
        credentials={"secretKey": secret},
        settings={"apiBaseUrl": api_base_url, "multicapture": multicapture},
    )
    await db.execute(
        "UPDATE merchants SET processor = 'stripe', processor_account = 'stripe-main'"
        " WHERE id = %s",
        (merchant.id,),
    )
    return Shop(running.client, key.secret)


@pytest.fixture
async def shop(stripe_gateway: Running, db: Any, fake: FakeStripe) -> Shop:
    return await stripe_shop(stripe_gateway, db)


async def create(shop: Shop, method: str = "pm_card_visa", amount: int = 1000) -> dict[str, Any]:
    response = await shop.call(
        "POST",
        "/payments",
        {"orderId": "o-1", "currencyCode": "EUR", "amount": amount, "paymentMethodToken": method},
    )
    assert response.status_code == 200, response.text
    return response.json()  # type: ignore[no-any-return]


async def processor_keys(db: Any, payment_id: str, kind: str) -> list[str]:
    cur = await db.execute(
        "SELECT processor_key FROM workflow_runs WHERE payment_id = %s AND kind = %s",
        (payment_id, kind),
    )
    return [row[0] for row in await cur.fetchall()]


async def until_finished(running: Running, payment_id: str) -> None:
    """Worker passes until no run of the payment is open (a bound on waiting, not a speed)."""
    for _ in range(400):
        runs = await running.services.reads.list_runs(payment_id=payment_id)
        if all(run.state != "running" for run in runs):
            return
        await running.services.engine.recovery.recover_due()
        await asyncio.sleep(0.05)
    pytest.fail(f"runs of {payment_id} still open")


async def test_a_whole_lifecycle_through_stripe(shop: Shop, fake: FakeStripe, db: Any) -> None:
    payment = await create(shop)
    assert payment["status"] == "AUTHORIZED"
    assert payment["processor"]["name"] == "STRIPE"
    assert payment["cardTokenType"] == "PROCESSOR_TOKEN"
    assert payment["transactions"][0]["processorTransactionId"].startswith("pi_")
    assert (await shop.capture(payment["id"], amount=300, final=False)).json()[
        "status"
    ] == "PARTIALLY_SETTLED"
    assert (await shop.capture(payment["id"])).json()["status"] == "SETTLED"
    assert (await shop.refund(payment["id"], amount=200)).json()["processor"][
        "amountRefunded"
    ] == 200
    full = (await shop.refund(payment["id"])).json()
    assert full["processor"]["amountRefunded"] == 1000
    assert_figures_add_up(await shop.get(payment["id"]))
    assert fake.effects == {"authorize": 1, "capture": 2, "refund": 2}
    # Every POST carried the engine's persisted processor key of its run.
    for kind in ("authorize", "capture", "refund"):
        assert sorted(fake.keys[kind]) == sorted(await processor_keys(db, payment["id"], kind))
    listed = (await shop.call("GET", "/payments?processor=STRIPE")).json()["data"]
    assert [p["id"] for p in listed] == [payment["id"]]
    intent = next(iter(fake.intents.values()))
    [key] = await processor_keys(db, payment["id"], "authorize")
    assert intent["metadata"] == {"payment_id": payment["id"], "processor_key": key}
    assert intent["currency"] == "eur" and intent["capture_method"] == "manual"


async def test_a_cancel_goes_to_stripe(shop: Shop, fake: FakeStripe) -> None:
    payment = await create(shop)
    assert (await shop.cancel(payment["id"])).json()["status"] == "CANCELLED"
    assert fake.effects["cancel"] == 1


@pytest.mark.parametrize(
    ("method", "code", "decline_type"),
    [
        ("pm_card_chargeDeclined", "DECLINED", "SOFT_DECLINE"),
        ("pm_card_chargeDeclinedInsufficientFunds", "INSUFFICIENT_FUNDS", "SOFT_DECLINE"),
        ("pm_card_chargeDeclinedExpiredCard", "EXPIRED_CARD", "HARD_DECLINE"),
        ("pm_card_chargeDeclinedFraudulent", "SUSPECTED_FRAUD", "HARD_DECLINE"),
        ("pm_card_chargeDeclinedLostCard", "LOST_OR_STOLEN_CARD", "HARD_DECLINE"),
    ],
)
async def test_stripe_declines_become_primer_declines(
    shop: Shop, method: str, code: str, decline_type: str
) -> None:
    payment = await create(shop, method)
    assert payment["status"] == "DECLINED"
    assert payment["statusReason"] == {
        "type": "ISSUER_DECLINED",
        "declineType": decline_type,
        "code": code,
        "message": "Your card was declined.",
    }


async def test_3ds_required_is_pending_then_authorized_when_the_customer_is_done(
    stripe_gateway: Running, shop: Shop, fake: FakeStripe
) -> None:
    payment = await create(shop, "pm_card_threeDSecure2Required")
    assert payment["status"] == "PENDING"
    assert payment["requiredAction"]["name"] == "3DS_AUTHENTICATION"
    await stripe_gateway.services.engine.recovery.recover_due()  # asks Stripe: still waiting
    assert (await shop.get(payment["id"]))["status"] == "PENDING"
    next(iter(fake.intents.values()))["status"] = "requires_capture"  # the customer authenticated
    await stripe_gateway.services.engine.recovery.recover_due()
    authorized = await shop.get(payment["id"])
    assert authorized["status"] == "AUTHORIZED" and "requiredAction" not in authorized


async def test_a_non_final_capture_needs_multicapture_and_calls_nothing_without_it(
    stripe_gateway: Running, db: Any, fake: FakeStripe
) -> None:
    shop = await stripe_shop(stripe_gateway, db, multicapture=False)
    payment = await create(shop)
    refused = (await shop.capture(payment["id"], amount=300, final=False)).json()
    assert refused["status"] == "AUTHORIZED"
    assert "multicapture" in refused["statusReason"]["message"]
    assert fake.effects["capture"] == 0
    assert (await shop.capture(payment["id"], amount=300)).json()["status"] == "PARTIALLY_SETTLED"


async def test_a_5xx_then_success_retries_with_the_same_key(shop: Shop, fake: FakeStripe) -> None:
    payment = await create(shop)
    fake.fail("capture", Fault(status=500))
    assert (await shop.capture(payment["id"])).json()["status"] == "SETTLED"
    assert len(fake.keys["capture"]) == 2 and len(set(fake.keys["capture"])) == 1
    assert fake.effects["capture"] == 1


async def test_a_lost_answer_is_settled_by_asking_stripe(
    stripe_gateway: Running, shop: Shop, fake: FakeStripe
) -> None:
    payment = await create(shop)
    # Stripe captures, the answers never arrive; a later repeat meets a forgotten key.
    fake.fail("capture", *(Fault(timeout_after_acting=True) for _ in range(3)))
    unknown = (await shop.capture(payment["id"])).json()
    assert unknown["status"] == "AUTHORIZED"
    assert unknown["statusReason"]["type"] == "GATEWAY_TIMEOUT"
    fake.answers.clear()
    fake.unexpected_state_on_repeat = True
    await stripe_gateway.services.engine.recovery.recover_due()
    settled = await shop.get(payment["id"])
    assert settled["status"] == "SETTLED" and settled["processor"]["amountCaptured"] == 1000
    assert fake.effects["capture"] == 1


async def test_stripe_should_retry_false_is_not_retried(
    stripe_gateway: Running, shop: Shop, fake: FakeStripe
) -> None:
    payment = await create(shop)
    fake.fail("capture", Fault(status=500, headers={"Stripe-Should-Retry": "false"}))
    answer = (await shop.capture(payment["id"])).json()
    assert len(fake.keys["capture"]) == 1
    assert answer["statusReason"]["type"] == "GATEWAY_TIMEOUT"  # left for recovery, not retried
    await until_finished(stripe_gateway, payment["id"])  # the worker's later try goes through
    assert (await shop.get(payment["id"]))["status"] == "SETTLED"
    # A 4xx that Stripe says not to retry is a definitive failure, asked once.
    fake.fail("refund", Fault(status=409, headers={"Stripe-Should-Retry": "false"}))
    refused = (await shop.refund(payment["id"], amount=100)).json()
    assert len(fake.keys["refund"]) == 1
    assert refused["processor"]["amountRefunded"] == 0
    assert refused["transactions"][-1]["status"] == "FAILED"


async def test_a_bad_api_key_fails_the_payment_without_retrying_or_leaking_it(
    shop: Shop, fake: FakeStripe, capsys: pytest.CaptureFixture[str]
) -> None:
    fake.fail("authorize", Fault(status=401))
    payment = await create(shop)
    assert payment["status"] == "FAILED"
    assert payment["statusReason"]["type"] == "GATEWAY_REJECTED"
    assert "API key" in payment["statusReason"]["message"]
    assert len(fake.keys["authorize"]) == 1
    assert SECRET not in capsys.readouterr().err + str(payment)


async def test_a_sandbox_card_token_is_refused_for_a_stripe_merchant(shop: Shop) -> None:
    response = await shop.call(
        "POST",
        "/payments",
        {"orderId": "o", "currencyCode": "EUR", "amount": 5, "paymentMethodToken": "tok_123"},
    )
    assert response.status_code == 400
    assert "pm_" in response.json()["error"]["description"]


async def test_a_gateway_dying_mid_capture_leaves_one_capture_per_key(
    stripe_gateway: Running, shop: Shop, fake: FakeStripe, db: Any
) -> None:
    payment = await create(shop)
    held = asyncio.Event()
    fake.fail("capture", Fault(hold=held))
    fake.received.clear()
    in_flight = asyncio.create_task(shop.capture(payment["id"], key="die-here"))
    await fake.received.wait()  # Stripe has the request (and has captured)
    assert fake.effects["capture"] == 1
    in_flight.cancel()  # the process dies: no answer, no phase 3, the lease runs out
    with pytest.raises(asyncio.CancelledError):
        await in_flight
    held.set()
    await until_finished(stripe_gateway, payment["id"])  # once the 1 s lease has run out
    settled = await shop.get(payment["id"])
    assert settled["status"] == "SETTLED"
    assert fake.effects["capture"] == 1
    [key] = await processor_keys(db, payment["id"], "capture")
    # The dead process may have sent it: the worker asked Stripe, and sent nothing again.
    assert fake.keys["capture"] == [key] and fake.asked == 1


def test_the_requests_were_checked_against_stripes_spec() -> None:
    contract = stripe_contract()
    assert contract.checked > 0


async def test_an_account_that_carried_payments_cannot_be_removed(shop: Shop, db: Any) -> None:
    payment = await create(shop)
    cur = await db.execute(
        "SELECT m.name FROM merchants m JOIN payments p ON p.merchant_id = m.id WHERE p.id = %s",
        (payment["id"],),
    )
    (merchant_name,) = await cur.fetchone()
    await merchants.configure(db, merchant_name, processor="sandbox", capture_on_create=None)
    with pytest.raises(AccountError, match="carried 1 payment"):
        await remove_account(db, merchant_name, "stripe-main")
    # Its payment's follow-ups still reach Stripe through it.
    captured = await shop.capture(payment["id"])
    assert captured.status_code == 200 and captured.json()["status"] == "SETTLED"


async def test_without_the_master_key_a_payment_is_refused_before_anything_is_written(
    gateway: GatewayFactory, settings: Settings, db: Any, fake: FakeStripe
) -> None:
    """A gateway started without GATEWAY_SECRET_KEY cannot decrypt the merchant's Stripe key:
    the create is refused (503) and leaves no pending payment, no run, and nothing at Stripe."""
    running = await gateway(msgspec.structs.replace(settings, secret_key=None))
    shop = await stripe_shop(running, db)
    response = await shop.call(
        "POST",
        "/payments",
        {"orderId": "o-1", "currencyCode": "EUR", "amount": 1000, "paymentMethodToken": "pm_x"},
        key="no-master-key",
    )
    assert response.status_code == 503, response.text
    error = response.json()["error"]
    assert error["errorId"] == "ProcessorUnavailable"
    assert "GATEWAY_SECRET_KEY is not set" in error["description"]
    assert "decrypted" in error["description"]
    assert (await shop.call("GET", "/payments")).json()["data"] == []
    assert fake.effects["authorize"] == 0
    cur = await db.execute(
        "SELECT count(*) FROM workflow_runs WHERE idempotency_key = 'no-master-key'"
    )
    assert (await cur.fetchone())[0] == 0


async def test_a_run_stuck_at_a_slow_processor_holds_up_no_other_run_of_the_worker(
    stripe_gateway: Running, shop: Shop, fake: FakeStripe
) -> None:
    engine = stripe_gateway.services.engine
    slow, quick = await create(shop), await create(shop)
    # The slow payment's capture: its answers are lost, then Stripe holds the worker's question.
    held = asyncio.Event()
    fake.fail("capture", *(Fault(timeout_after_acting=True) for _ in range(3)))
    fake.fail("status", Fault(hold=held))
    await shop.capture(slow["id"])
    stop = asyncio.Event()
    worker_task = asyncio.create_task(worker.run(engine, stop, poll_seconds=0.05))
    try:

        async def asked() -> bool:
            return fake.asked >= 1

        await until(asked, "the worker asked about the slow capture (and is held)")
        # Now another capture's answer is lost: its run is due while the slow one is held.
        fake.fail("capture", *(Fault(timeout_after_acting=True) for _ in range(3)))
        await shop.capture(quick["id"])

        async def quick_settled() -> bool:
            return (await shop.get(quick["id"]))["status"] == "SETTLED"

        await until(quick_settled, "the quick run was resumed while the slow one was held")
        assert (await shop.get(slow["id"]))["status"] == "AUTHORIZED"  # still held
    finally:
        held.set()
        stop.set()
        await worker_task
    settled = await shop.get(slow["id"])
    assert settled["status"] == "SETTLED" and fake.effects["capture"] == 2


async def test_an_authorization_that_never_reached_stripe_fails_at_once(
    shop: Shop, fake: FakeStripe, db: Any
) -> None:
    fake.fail("authorize", *(Fault(status=429) for _ in range(3)))  # refused before anything
    payment = await create(shop)
    assert payment["status"] == "FAILED"
    assert payment["statusReason"]["type"] == "APPLICATION_ERROR"
    assert "could not be reached" in payment["statusReason"]["message"]
    assert fake.effects["authorize"] == 0
    cur = await db.execute(
        "SELECT state FROM workflow_runs WHERE payment_id = %s", (payment["id"],)
    )
    assert [row[0] for row in await cur.fetchall()] == ["failed"]  # nothing left to recover


async def test_a_capture_that_never_reached_stripe_releases_its_amount(
    shop: Shop, fake: FakeStripe
) -> None:
    payment = await create(shop)
    fake.fail("capture", *(Fault(status=429) for _ in range(3)))
    refused = (await shop.capture(payment["id"], amount=400)).json()
    assert refused["status"] == "AUTHORIZED" and refused["processor"]["amountCaptured"] == 0
    assert "could not be reached" in refused["statusReason"]["message"]
    assert fake.effects["capture"] == 0
    again = (await shop.capture(payment["id"], amount=1000)).json()
    assert again["status"] == "SETTLED"  # the whole amount was capturable again


async def test_a_capture_that_may_have_reached_stripe_stays_unknown_when_it_is_unreachable(
    stripe_gateway: Running, shop: Shop, fake: FakeStripe
) -> None:
    payment = await create(shop)
    fake.fail("capture", *(Fault(timeout_after_acting=True) for _ in range(3)))
    unknown = (await shop.capture(payment["id"])).json()
    assert unknown["statusReason"]["type"] == "GATEWAY_TIMEOUT"
    # Then Stripe refuses calls: its status answers are errors, its captures 429s.
    fake.fail("status", *(Fault(status=500) for _ in range(3)))
    fake.fail("capture", *(Fault(status=429) for _ in range(3)))
    await stripe_gateway.services.engine.recovery.recover_due()
    still = await shop.get(payment["id"])
    # The first pass may have captured: never a definite "no" from a later unreachable pass.
    assert still["status"] == "AUTHORIZED" and still["statusReason"]["type"] == "GATEWAY_TIMEOUT"
    runs = await stripe_gateway.services.reads.list_runs(payment_id=payment["id"])
    assert [r.state for r in runs if r.kind == "capture"] == ["running"]
    await until_finished(stripe_gateway, payment["id"])
    settled = await shop.get(payment["id"])
    assert settled["status"] == "SETTLED" and fake.effects["capture"] == 1


# ---------------------------------------------------------------- Stripe forgets keys after 24 h


async def run_of(running: Running, payment_id: str, kind: str) -> Any:
    """The payment's one run of this kind."""
    [run] = [
        r for r in await running.services.reads.list_runs(payment_id=payment_id) if r.kind == kind
    ]
    return run


async def operator_headers(db: Any) -> dict[str, str]:
    return {"X-API-KEY": (await accounts.create_key(db, kind="operator")).secret}


async def a_day_later(db: Any, payment_id: str) -> None:
    """The payment's runs as if first sent 25 hours ago: Stripe has forgotten their keys."""
    await db.execute(
        "UPDATE workflow_runs SET created_at = created_at - interval '25 hours'"
        " WHERE payment_id = %s",
        (payment_id,),
    )


async def lost_refund(shop: Shop, fake: FakeStripe, db: Any) -> dict[str, Any]:
    """A captured payment whose refund of 100 Stripe did, with every answer lost; a day on."""
    payment = await create(shop)
    await shop.capture(payment["id"])
    fake.fail("refund", *(Fault(timeout_after_acting=True) for _ in range(3)))
    unknown = (await shop.refund(payment["id"], amount=100)).json()
    assert unknown["processor"]["amountRefunded"] == 0
    assert fake.effects["refund"] == 1
    fake.forget_keys()
    await a_day_later(db, payment["id"])
    return payment


async def test_a_refund_recovered_after_stripe_forgot_its_key_is_found_not_repeated(
    stripe_gateway: Running, shop: Shop, fake: FakeStripe, db: Any
) -> None:
    payment = await lost_refund(shop, fake, db)
    await stripe_gateway.services.engine.recovery.recover_due()
    after = await shop.get(payment["id"])
    assert after["processor"]["amountRefunded"] == 100
    assert fake.effects["refund"] == 1  # found by its key in the refund's metadata
    assert len(fake.keys["refund"]) == 3  # and nothing re-sent
    assert_figures_add_up(after)


async def test_after_24_hours_without_an_answer_nothing_is_resent_and_a_replay_is_refused(
    stripe_gateway: Running, shop: Shop, fake: FakeStripe, db: Any
) -> None:
    admin = await operator_headers(db)
    payment = await lost_refund(shop, fake, db)
    fake.fail("status", *(Fault(status=500) for _ in range(3)))  # Stripe cannot answer
    await stripe_gateway.services.engine.recovery.recover_due()
    assert len(fake.keys["refund"]) == 3 and fake.effects["refund"] == 1
    run = await run_of(stripe_gateway, payment["id"], "refund")
    assert run.state == "running" and "could not say" in (run.last_error or "")

    fake.fail("status", *(Fault(status=500) for _ in range(3)))
    refused = await stripe_gateway.client.post(f"/admin/workflows/{run.id}/replay", headers=admin)
    assert refused.status_code == 409
    message = refused.json()["error"]["description"]
    assert "24 h only" in message and run.processor_key in message
    assert len(fake.keys["refund"]) == 3 and fake.effects["refund"] == 1

    # Once Stripe answers, an operator's resolution applies its answer.
    resolved = await stripe_gateway.client.post(f"/admin/workflows/{run.id}/resolve", headers=admin)
    assert resolved.status_code == 200, resolved.text
    assert resolved.json()["history"][-1]["detail"]["processor_answer"] == "REFUNDED"
    after = await shop.get(payment["id"])
    assert after["processor"]["amountRefunded"] == 100
    assert fake.effects["refund"] == 1
    assert_figures_add_up(after)


async def test_a_capture_made_in_stripes_dashboard_is_reported_not_taken_as_ours(
    stripe_gateway: Running, shop: Shop, fake: FakeStripe, db: Any
) -> None:
    payment = await create(shop)
    [intent] = fake.intents.values()
    intent.update(status="succeeded", amount_received=1000)  # captured in the dashboard
    answer = (await shop.capture(payment["id"], amount=400)).json()
    assert answer["processor"]["amountCaptured"] == 0  # not taken as this capture
    await stripe_gateway.services.engine.recovery.recover_due()  # asked with fresh figures
    answer = await shop.get(payment["id"])
    assert answer["processor"]["amountCaptured"] == 0
    assert "outside the gateway" in answer["statusReason"]["message"]
    run = await run_of(stripe_gateway, payment["id"], "capture")
    assert run.state == "stuck"
    _, history = await stripe_gateway.services.reads.run_with_history(run.id)
    assert history[-1].event == "reconciliation_needed"
    # A replay asks again and gets the same answer: the run stays for an operator to resolve.
    await stripe_gateway.services.engine.recovery.replay(run.id)
    assert (await stripe_gateway.services.reads.run(run.id)).state == "stuck"
    assert fake.effects["capture"] == 0


# ---------------------------------------------------------------- several captures of one intent


async def settled_as_stripe_says(
    running: Running, shop: Shop, fake: FakeStripe, payment_id: str, captured: int, captures: int
) -> None:
    """Once every run of the payment is done, the gateway's captured figure is Stripe's."""
    await until_finished(running, payment_id)
    [intent] = fake.intents.values()
    after = await shop.get(payment_id)
    assert after["processor"]["amountCaptured"] == intent["amount_received"] == captured
    assert fake.effects["capture"] == captures
    assert_figures_add_up(after)


async def test_a_lost_capture_is_never_taken_for_another_capture_of_the_same_amount(
    stripe_gateway: Running, shop: Shop, fake: FakeStripe
) -> None:
    payment = await create(shop)
    # A (500): Stripe answers 500 three times, having done nothing. B (500): Stripe captures,
    # and every answer is lost. Stripe's intent says 500 received: whose?
    fake.fail("capture", *(Fault(status=500) for _ in range(3)))
    await shop.capture(payment["id"], amount=500, final=False)
    fake.fail("capture", *(Fault(timeout_after_acting=True) for _ in range(3)))
    await shop.capture(payment["id"], amount=500, final=False)
    assert fake.effects["capture"] == 1
    # The gateway's figure is Stripe's, whatever order the recoveries took.
    await settled_as_stripe_says(stripe_gateway, shop, fake, payment["id"], 1000, captures=2)


async def test_a_capture_refused_after_another_closed_the_intent_is_not_taken_for_it(
    stripe_gateway: Running, shop: Shop, fake: FakeStripe
) -> None:
    payment = await create(shop)
    slow = asyncio.Event()
    fake.fail("capture", Fault(arrive=slow))  # A is slow on the network
    first = asyncio.create_task(shop.capture(payment["id"], amount=500, final=False))

    async def reserved() -> bool:  # A has its reservation...
        runs = await stripe_gateway.services.reads.list_runs(payment_id=payment["id"])
        return any(r.kind == "capture" for r in runs)

    await until(reserved, "the first capture to be under way")
    closing = await shop.capture(payment["id"], amount=500, final=True)  # ...B closes the intent
    assert closing.json()["processor"]["amountCaptured"] == 500
    slow.set()  # A reaches Stripe: payment_intent_unexpected_state
    await first
    await settled_as_stripe_says(stripe_gateway, shop, fake, payment["id"], 500, captures=1)


async def test_a_run_whose_lease_merely_ran_out_is_not_resolved_while_its_holder_may_send(
    stripe_gateway: Running, shop: Shop, fake: FakeStripe, db: Any
) -> None:
    admin = await operator_headers(db)
    payment = await lost_refund(shop, fake, db)
    run = await run_of(stripe_gateway, payment["id"], "refund")
    # A holder that stopped renewing its lease (partitioned) may still be sending the refund.
    await db.execute(
        "UPDATE workflow_runs SET lease_owner = 'elsewhere',"
        " lease_expires_at = now() - interval '1 second' WHERE id = %s",
        (run.id,),
    )
    refused = await stripe_gateway.client.post(f"/admin/workflows/{run.id}/resolve", headers=admin)
    assert refused.status_code == 409 and "replay it" in refused.text
    assert fake.asked == 0  # not even asked: its answer could not be final
    replayed = await stripe_gateway.client.post(f"/admin/workflows/{run.id}/replay", headers=admin)
    assert replayed.status_code == 200 and replayed.json()["state"] == "succeeded"
    assert (await shop.get(payment["id"]))["processor"]["amountRefunded"] == 100
    assert fake.effects["refund"] == 1


async def test_an_authorization_awaiting_3ds_cannot_be_resolved_while_stripe_says_pending(
    stripe_gateway: Running, shop: Shop, fake: FakeStripe, db: Any
) -> None:
    admin = await operator_headers(db)
    payment = await create(shop, method="pm_card_threeDSecure2Required")
    assert payment["status"] == "PENDING"
    [run] = await stripe_gateway.services.reads.list_runs(payment_id=payment["id"])
    refused = await stripe_gateway.client.post(
        f"/admin/workflows/{run.id}/resolve",
        headers=admin,
        json={"outcome": "failed"},
    )
    assert refused.status_code == 409 and "still pending" in refused.text
    after = await stripe_gateway.services.reads.run(run.id)
    assert (after.state, after.lease_owner) == ("running", None)  # as it was, for the worker
    assert (await shop.get(payment["id"]))["status"] == "PENDING"


async def test_a_run_taken_over_from_a_lapsed_holder_is_not_resolved_while_it_may_send(
    stripe_gateway: Running, shop: Shop, fake: FakeStripe, db: Any
) -> None:
    admin = await operator_headers(db)
    payment = await lost_refund(shop, fake, db)
    run = await run_of(stripe_gateway, payment["id"], "refund")
    # Its holder lost its lease (partitioned, still sending); a worker takes the run over on its
    # last recovery and marks it stuck at once.
    await db.execute(
        "UPDATE workflow_runs SET lease_owner = 'elsewhere', recoveries = 99,"
        " lease_expires_at = now() - interval '1 second', next_attempt_at = now()"
        " WHERE id = %s",
        (run.id,),
    )
    await stripe_gateway.services.engine.recovery.recover_due()
    assert (await stripe_gateway.services.reads.run(run.id)).state == "stuck"
    refused = await stripe_gateway.client.post(f"/admin/workflows/{run.id}/resolve", headers=admin)
    assert refused.status_code == 409 and "may still be sending" in refused.text
    # Once that holder's time limits are over, it can be resolved.
    await db.execute(
        "UPDATE workflow_runs SET quiet_until = now() - interval '1 second' WHERE id = %s",
        (run.id,),
    )
    resolved = await stripe_gateway.client.post(f"/admin/workflows/{run.id}/resolve", headers=admin)
    assert resolved.status_code == 200, resolved.text
    assert (await shop.get(payment["id"]))["processor"]["amountRefunded"] == 100
    assert fake.effects["refund"] == 1
