"""Unknown outcomes, recovery by the worker, stuck runs, and an operator's replay."""

from __future__ import annotations

import asyncio
from typing import Any

import msgspec
import pytest

from gateway import accounts
from gateway.settings import Settings
from tests.conftest import run_gateway
from tests.integration.conftest import GatewayFactory, Running, SomeMerchant
from tests.integration.shop import Shop, assert_figures_add_up

ATTEMPTS, MAX_RECOVERIES = 2, 2
# The operation's calls: the first request's, then those of every automatic recovery.
OPERATION_CALLS = ATTEMPTS * (1 + MAX_RECOVERIES)
# The calls that time out: the operation's, and every recovery's status questions before it
# re-sends (the sandbox counts both). The sandbox answers the next call: the operator's replay.
AUTOMATIC_CALLS = OPERATION_CALLS + ATTEMPTS * MAX_RECOVERIES


@pytest.fixture
async def strict(gateway: GatewayFactory, settings: Settings) -> Running:
    return await gateway(
        msgspec.structs.replace(
            settings, processor_attempts=ATTEMPTS, workflow_max_recoveries=MAX_RECOVERIES
        )
    )


@pytest.fixture
def strict_shop(strict: Running, merchant: SomeMerchant) -> Shop:
    return Shop(strict.client, merchant.key)


async def run_of(running: Running, payment_id: str, kind: str) -> Any:
    [run] = [
        r for r in await running.services.reads.list_runs(payment_id=payment_id) if r.kind == kind
    ]
    return run


async def until_stuck(running: Running, payment_id: str, kind: str) -> Any:
    for _ in range(2 * MAX_RECOVERIES + 2):  # a bound, not a clock
        run = await run_of(running, payment_id, kind)
        if run.state == "stuck":
            return run
        await running.services.engine.recovery.recover_due()
    pytest.fail(f"run did not get stuck: {run}")


async def operations(db: Any, payment_id: str, verb: str) -> int:
    cur = await db.execute(
        "SELECT count(*) FROM sandbox_operations WHERE reference = %s AND verb = %s",
        (payment_id, verb),
    )
    return int((await cur.fetchone())[0])


async def test_a_timeout_goes_stuck_is_listed_and_replayed_once(
    strict: Running, strict_shop: Shop, settings: Settings, db: Any
) -> None:
    payment = await strict_shop.create(
        1000, metadata={"sandbox_fault_on": "capture", "sandbox_timeouts": AUTOMATIC_CALLS}
    )
    response = await strict_shop.capture(payment["id"], amount=1000)
    assert response.status_code == 200
    unknown = response.json()
    assert unknown["status"] == "AUTHORIZED"  # keeps its status...
    assert unknown["statusReason"]["type"] == "GATEWAY_TIMEOUT"  # ...and says why
    assert unknown["processor"]["amountCaptured"] == 0
    assert unknown["transactions"][0]["processorStatusReason"]["type"] == "GATEWAY_TIMEOUT"

    run = await until_stuck(strict, payment["id"], "capture")
    assert run.attempts == OPERATION_CALLS

    listed = run_gateway(settings, "workflows", "list", "--state", "stuck")
    assert listed.returncode == 0, listed.stderr
    assert run.id in listed.stdout
    shown = run_gateway(settings, "workflows", "show", run.id)
    assert "outcome_unknown" in shown.stdout and "stuck" in shown.stdout

    replayed = run_gateway(settings, "workflows", "replay", run.id)
    assert replayed.returncode == 0, replayed.stderr
    assert f"replayed {run.id}: succeeded" in replayed.stdout
    assert "SETTLED" in replayed.stdout

    settled = await strict_shop.get(payment["id"])
    assert settled["status"] == "SETTLED"
    assert settled["processor"]["amountCaptured"] == 1000
    assert "statusReason" not in settled
    assert_figures_add_up(settled)
    assert await operations(db, payment["id"], "capture") == 1

    again = run_gateway(settings, "workflows", "replay", run.id)
    assert again.returncode == 1
    assert "already succeeded" in again.stderr


