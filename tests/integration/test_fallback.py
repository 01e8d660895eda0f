"""Fallback: an authorization refused by one processor account is tried on the next, only where
that cannot move money twice. Each account here is a sandbox account with its own behaviour."""

from __future__ import annotations

import asyncio
import random
from collections import Counter
from typing import Any

import pytest

from gateway.settings import Settings
from processors.base import Call, Outcome, Result
from processors.errors import OutcomeUnknown
from processors.sandbox import SandboxProcessor
from tests.integration.conftest import Running, SomeMerchant
from tests.integration.shop import Shop
from workflows import routing
from workflows.accounts import add_account
from workflows.credentials import CredentialBox
from workflows.runner import Runner

BEHAVIOURS: dict[str, dict[str, Any]] = {
    "soft": {"authorize": "soft_decline"},
    "soft2": {"authorize": "soft_decline"},
    "hard": {"authorize": "hard_decline"},
    "down": {"unreachable": True},
    "ok": {},
    "ok2": {},
    "slow-ok": {"timesOut": True},
    "slow-soft": {"timesOut": True, "authorize": "soft_decline"},
}


@pytest.fixture
async def routed(db: Any, settings: Settings, merchant: SomeMerchant) -> Any:
    """Route the merchant's payments to accounts in the order given."""
    box = CredentialBox(settings.secret_key)
    for name, behaviour in BEHAVIOURS.items():
        await add_account(
            db,
            box,
            merchant_id=merchant.id,
            name=name,
            kind="sandbox",
            credentials={},
            settings=behaviour,
        )

    async def route(*accounts: str) -> None:
        await routing.save_rules(
            db, merchant.id, {"rules": [{"name": "all", "accounts": list(accounts)}]}, "test"
        )

    return route


def sales(payment: dict[str, Any]) -> list[tuple[str, str]]:
    """Each SALE as (the account that handled it, its status)."""
    return [
        (t["processorMerchantId"], t["processorStatus"])
        for t in payment["transactions"]
        if t["transactionType"] == "SALE"
    ]


async def authorize_keys(db: Any, payment_id: str) -> list[str]:
    """The processor keys of the authorization calls the sandbox received, in order."""
    cur = await db.execute(
        "SELECT processor_key FROM sandbox_calls WHERE reference = %s AND verb = 'authorize' "
        "ORDER BY at",
        (payment_id,),
    )
    keys: list[str] = []
    for (key,) in await cur.fetchall():
        if key not in keys:
            keys.append(key)
    return keys


async def authorize_operations(db: Any, payment_id: str) -> int:
    cur = await db.execute(
        "SELECT count(*) FROM sandbox_operations WHERE reference = %s AND verb = 'authorize'",
        (payment_id,),
    )
    return int((await cur.fetchone())[0])


async def history(running: Running, payment_id: str) -> list[Any]:
    [run] = [
        r
        for r in await running.services.reads.list_runs(payment_id=payment_id)
        if r.kind == "authorize"
    ]
    return (await running.services.reads.run_with_history(run.id))[1]


async def test_a_soft_decline_is_authorized_on_the_next_account_and_follow_ups_go_there(
    running: Running, shop: Shop, routed: Any, db: Any
) -> None:
    await routed("soft", "ok")
    payment = await shop.create(2500)
    assert payment["status"] == "AUTHORIZED"
    assert payment["processor"]["processorMerchantId"] == "ok"
    shown = await shop.get(payment["id"])
    assert sales(shown) == [("soft", "DECLINED"), ("ok", "AUTHORIZED")]
    declined = shown["transactions"][0]["processorStatusReason"]
    assert (declined["declineType"], declined["code"]) == ("SOFT_DECLINE", "DO_NOT_HONOR")
    # Two attempts, each with its own processor key, each done once.
    keys = await authorize_keys(db, payment["id"])
    assert len(keys) == 2 and keys[0] != keys[1]
    assert await authorize_operations(db, payment["id"]) == 2
    events = [h.event for h in await history(running, payment["id"])]
    assert events == ["started", "fell_back", "succeeded"]

    # The capture and the refund go to the account that authorized: its authorization's id.
    captured = (await shop.capture(payment["id"])).json()
    assert captured["status"] == "SETTLED"
    refunded = await shop.refund(payment["id"], amount=500)
    assert refunded.status_code == 200, refunded.text
    authorized_id = shown["transactions"][1]["processorTransactionId"]
    cur = await db.execute(
        "SELECT verb, processor_transaction_id FROM sandbox_operations "
        "WHERE reference = %s AND verb = 'capture'",
        (payment["id"],),
    )
    assert await cur.fetchall() == [("capture", authorized_id)]
    final = await shop.get(payment["id"])
    refund = [t for t in final["transactions"] if t["transactionType"] == "REFUND"]
    assert [(t["processorMerchantId"], t["processorStatus"]) for t in refund] == [("ok", "SETTLED")]


