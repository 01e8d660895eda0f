"""X-Idempotency-Key, row by row of the reference README's table, on real Redis and PostgreSQL."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import httpx
import msgspec
from redis.asyncio import Redis

from gateway.http.idempotency import IdempotencyScope, fingerprint
from gateway.settings import Settings
from tests.integration.conftest import GatewayFactory, Probe, SomeMerchant, new_merchant


def capture(
    client: httpx.AsyncClient,
    merchant: SomeMerchant,
    key: str,
    amount: int = 100,
    target: str = "pay_1",
) -> Any:
    return client.post(
        f"/probe/{target}/capture",
        json={"amount": amount},
        headers={"X-API-KEY": merchant.key, "X-Idempotency-Key": key},
    )


async def fifty_at_once(
    client: httpx.AsyncClient, merchant: SomeMerchant, probe: Probe, key: str
) -> list[httpx.Response]:
    """Fifty requests with one key at once; the winner is held open until the other 49 have
    been answered, so nothing depends on timing."""
    probe.gate = asyncio.Event()
    tasks = [asyncio.create_task(capture(client, merchant, key)) for _ in range(50)]
    pending = set(tasks)
    answered: list[httpx.Response] = []
    while len(answered) < 49:
        done, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
        answered += [task.result() for task in done]
    probe.gate.set()
    answered += [await task for task in pending]
    return answered


async def redis_client(settings: Settings) -> Redis:
    assert settings.redis_url
    return Redis.from_url(settings.redis_url)


async def test_a_processed_key_is_answered_409_with_the_payment(
    client: httpx.AsyncClient, merchant: SomeMerchant, probe: Probe
) -> None:
    first = await capture(client, merchant, "k-processed")
    assert first.status_code == 200
    again = await capture(client, merchant, "k-processed")
    assert again.status_code == 409
    error = again.json()["error"]
    assert error["errorId"] == "IdempotencyKeyAlreadyExists"
    assert error["paymentId"] == "pay_pay_1"
    assert error["paymentStatus"] == "SETTLED"
    assert probe.executions == 1


async def test_a_key_still_in_flight_is_409_in_progress_with_retry_after(
    client: httpx.AsyncClient, merchant: SomeMerchant, probe: Probe
) -> None:
    probe.gate = asyncio.Event()
    first = asyncio.create_task(capture(client, merchant, "k-flight"))
    await probe.entered.wait()
    second = await capture(client, merchant, "k-flight")
    assert second.status_code == 409
    assert second.json()["error"]["errorId"] == "IdempotencyKeyInProgress"
    assert int(second.headers["retry-after"]) >= 1
    probe.gate.set()
    assert (await first).status_code == 200
    assert probe.executions == 1


async def test_the_same_key_with_a_different_body_is_422_reused(
    client: httpx.AsyncClient, merchant: SomeMerchant, probe: Probe
) -> None:
    assert (await capture(client, merchant, "k-body", amount=100)).status_code == 200
    other = await capture(client, merchant, "k-body", amount=101)
    assert other.status_code == 422
    assert other.json()["error"]["errorId"] == "IdempotencyKeyReused"
    assert probe.executions == 1


async def test_the_same_body_in_another_key_order_or_spacing_is_the_same_request(
    client: httpx.AsyncClient, merchant: SomeMerchant, probe: Probe
) -> None:
    headers = {"X-API-KEY": merchant.key, "X-Idempotency-Key": "k-canon"}
    first = await client.post(
        "/probe/p/capture", content=b'{"amount":5,"note":"n"}', headers=headers
    )
    assert first.status_code == 200
    second = await client.post(
        "/probe/p/capture", content=b'{ "note": "n",\n "amount": 5 }', headers=headers
    )
    assert second.json()["error"]["errorId"] == "IdempotencyKeyAlreadyExists"


async def test_a_key_names_one_request_of_its_merchant_whatever_the_payment(
    client: httpx.AsyncClient, merchant: SomeMerchant, probe: Probe, db: Any
) -> None:
    other_merchant = await new_merchant(db)
    assert (await capture(client, merchant, "k-scope", target="pay_a")).status_code == 200
    reused = await capture(client, merchant, "k-scope", target="pay_b")
    assert reused.status_code == 422
    assert reused.json()["error"]["errorId"] == "IdempotencyKeyReused"
    # Another merchant's key space is its own.
    assert (await capture(client, other_merchant, "k-scope", target="pay_a")).status_code == 200
    assert probe.executions == 2


async def test_a_request_refused_before_processing_does_not_burn_its_key(
    client: httpx.AsyncClient, merchant: SomeMerchant, probe: Probe
) -> None:
    refused = await capture(client, merchant, "k-retry", amount=13)
    assert refused.status_code == 400
    # The merchant fixes the request and retries with the same key: it is processed.
    fixed = await capture(client, merchant, "k-retry", amount=14)
    assert fixed.status_code == 200


async def test_a_request_that_fails_validation_or_auth_does_not_burn_its_key(
    client: httpx.AsyncClient, merchant: SomeMerchant, probe: Probe
) -> None:
    headers = {"X-API-KEY": merchant.key, "X-Idempotency-Key": "k-valid"}
    bad = await client.post("/probe/p/capture", json={"amount": "x"}, headers=headers)
    assert bad.status_code == 422
    unauth = await client.post(
        "/probe/p/capture", json={"amount": 1}, headers={**headers, "X-API-KEY": "nope"}
    )
    assert unauth.status_code == 401
    good = await client.post("/probe/p/capture", json={"amount": 1}, headers=headers)
    assert good.status_code == 200


async def test_a_crash_in_the_handler_does_not_burn_its_key(
    client: httpx.AsyncClient, merchant: SomeMerchant, probe: Probe
) -> None:
    assert (await capture(client, merchant, "k-crash", amount=500)).status_code == 500
    assert (await capture(client, merchant, "k-crash", amount=7)).status_code == 200


async def test_fifty_concurrent_requests_with_one_key_run_the_handler_exactly_once(
    client: httpx.AsyncClient, merchant: SomeMerchant, probe: Probe
) -> None:
    answered = await fifty_at_once(client, merchant, probe, "k-fifty")
    statuses = sorted(response.status_code for response in answered)
    assert statuses == [200] + [409] * 49
    assert {r.json()["error"]["errorId"] for r in answered if r.status_code == 409} == {
        "IdempotencyKeyInProgress"
    }
    assert probe.executions == 1


async def test_after_redis_is_flushed_a_processed_key_is_still_409(
    client: httpx.AsyncClient, merchant: SomeMerchant, probe: Probe, settings: Settings
) -> None:
    assert (await capture(client, merchant, "k-flush")).status_code == 200
    redis = await redis_client(settings)
    await redis.flushall()
    await redis.aclose()
    again = await capture(client, merchant, "k-flush")
    assert again.status_code == 409
    assert again.json()["error"]["errorId"] == "IdempotencyKeyAlreadyExists"
    assert again.json()["error"]["paymentId"] == "pay_pay_1"
    assert probe.executions == 1


async def test_after_redis_is_flushed_a_different_body_is_still_422(
    client: httpx.AsyncClient, merchant: SomeMerchant, probe: Probe, settings: Settings
) -> None:
    assert (await capture(client, merchant, "k-flush-body", amount=1)).status_code == 200
    redis = await redis_client(settings)
    await redis.flushall()
    await redis.aclose()
    other = await capture(client, merchant, "k-flush-body", amount=2)
    assert other.json()["error"]["errorId"] == "IdempotencyKeyReused"
    assert probe.executions == 1


async def test_records_are_kept_for_the_configured_retention(
    client: httpx.AsyncClient, merchant: SomeMerchant, settings: Settings, db: Any
) -> None:
    assert (await capture(client, merchant, "k-ttl", target="pay_ttl")).status_code == 200
    redis = await redis_client(settings)
    keys = [key async for key in redis.scan_iter(match=f"gw:{{{merchant.id}}}:idem:*k-ttl")]
    assert len(keys) == 1
    ttl = await redis.pttl(keys[0])
    await redis.aclose()
    day_ms = 24 * 3600 * 1000
    assert day_ms - 60_000 < ttl <= day_ms
    cur = await db.execute(
        "SELECT extract(epoch FROM expires_at - created_at) FROM idempotency_keys"
        " WHERE merchant_id = %s AND key = 'k-ttl'",
        (merchant.id,),
    )
    assert round(float((await cur.fetchone())[0])) == 24 * 3600


async def hold_in_postgresql(
    db: Any, merchant: SomeMerchant, target: str, key: str, lease_left: str
) -> None:
    """Another process claimed the key for capture of {"amount": 100} on `target`."""
    scope = IdempotencyScope(merchant.id, "capture", target)
    body = msgspec.json.Encoder(order="sorted").encode({"amount": 100, "note": ""})
    await db.execute(
        "INSERT INTO idempotency_keys (merchant_id, operation, target, key, fingerprint, state,"
        " locked_until, expires_at) VALUES (%s, 'capture', %s, %s, %s, 'in_flight',"
        " now() + %s::interval, now() + interval '1 day')",
        (merchant.id, target, key, fingerprint(scope, body), lease_left),
    )


async def test_a_key_held_by_a_request_whose_process_died_is_taken_over_after_its_lease(
    client: httpx.AsyncClient, merchant: SomeMerchant, probe: Probe, db: Any
) -> None:
    # A process claimed the key and died: its row is in flight with a lease that has run out.
    await hold_in_postgresql(db, merchant, "pay_dead", "k-dead", "-1 second")
    response = await capture(client, merchant, "k-dead", target="pay_dead")
    assert response.status_code == 200, response.text
    assert probe.executions == 1


async def test_a_key_held_by_a_live_request_in_postgresql_alone_is_409_in_progress(
    client: httpx.AsyncClient, merchant: SomeMerchant, probe: Probe, db: Any
) -> None:
    # Another process holds the key (lease still running) and Redis has forgotten it.
    await hold_in_postgresql(db, merchant, "pay_live", "k-live", "30 seconds")
    response = await capture(client, merchant, "k-live", target="pay_live")
    assert response.json()["error"]["errorId"] == "IdempotencyKeyInProgress"
    assert 1 <= int(response.headers["retry-after"]) <= 30
    assert probe.executions == 0


async def test_with_redis_stopped_requests_are_served_and_never_duplicated(
    gateway: GatewayFactory,
    settings: Settings,
    merchant: SomeMerchant,
    probe: Probe,
    doomed_redis: Any,
) -> None:
    own = msgspec.structs.replace(settings, redis_url=doomed_redis.connection_url)
    client = (await gateway(own)).client
    assert (await capture(client, merchant, "k-before")).status_code == 200

    doomed_redis.stop()

    # New requests are served on the PostgreSQL path...
    served = await capture(client, merchant, "k-after")
    assert served.status_code == 200
    # ...repeats of keys processed before and after the outage are still refused...
    for key in ("k-before", "k-after"):
        again = await capture(client, merchant, key)
        assert again.json()["error"]["errorId"] == "IdempotencyKeyAlreadyExists"
    # ...and fifty at once with one key still run the handler once.
    answered = await fifty_at_once(client, merchant, probe, "k-down-fifty")
    assert sorted(r.status_code for r in answered) == [200] + [409] * 49
    assert probe.executions == 3

    ready = await client.get("/health/ready")
    assert ready.status_code == 200
    assert ready.json()["redis"] == "unavailable"
    assert ready.json()["redisFailures"] >= 1


async def test_a_repeat_after_the_first_requests_lease_does_not_delete_its_record(
    running: Any, merchant: SomeMerchant, settings: Settings
) -> None:
    """The first request outlives its Redis lease; a repeat claims the key in Redis, the first
    finishes and records "processed", then the repeat fails: the record must stay."""
    guard = running.services.idempotency
    scope = IdempotencyScope(merchant.id, "capture", "pay_lease")
    body_fp = fingerprint(scope, b'{"amount":100}')
    redis = await redis_client(settings)
    redis_key = f"gw:{{{merchant.id}}}:idem:k-lease"
    try:
        first = guard.hold(scope, "k-lease", body_fp, durable=False)
        claim = await first.__aenter__()
        await redis.delete(redis_key)  # the first request's lease ran out
        repeat = guard.hold(scope, "k-lease", body_fp, durable=False)
        await repeat.__aenter__()  # Redis lets the repeat in: the engine's run would refuse it
        claim.processed("pay_lease", "SETTLED")
        await first.__aexit__(None, None, None)
        refused = RuntimeError("the engine answered: already exists")
        with contextlib.suppress(RuntimeError):
            await repeat.__aexit__(RuntimeError, refused, None)
        record = msgspec.json.decode(await redis.get(redis_key))
        assert record["s"] == "processed" and record["p"] == "pay_lease"
    finally:
        await redis.aclose()