async def test_operators_list_inspect_and_replay_over_http(
    strict: Running, strict_shop: Shop, db: Any
) -> None:
    operator = (await accounts.create_key(db, kind="operator")).secret
    admin = {"X-API-KEY": operator}
    payment = await strict_shop.create(
        500, metadata={"sandbox_fault_on": "refund", "sandbox_timeouts": AUTOMATIC_CALLS}
    )
    await strict_shop.capture(payment["id"])
    await strict_shop.refund(payment["id"], amount=200)
    run = await until_stuck(strict, payment["id"], "refund")

    client = strict.client
    listed = (await client.get("/admin/workflows?state=stuck", headers=admin)).json()["data"]
    assert run.id in [r["id"] for r in listed]
    shown = (await client.get(f"/admin/workflows/{run.id}", headers=admin)).json()
    assert shown["state"] == "stuck" and shown["kind"] == "refund"
    assert shown["history"][0]["event"] == "started"
    assert shown["history"][-1]["event"] == "stuck"

    replayed = await client.post(f"/admin/workflows/{run.id}/replay", headers=admin)
    assert replayed.status_code == 200, replayed.text
    assert replayed.json()["state"] == "succeeded"
    refused = await client.post(f"/admin/workflows/{run.id}/replay", headers=admin)
    assert refused.status_code == 409
    assert "already succeeded" in refused.json()["error"]["description"]
    missing = await client.get("/admin/workflows/run_nope", headers=admin)
    assert missing.status_code == 404

    refunded = await strict_shop.get(payment["id"])
    assert refunded["processor"]["amountRefunded"] == 200
    assert_figures_add_up(refunded)
    merchant_key = {"X-API-KEY": strict_shop.key}
    assert (await client.get("/admin/workflows", headers=merchant_key)).status_code == 401


async def test_transient_errors_are_retried_with_the_same_processor_key(
    shop: Shop, db: Any
) -> None:
    payment = await shop.create(
        1000, metadata={"sandbox_fault_on": "capture", "sandbox_transient_errors": 2}
    )
    captured = (await shop.capture(payment["id"])).json()
    assert captured["status"] == "SETTLED"
    cur = await db.execute(
        "SELECT processor_key FROM sandbox_calls WHERE reference = %s AND verb = 'capture'",
        (payment["id"],),
    )
    keys = [row[0] for row in await cur.fetchall()]
    assert len(keys) == 3 and len(set(keys)) == 1
    assert await operations(db, payment["id"], "capture") == 1


async def test_an_asynchronous_settlement_is_settling_until_the_worker_confirms_it(
    running: Running, shop: Shop
) -> None:
    payment = await shop.create(1000, metadata={"sandbox_async_settlement": True})
    settling = (await shop.capture(payment["id"], amount=600, final=False)).json()
    assert settling["status"] == "SETTLING"
    assert settling["processor"]["amountCaptured"] == 0
    await running.services.engine.recovery.recover_due()
    settled = await shop.get(payment["id"])
    assert settled["status"] == "PARTIALLY_SETTLED"
    assert settled["processor"]["amountCaptured"] == 600
    assert_figures_add_up(settled)


async def test_an_authorization_whose_answer_was_lost_is_completed_by_the_worker(
    running: Running, shop: Shop, db: Any
) -> None:
    payment = await shop.create(
        700, metadata={"sandbox_fault_on": "authorize", "sandbox_timeouts": 3}
    )
    assert payment["status"] == "PENDING"
    assert payment["statusReason"]["type"] == "GATEWAY_TIMEOUT"
    await running.services.engine.recovery.recover_due()
    authorized = await shop.get(payment["id"])
    assert authorized["status"] == "AUTHORIZED"
    assert "statusReason" not in authorized
    assert await operations(db, payment["id"], "authorize") == 1