async def test_a_hard_decline_is_final(shop: Shop, routed: Any, db: Any) -> None:
    await routed("hard", "ok")
    payment = await shop.create(2500)
    assert payment["status"] == "DECLINED"
    assert payment["statusReason"]["declineType"] == "HARD_DECLINE"
    assert sales(await shop.get(payment["id"])) == [("hard", "DECLINED")]
    assert len(await authorize_keys(db, payment["id"])) == 1  # the next account never called


async def test_an_unreachable_account_is_passed_to_the_next(shop: Shop, routed: Any) -> None:
    await routed("down", "ok")
    payment = await shop.create(2500)
    assert payment["status"] == "AUTHORIZED"
    assert sales(await shop.get(payment["id"])) == [("down", "FAILED"), ("ok", "AUTHORIZED")]


async def test_when_every_account_refuses_the_last_reason_is_the_payments(
    running: Running, shop: Shop, routed: Any
) -> None:
    await routed("soft", "down", "soft2")
    payment = await shop.create(2500)
    assert payment["status"] == "DECLINED"
    assert payment["statusReason"]["code"] == "DO_NOT_HONOR"
    shown = await shop.get(payment["id"])
    assert sales(shown) == [("soft", "DECLINED"), ("down", "FAILED"), ("soft2", "DECLINED")]
    events = [h.event for h in await history(running, payment["id"])]
    assert events == ["started", "fell_back", "fell_back", "failed"]


async def test_an_unknown_outcome_is_resolved_before_any_other_account_is_called(
    running: Running, shop: Shop, routed: Any, db: Any
) -> None:
    # The first account authorized, but its answer was lost: the next is never called.
    await routed("slow-ok", "ok")
    lost = await shop.create(2500)
    assert lost["status"] == "PENDING"
    assert lost["statusReason"]["type"] == "GATEWAY_TIMEOUT"
    assert len(await authorize_keys(db, lost["id"])) == 1
    await running.services.engine.recovery.recover_due()
    authorized = await shop.get(lost["id"])
    assert authorized["status"] == "AUTHORIZED"
    assert sales(authorized) == [("slow-ok", "AUTHORIZED")]
    assert len(await authorize_keys(db, lost["id"])) == 1

    # The first account declined (softly) and its answer was lost: once the processor says so,
    # and only then, the next account tries.
    await routed("slow-soft", "ok")
    declined = await shop.create(2500)
    assert declined["status"] == "PENDING"
    assert len(await authorize_keys(db, declined["id"])) == 1
    await running.services.engine.recovery.recover_due()
    moved = await shop.get(declined["id"])
    assert moved["status"] == "AUTHORIZED"
    assert sales(moved) == [("slow-soft", "DECLINED"), ("ok", "AUTHORIZED")]
    assert len(await authorize_keys(db, declined["id"])) == 2


async def test_a_repeated_request_does_not_repeat_a_finished_attempt(
    shop: Shop, routed: Any, db: Any
) -> None:
    await routed("soft", "ok")
    body = {
        "orderId": "o-77",
        "currencyCode": "EUR",
        "amount": 2500,
        "paymentMethodToken": await shop.tokenize(),
    }
    first = (await shop.call("POST", "/payments", body, key="order-77")).json()
    again = (await shop.call("POST", "/payments", body, key="order-77")).json()["error"]
    assert again["errorId"] == "IdempotencyKeyAlreadyExists"
    assert (again["paymentId"], again["paymentStatus"]) == (first["id"], "AUTHORIZED")
    assert await authorize_operations(db, first["id"]) == 2
    assert len(await authorize_keys(db, first["id"])) == 2


class ProcessDied(Exception):
    """Stands for the process dying between two attempts."""


async def test_a_crash_between_two_attempts_resumes_without_repeating_the_first(
    running: Running,
    shop: Shop,
    merchant: SomeMerchant,
    routed: Any,
    db: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    await routed("soft", "ok")
    passes = 0
    original = Runner._pass

    async def dies_before_the_second_attempt(self: Runner, *args: Any) -> Any:
        nonlocal passes
        passes += 1
        if passes == 2:
            raise ProcessDied()
        return await original(self, *args)

    monkeypatch.setattr(Runner, "_pass", dies_before_the_second_attempt)
    response = await shop.call(
        "POST",
        "/payments",
        {
            "orderId": "o-crash",
            "currencyCode": "EUR",
            "amount": 2500,
            "paymentMethodToken": await shop.tokenize(),
        },
    )
    assert response.status_code == 500
    monkeypatch.undo()
    cur = await db.execute(
        "SELECT id FROM payments WHERE merchant_id = %s AND order_id = 'o-crash'", (merchant.id,)
    )
    [(payment_id,)] = await cur.fetchall()
    assert len(await authorize_keys(db, payment_id)) == 1
    # The dead process's lease runs out (made so here, not waited for); a worker resumes.
    await db.execute(
        "UPDATE workflow_runs SET lease_expires_at = now() - interval '1 second', "
        "next_attempt_at = now() WHERE payment_id = %s",
        (payment_id,),
    )
    await running.services.engine.recovery.recover_due()
    resumed = await shop.get(payment_id)
    assert resumed["status"] == "AUTHORIZED"
    assert sales(resumed) == [("soft", "DECLINED"), ("ok", "AUTHORIZED")]
    assert await authorize_operations(db, payment_id) == 2  # the first attempt not repeated
    assert len(await authorize_keys(db, payment_id)) == 2


async def test_a_held_payment_is_authorized_on_the_processor_the_merchant_names(
    shop: Shop, merchant: SomeMerchant, routed: Any, db: Any
) -> None:
    await routed("ok")  # the accounts, then rules of this test's own
    await routing.save_rules(
        db,
        merchant.id,
        {
            "rules": [
                {"name": "hold-large", "when": {"amount": {"min": 100000}}, "accounts": []},
                {"name": "default", "accounts": ["ok"]},
            ]
        },
        "test",
    )
    held = await shop.create(150000)
    assert held["status"] == "PENDING" and held["transactions"] == []
    assert "processor" not in held  # sent to no processor yet
    listed = (await shop.call("GET", "/payments?status=PENDING")).json()["data"]
    assert "processor" not in next(p for p in listed if p["id"] == held["id"])
    # A held payment is cancelled with nothing to void.
    other = await shop.create(100000)
    cancelled = await shop.cancel(other["id"])
    assert cancelled.status_code == 200, cancelled.text
    assert cancelled.json()["status"] == "CANCELLED"
    assert len(await authorize_keys(db, other["id"])) == 0

    async def authorize(payment_id: str, **processor: str) -> Any:
        return await shop.call(
            "POST", f"/payments/{payment_id}/authorize", {"processor": processor}
        )

    unknown = await authorize(held["id"], processorMerchantId="nowhere")
    assert (unknown.status_code, unknown.json()["error"]["errorId"]) == (
        400,
        "MerchantAccountNotFound",
    )
    # The merchant's own id names every built-in processor: which one must be said.
    ambiguous = await authorize(held["id"], processorMerchantId=merchant.id)
    assert ambiguous.json()["error"]["errorId"] == "MerchantAccountConflict"
    missing = await shop.call("POST", f"/payments/{held['id']}/authorize", {})
    assert missing.status_code == 422
    assert (
        missing.json()["error"]["validationErrors"][0]["model"] == "PaymentAuthorizationAPIRequest"
    )
    assert (await shop.get(held["id"]))["transactions"] == []  # nothing changed

    authorized = await authorize(held["id"], processorMerchantId="ok2")
    assert authorized.status_code == 200, authorized.text
    body = authorized.json()
    assert body["status"] == "AUTHORIZED"
    assert body["processor"]["processorMerchantId"] == "ok2"
    assert sales(body) == [("ok2", "AUTHORIZED")]
    again = await authorize(held["id"], processorMerchantId="ok2")
    assert again.json()["error"]["errorId"] == "PaymentAlreadyAuthorized"
    assert len(await authorize_keys(db, held["id"])) == 1
    captured = (await shop.capture(held["id"])).json()
    assert captured["status"] == "SETTLED" and captured["processor"]["processorMerchantId"] == "ok2"

    on_builtin = await shop.create(200000)
    named = await authorize(on_builtin["id"], processorMerchantId=merchant.id, name="SANDBOX")
    assert named.json()["status"] == "AUTHORIZED"
    assert named.json()["processor"]["name"] == "SANDBOX"
    # A payment a rule placed is not authorized again elsewhere.
    placed = await shop.create(2500)
    elsewhere = await authorize(placed["id"], processorMerchantId="ok2")
    assert elsewhere.json()["error"]["errorId"] == "PaymentAlreadyAuthorized"


async def test_rules_route_by_the_cards_issuer_country_and_the_orders_country(
    shop: Shop, merchant: SomeMerchant, routed: Any, db: Any
) -> None:
    await routed("ok")
    await routing.save_rules(
        db,
        merchant.id,
        {
            "rules": [
                {"name": "gb-cards", "when": {"issuer_country": ["GB"]}, "accounts": ["ok2"]},
                {"name": "de-orders", "when": {"order_country": ["DE"]}, "accounts": ["soft"]},
                {"name": "default", "accounts": ["ok"]},
            ]
        },
        "test",
    )
    british = await shop.create(1000, card="5252525252525258")  # the sandbox's BIN data: GB
    assert british["processor"]["processorMerchantId"] == "ok2"
    german = await shop.create(1000, order={"countryCode": "DE"})
    assert german["processor"]["processorMerchantId"] == "soft"
    elsewhere = await shop.create(1000, order={"countryCode": "FR"})
    assert elsewhere["processor"]["processorMerchantId"] == "ok"


async def test_a_weighted_split_sends_each_account_its_share(
    running: Running, shop: Shop, merchant: SomeMerchant, routed: Any, db: Any
) -> None:
    await routed("ok")
    await routing.save_rules(
        db,
        merchant.id,
        {
            "rules": [
                {
                    "name": "split",
                    "split": [{"account": "ok", "weight": 70}, {"account": "ok2", "weight": 30}],
                }
            ]
        },
        "test",
    )
    running.services.engine.payments.draw = random.Random(20261202).random  # a fixed seed
    saved = await shop.call(  # saved for a customer: one card for all the payments
        "POST", f"/payment-instruments/{await shop.tokenize()}/vault", {"customerId": "c-1"}
    )
    token = saved.json()["token"]
    chosen: Counter[str] = Counter()
    for number in range(300):
        body = {
            "orderId": f"o-{number}",
            "currencyCode": "EUR",
            "amount": 100,
            "paymentMethodToken": token,
        }
        payment = (await shop.call("POST", "/payments", body)).json()
        assert payment["status"] == "AUTHORIZED"
        chosen[payment["processor"]["processorMerchantId"]] += 1
    assert set(chosen) == {"ok", "ok2"}
    assert abs(chosen["ok"] / 300 - 0.7) < 0.08, chosen  # within tolerance of 70/30


async def test_two_authorizations_of_a_held_payment_at_once_authorize_it_once(
    shop: Shop, merchant: SomeMerchant, routed: Any, db: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The second waits on the payment's lock while the first places it; once it has the lock
    it must see the first's SALE (a read joined to the lock would not)."""
    await routed("ok")
    await routing.save_rules(db, merchant.id, {"rules": [{"name": "hold", "accounts": []}]}, "t")
    held = await shop.create(150000)
    original = routing.named_route
    first = True

    async def holds_the_lock_until_the_other_waits(*args: Any) -> Any:
        nonlocal first
        if first:
            first = False
            for _ in range(2000):  # a bound, not a clock: until the other request waits on us
                cur = await db.execute(
                    "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'"
                )
                if (await cur.fetchone())[0]:
                    break
                await asyncio.sleep(0.01)
            else:
                pytest.fail("the second authorization never waited on the payment's lock")
        return await original(*args)

    monkeypatch.setattr(routing, "named_route", holds_the_lock_until_the_other_waits)

    async def authorize(account: str) -> Any:
        return await shop.call(
            "POST",
            f"/payments/{held['id']}/authorize",
            {"processor": {"processorMerchantId": account}},
        )

    answers = await asyncio.gather(authorize("ok"), authorize("ok2"))
    assert sorted(a.status_code for a in answers) == [200, 400]
    refused = next(a for a in answers if a.status_code == 400).json()["error"]
    assert refused["errorId"] in ("InvalidPaymentStatus", "PaymentAlreadyAuthorized")
    assert await authorize_operations(db, held["id"]) == 1
    assert len(sales(await shop.get(held["id"]))) == 1


async def test_no_fallback_authorizes_a_payment_whose_cancel_is_under_way(
    running: Running, shop: Shop, routed: Any, db: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """As with Stripe: the first account's authorization waits for 3-D Secure; the merchant
    cancels, and the void's answer is lost; the processor then says the authorization is over
    (FAILED). That is not a reason to authorize on the next account: the merchant cancelled."""
    voided = False
    authorize, status, cancel = (
        SandboxProcessor.authorize,
        SandboxProcessor.status,
        SandboxProcessor.cancel,
    )

    def plays_3ds(processor: SandboxProcessor) -> bool:
        return processor._settings.authorize == "hard_decline"  # the "hard" account, here

    async def awaits_3ds(self: SandboxProcessor, call: Call) -> Result:
        if plays_3ds(self):
            return Result(Outcome.PENDING, "pi_3ds", None, "3DS_AUTHENTICATION")
        return await authorize(self, call)

    async def over_once_voided(self: SandboxProcessor, call: Call) -> Result:
        if plays_3ds(self) and call.verb == "authorize":
            return Result(Outcome.FAILED if voided else Outcome.PENDING, "pi_3ds")
        return await status(self, call)

    async def voids_and_loses_the_answer(self: SandboxProcessor, call: Call) -> Result:
        nonlocal voided
        if plays_3ds(self):
            voided = True
            raise OutcomeUnknown("voided; the answer was lost")
        return await cancel(self, call)

    monkeypatch.setattr(SandboxProcessor, "authorize", awaits_3ds)
    monkeypatch.setattr(SandboxProcessor, "status", over_once_voided)
    monkeypatch.setattr(SandboxProcessor, "cancel", voids_and_loses_the_answer)
    await routed("hard", "ok")
    payment = await shop.create(2500)
    assert payment["status"] == "PENDING"
    await shop.cancel(payment["id"])
    assert voided
    await db.execute(
        "UPDATE workflow_runs SET next_attempt_at = now() "
        "WHERE payment_id = %s AND state = 'running'",
        (payment["id"],),
    )
    await running.services.engine.recovery.recover_due()
    shown = await shop.get(payment["id"])
    assert [account for account, _ in sales(shown)] == ["hard"]  # no second attempt
    assert await authorize_operations(db, payment["id"]) == 0  # (the "hard" one keeps no ledger)


async def test_an_attempt_an_operator_resolves_as_not_done_goes_on_to_the_next_account(
    running: Running, shop: Shop, routed: Any, db: Any
) -> None:
    await routed("slow-soft", "ok")
    # The first account's answer is lost and it cannot answer status questions either.
    payment = await shop.create(2500, metadata={"sandbox_status_unavailable": True})
    assert payment["status"] == "PENDING"
    [run] = [r for r in await running.services.reads.list_runs(payment_id=payment["id"])]
    for _ in range(20):  # a bound, not a clock: until the recoveries give up
        if (await running.services.reads.run(run.id)).state == "stuck":
            break
        await db.execute(
            "UPDATE workflow_runs SET next_attempt_at = now() WHERE id = %s AND state = 'running'",
            (run.id,),
        )
        await running.services.engine.recovery.recover_due()
    else:
        pytest.fail("the run never got stuck")
    assert len(await authorize_keys(db, payment["id"])) == 1  # the next account never called

    resolved = await running.services.engine.recovery.resolve(run.id, happened=False, by="test")
    assert resolved.state == "running"  # on to the next attempt, for the worker
    await running.services.engine.recovery.recover_due()
    shown = await shop.get(payment["id"])
    assert shown["status"] == "AUTHORIZED"
    assert sales(shown) == [("slow-soft", "FAILED"), ("ok", "AUTHORIZED")]