async def test_two_workers_resume_each_due_run_exactly_once(running: Running, shop: Shop) -> None:
    from gateway.services import build_engine

    payments = [
        await shop.create(300, metadata={"sandbox_fault_on": "capture", "sandbox_timeouts": 3})
        for _ in range(8)
    ]
    for payment in payments:
        assert (await shop.capture(payment["id"])).json()["statusReason"][
            "type"
        ] == "GATEWAY_TIMEOUT"
    services = running.services
    other_machine = build_engine(services.pool, services.settings)
    resumed = await asyncio.gather(
        services.engine.recovery.recover_due(), other_machine.recovery.recover_due()
    )
    assert sum(resumed) >= 8  # (and any other test's due runs)
    for payment in payments:
        run = await run_of(running, payment["id"], "capture")
        _, history = await services.reads.run_with_history(run.id)
        assert [h.event for h in history].count("recovery_started") == 1
        assert (await shop.get(payment["id"]))["status"] == "SETTLED"


async def test_the_engine_refuses_a_second_run_for_a_key_even_when_both_idempotency_stores_forgot(
    shop: Shop, settings: Settings, db: Any
) -> None:
    payment = await shop.create(900)
    first = await shop.capture(payment["id"], key="cap-backstop", amount=300, final=False)
    assert first.status_code == 200
    # Redis flushed and the idempotency table's record gone: only the engine's own
    # uniqueness, one run per (merchant, operation, payment, key), is left.
    await db.execute("DELETE FROM idempotency_keys WHERE key = 'cap-backstop'")
    from redis.asyncio import Redis

    redis = Redis.from_url(settings.redis_url)  # type: ignore[arg-type]
    await redis.flushall()
    await redis.aclose()
    again = await shop.capture(payment["id"], key="cap-backstop", amount=300, final=False)
    assert again.status_code == 409
    assert again.json()["error"]["errorId"] == "IdempotencyKeyAlreadyExists"
    assert (await shop.get(payment["id"]))["processor"]["amountCaptured"] == 300


async def test_a_payment_whose_authorization_is_unknown_cannot_be_cancelled_until_it_is_known(
    running: Running, shop: Shop
) -> None:
    payment = await shop.create(
        700, metadata={"sandbox_fault_on": "authorize", "sandbox_timeouts": 3}
    )
    assert payment["status"] == "PENDING"
    early = await shop.cancel(payment["id"])
    assert early.status_code == 400
    assert early.json()["error"]["errorId"] == "InvalidPaymentStatus"
    assert "still in progress" in early.json()["error"]["description"]
    await running.services.engine.recovery.recover_due()
    cancelled = (await shop.cancel(payment["id"])).json()
    assert cancelled["status"] == "CANCELLED"


async def test_capture_on_create_happens_when_the_worker_completes_the_authorization(
    running: Running, shop: Shop, merchant: SomeMerchant, db: Any
) -> None:
    await db.execute("UPDATE merchants SET capture_on_create = true WHERE id = %s", (merchant.id,))
    payment = await shop.create(
        900, metadata={"sandbox_fault_on": "authorize", "sandbox_timeouts": 3}
    )
    assert payment["status"] == "PENDING"
    await running.services.engine.recovery.recover_due()
    settled = await shop.get(payment["id"])
    assert settled["status"] == "SETTLED"
    assert settled["processor"]["amountCaptured"] == 900
    assert_figures_add_up(settled)


async def test_a_replay_that_cannot_be_done_leaves_the_run_stuck_as_it_was(
    strict: Running, strict_shop: Shop, db: Any
) -> None:
    operator = (await accounts.create_key(db, kind="operator")).secret
    admin = {"X-API-KEY": operator}
    payment = await strict_shop.create(
        500, metadata={"sandbox_fault_on": "refund", "sandbox_timeouts": AUTOMATIC_CALLS}
    )
    await strict_shop.capture(payment["id"])
    await strict_shop.refund(payment["id"], amount=200)
    run = await until_stuck(strict, payment["id"], "refund")
    # Its processor cannot be used now (an account that is gone; a run's transaction names it).
    for table, column in (("payments", "id"), ("transactions", "payment_id")):
        await db.execute(
            f"UPDATE {table} SET processor_account = 'gone' WHERE {column} = %s", (payment["id"],)
        )
    failed = await strict.client.post(f"/admin/workflows/{run.id}/replay", headers=admin)
    assert failed.status_code == 409, failed.text
    assert "could not be done" in failed.json()["error"]["description"]
    shown = (await strict.client.get(f"/admin/workflows/{run.id}", headers=admin)).json()
    assert (shown["state"], shown["leaseOwner"]) == ("stuck", None)
    assert shown["history"][-1]["event"] == "replay_failed"
    # Once it can be used again, the replay does it, once.
    for table, column in (("payments", "id"), ("transactions", "payment_id")):
        await db.execute(
            f"UPDATE {table} SET processor_account = NULL WHERE {column} = %s", (payment["id"],)
        )
    replayed = await strict.client.post(f"/admin/workflows/{run.id}/replay", headers=admin)
    assert replayed.status_code == 200 and replayed.json()["state"] == "succeeded"
    assert (await strict_shop.get(payment["id"]))["processor"]["amountRefunded"] == 200


# ---------------------------------------------------------------- keys the processor forgets


async def runs_history(running: Running, run_id: str) -> list[Any]:
    _, history = await running.services.reads.run_with_history(run_id)
    return history


async def test_a_retry_after_the_processor_forgot_the_key_asks_instead_of_refunding_twice(
    strict: Running, strict_shop: Shop, db: Any
) -> None:
    # The sandbox forgets keys at once: a repeat of the refund would be a second refund.
    payment = await strict_shop.create(
        500,
        metadata={
            "sandbox_fault_on": "refund",
            "sandbox_timeouts": 1,
            "sandbox_key_lifetime_seconds": 0,
        },
    )
    await strict_shop.capture(payment["id"])
    refunded = (await strict_shop.refund(payment["id"], amount=200)).json()
    assert refunded["processor"]["amountRefunded"] == 200
    assert await operations(db, payment["id"], "refund") == 1
    run = await run_of(strict, payment["id"], "refund")
    assert run.state == "succeeded"
    assert_figures_add_up(await strict_shop.get(payment["id"]))


async def test_a_recovery_applies_the_processors_answer_instead_of_resending(
    strict: Running, strict_shop: Shop, db: Any
) -> None:
    # The first pass's calls time out (the refund was done); the key is forgotten at once.
    payment = await strict_shop.create(
        500,
        metadata={
            "sandbox_fault_on": "refund",
            "sandbox_timeouts": ATTEMPTS,
            "sandbox_key_lifetime_seconds": 0,
        },
    )
    await strict_shop.capture(payment["id"])
    unknown = (await strict_shop.refund(payment["id"], amount=200)).json()
    assert unknown["processor"]["amountRefunded"] == 0
    await strict.services.engine.recovery.recover_due()
    settled = await strict_shop.get(payment["id"])
    assert settled["processor"]["amountRefunded"] == 200
    assert await operations(db, payment["id"], "refund") == 1
    run = await run_of(strict, payment["id"], "refund")
    [answer] = [h for h in await runs_history(strict, run.id) if h.event == "succeeded"]
    assert answer.detail["asked_status"] is True


async def test_without_an_answer_or_a_key_nothing_is_resent_and_an_operator_resolves_it(
    strict: Running, strict_shop: Shop, settings: Settings, db: Any
) -> None:
    operator = await accounts.create_key(db, kind="operator")
    admin = {"X-API-KEY": operator.secret}
    payment = await strict_shop.create(
        500,
        metadata={
            "sandbox_fault_on": "refund",
            "sandbox_timeouts": 1,
            "sandbox_key_lifetime_seconds": 0,
            "sandbox_status_unavailable": True,
        },
    )
    await strict_shop.capture(payment["id"])
    await strict_shop.refund(payment["id"], amount=200)
    run = await until_stuck(strict, payment["id"], "refund")
    assert await operations(db, payment["id"], "refund") == 1  # never re-sent

    # A replay would have to re-send blind: refused, saying what to check.
    refused = run_gateway(settings, "workflows", "replay", run.id)
    assert refused.returncode == 1
    assert "could not say whether it happened" in refused.stderr
    assert f"gateway workflows resolve {run.id}" in refused.stderr
    over_http = await strict.client.post(f"/admin/workflows/{run.id}/replay", headers=admin)
    assert over_http.status_code == 409 and run.processor_key in over_http.text
    # Resolving needs the operator's word, since the processor cannot give one.
    unsaid = await strict.client.post(f"/admin/workflows/{run.id}/resolve", headers=admin)
    assert unsaid.status_code == 409 and "--outcome" in unsaid.text
    bad = await strict.client.post(
        f"/admin/workflows/{run.id}/resolve", headers=admin, json={"outcome": "maybe"}
    )
    assert bad.status_code == 422
    assert (await run_of(strict, payment["id"], "refund")).state == "stuck"
    assert await operations(db, payment["id"], "refund") == 1

    resolved = await strict.client.post(
        f"/admin/workflows/{run.id}/resolve", headers=admin, json={"outcome": "succeeded"}
    )
    assert resolved.status_code == 200, resolved.text
    shown = resolved.json()
    assert shown["state"] == "succeeded"
    last = shown["history"][-1]
    assert last["event"] == "resolved"
    assert last["detail"]["by"] == f"operator key {operator.id}"
    assert last["detail"]["stated"] == "succeeded"
    after = await strict_shop.get(payment["id"])
    assert after["processor"]["amountRefunded"] == 200
    assert_figures_add_up(after)
    # The reservation is applied: 300 is left to refund, no more.
    assert (await strict_shop.refund(payment["id"], amount=301)).status_code == 422
    assert await operations(db, payment["id"], "refund") == 1


async def test_resolving_a_stuck_capture_applies_the_processors_answer_and_frees_a_cancel(
    strict: Running, strict_shop: Shop, settings: Settings, db: Any
) -> None:
    payment = await strict_shop.create(
        1000, metadata={"sandbox_fault_on": "capture", "sandbox_timeouts": AUTOMATIC_CALLS}
    )
    await strict_shop.capture(payment["id"], amount=400, final=False)
    run = await until_stuck(strict, payment["id"], "capture")
    # The stuck capture holds its 400: a capture of the rest would pass the authorization.
    too_much = await strict_shop.capture(payment["id"], amount=700, final=False)
    assert too_much.status_code == 422
    # The processor says the capture happened: an operator's "failed" is refused...
    contradicted = run_gateway(settings, "workflows", "resolve", run.id, "--outcome", "failed")
    assert contradicted.returncode == 1
    assert "the processor says the capture happened" in contradicted.stderr
    # ...and without a word of the operator's, the processor's answer is applied.
    resolved = run_gateway(settings, "workflows", "resolve", run.id)
    assert resolved.returncode == 0, resolved.stderr
    assert f"resolved {run.id}: succeeded" in resolved.stdout
    after = await strict_shop.get(payment["id"])
    assert after["processor"]["amountCaptured"] == 400
    assert_figures_add_up(after)
    [entry] = [h for h in await runs_history(strict, run.id) if h.event == "resolved"]
    assert entry.detail["by"].startswith("cli ") and entry.detail["processor_answer"] == "CAPTURED"
    assert (await strict_shop.cancel(payment["id"])).status_code == 200
    assert await operations(db, payment["id"], "capture") == 1
