"""Concurrent money movements on one payment never pass its limits, and a key runs once."""

from __future__ import annotations

import asyncio
from collections import Counter
from typing import Any

import msgspec
import psycopg
from redis.asyncio import Redis

from gateway.settings import Settings
from tests.integration.conftest import until, until_waiting_for_lock
from tests.integration.shop import Shop, assert_figures_add_up


async def sandbox_calls(db: Any, payment_id: str, verb: str) -> list[str]:
    cur = await db.execute(
        "SELECT processor_key FROM sandbox_calls WHERE reference = %s AND verb = %s",
        (payment_id, verb),
    )
    return [row[0] for row in await cur.fetchall()]


async def test_a_hundred_concurrent_captures_and_refunds_never_pass_the_limits(shop: Shop) -> None:
    payment = await shop.create(10_000)
    captures = await asyncio.gather(
        *(shop.capture(payment["id"], key=f"cap-{n}", amount=150, final=False) for n in range(100))
    )
    outcome = Counter(r.status_code for r in captures)
    # 66 x 150 = 9,900 fits in 10,000; a 67th would not: every other capture is refused.
    assert outcome == {200: 66, 422: 34}, outcome
    assert {r.json()["error"]["errorId"] for r in captures if r.status_code == 422} == {
        "UnprocessableCaptureAmount"
    }
    after_captures = await shop.get(payment["id"])
    assert after_captures["processor"]["amountCaptured"] == 66 * 150
    assert after_captures["status"] == "PARTIALLY_SETTLED"
    assert_figures_add_up(after_captures)

    refunds = await asyncio.gather(
        *(shop.refund(payment["id"], key=f"ref-{n}", amount=120) for n in range(100))
    )
    outcome = Counter(r.status_code for r in refunds)
    # 82 x 120 = 9,840 fits in 9,900; 60 would be left, less than one more refund.
    assert outcome == {200: 82, 422: 18}, outcome
    final = await shop.get(payment["id"])
    assert final["processor"]["amountRefunded"] == 82 * 120
    assert len([t for t in final["transactions"] if t["type"] == "REFUND"]) == 82
    assert_figures_add_up(final)


async def test_fifty_concurrent_captures_with_one_key_call_the_processor_once(
    shop: Shop, db: Any
) -> None:
    payment = await shop.create(1000)
    responses = await asyncio.gather(
        *(shop.capture(payment["id"], key="same-capture", amount=400) for _ in range(50))
    )
    statuses = Counter(r.status_code for r in responses)
    assert statuses[200] == 1 and statuses[409] == 49, statuses
    assert {r.json()["error"]["errorId"] for r in responses if r.status_code == 409} <= {
        "IdempotencyKeyInProgress",
        "IdempotencyKeyAlreadyExists",
    }
    assert len(await sandbox_calls(db, payment["id"], "capture")) == 1
    after = await shop.get(payment["id"])
    assert after["processor"]["amountCaptured"] == 400
    repeat = await shop.capture(payment["id"], key="same-capture", amount=400)
    error = repeat.json()["error"]
    assert error["errorId"] == "IdempotencyKeyAlreadyExists"
    assert error["paymentId"] == payment["id"] and error["paymentStatus"] == "PARTIALLY_SETTLED"


async def test_a_repeated_create_with_one_key_makes_one_payment(shop: Shop) -> None:
    first = await shop.create(500, key="create-once")
    token = first["paymentMethod"]["paymentMethodToken"]
    body = {"orderId": "order-1", "currencyCode": "EUR", "amount": 500, "paymentMethodToken": token}
    # The same body again: already processed, and which payment it made.
    repeat = await shop.call("POST", "/payments", body, key="create-once")
    assert repeat.status_code == 409, repeat.text
    error = repeat.json()["error"]
    assert error["errorId"] == "IdempotencyKeyAlreadyExists"
    assert error["paymentId"] == first["id"]
    # Another body with the same key: the key is being reused.
    other = await shop.call("POST", "/payments", {**body, "amount": 501}, key="create-once")
    assert other.status_code == 422, other.text
    assert other.json()["error"]["errorId"] == "IdempotencyKeyReused"
    listing = (await shop.call("GET", "/payments")).json()["data"]
    assert [p["id"] for p in listing] == [first["id"]]


async def test_a_declined_create_burns_its_key_with_the_declined_status(shop: Shop) -> None:
    token = await shop.tokenize("4000000000000002")
    body = {"orderId": "o", "currencyCode": "EUR", "amount": 5, "paymentMethodToken": token}
    first = await shop.call("POST", "/payments", body, key="declined-once")
    assert first.json()["status"] == "DECLINED"
    again = await shop.call("POST", "/payments", body, key="declined-once")
    error = again.json()["error"]
    assert error["errorId"] == "IdempotencyKeyAlreadyExists"
    assert error["paymentId"] == first.json()["id"] and error["paymentStatus"] == "DECLINED"


async def redis_flushed(settings: Any) -> None:
    from redis.asyncio import Redis

    redis = Redis.from_url(settings.redis_url)
    await redis.flushall()
    await redis.aclose()


async def test_after_redis_forgot_a_payment_key_the_engine_still_tells_repeat_from_reuse(
    shop: Shop, settings: Any, db: Any
) -> None:
    payment = await shop.create(1000)
    first = await shop.capture(payment["id"], key="cap-forgotten", amount=300, final=False)
    assert first.status_code == 200
    await redis_flushed(settings)
    same = await shop.capture(payment["id"], key="cap-forgotten", amount=300, final=False)
    assert same.status_code == 409
    error = same.json()["error"]
    assert error["errorId"] == "IdempotencyKeyAlreadyExists"
    assert error["paymentId"] == payment["id"] and error["paymentStatus"] == "PARTIALLY_SETTLED"
    await redis_flushed(settings)
    other = await shop.capture(payment["id"], key="cap-forgotten", amount=301, final=False)
    assert other.status_code == 422
    assert other.json()["error"]["errorId"] == "IdempotencyKeyReused"
    assert len(await sandbox_calls(db, payment["id"], "capture")) == 1
    assert (await shop.get(payment["id"]))["processor"]["amountCaptured"] == 300


async def test_with_redis_stopped_payments_flow_and_one_key_still_captures_once(
    gateway: Any, settings: Any, merchant: Any, doomed_redis: Any, db: Any
) -> None:
    import msgspec

    running = await gateway(
        msgspec.structs.replace(settings, redis_url=doomed_redis.connection_url)
    )
    shop = Shop(running.client, merchant.key)
    doomed_redis.stop()
    payment = await shop.create(1000, key="create-without-redis")
    assert payment["status"] == "AUTHORIZED"
    responses = await asyncio.gather(
        *(shop.capture(payment["id"], key="cap-without-redis", amount=400) for _ in range(50))
    )
    statuses = Counter(r.status_code for r in responses)
    assert statuses[200] == 1 and statuses[409] == 49, statuses
    assert len(await sandbox_calls(db, payment["id"], "capture")) == 1
    repeat = await shop.capture(payment["id"], key="cap-without-redis", amount=400)
    assert repeat.json()["error"]["errorId"] == "IdempotencyKeyAlreadyExists"
    listing = (await shop.call("GET", "/payments")).json()["data"]
    assert [p["id"] for p in listing] == [payment["id"]]


async def test_a_captures_key_reused_on_a_refund_is_refused_and_refunds_nothing(
    shop: Shop, settings: Any
) -> None:
    payment = await shop.create(1000)
    assert (await shop.capture(payment["id"], key="one-key")).status_code == 200
    refund = await shop.refund(payment["id"], key="one-key", amount=100)
    assert refund.status_code == 422, refund.text
    assert refund.json()["error"]["errorId"] == "IdempotencyKeyReused"
    assert (await shop.get(payment["id"]))["processor"]["amountRefunded"] == 0


async def test_a_creates_key_reused_on_a_capture_is_refused_even_when_redis_forgot_it(
    shop: Shop, settings: Any
) -> None:
    payment = await shop.create(1000, key="create-key")
    redis = Redis.from_url(settings.redis_url)
    try:
        # Redis forgets the key (a flush, a failover): the engine's durable record decides.
        async for redis_key in redis.scan_iter(match="gw:*:idem:create-key"):
            await redis.delete(redis_key)
    finally:
        await redis.aclose()
    capture = await shop.capture(payment["id"], key="create-key")
    assert capture.status_code == 422, capture.text
    assert capture.json()["error"]["errorId"] == "IdempotencyKeyReused"
    assert (await shop.get(payment["id"]))["processor"]["amountCaptured"] == 0


async def test_a_finished_capture_left_in_flight_in_redis_is_answered_as_done(
    shop: Shop, settings: Any
) -> None:
    """The process that captured was killed after its run finished, before Redis heard: Redis
    still says "in flight". The engine's run is the truth: 409 AlreadyExists, not InProgress."""
    payment = await shop.create(1000)
    assert (await shop.capture(payment["id"], key="killed-capture")).status_code == 200
    redis = Redis.from_url(settings.redis_url)
    try:
        [redis_key] = [k async for k in redis.scan_iter(match="gw:*:idem:killed-capture")]
        record = msgspec.json.decode(await redis.get(redis_key))
        stale = {"s": "in_flight", "f": record["f"], "t": "dead-process"}
        await redis.set(redis_key, msgspec.json.encode(stale), px=60_000)
        repeat = await shop.capture(payment["id"], key="killed-capture")
        assert repeat.status_code == 409, repeat.text
        error = repeat.json()["error"]
        assert error["errorId"] == "IdempotencyKeyAlreadyExists"
        assert error["paymentId"] == payment["id"] and error["paymentStatus"] == "SETTLED"
        # Redis is taught the truth again.
        assert msgspec.json.decode(await redis.get(redis_key))["s"] == "processed"
    finally:
        await redis.aclose()


async def test_a_capture_whose_payment_changed_during_its_call_records_on_the_payment_as_it_is(
    shop: Shop, db: Any
) -> None:
    """Phase 3 writes without a lock only on the payment row as phase 1 left it: a capture
    reserved by another request while this one's call was out is kept, not overwritten."""
    # Every capture of this payment takes the sandbox 1.5 s: time for the second to reserve.
    payment = await shop.create(
        1000, metadata={"sandbox_fault_on": "capture", "sandbox_latency_ms": 1500}
    )
    first = asyncio.create_task(shop.capture(payment["id"], key="first", amount=300, final=False))

    async def first_reserved() -> bool:
        cur = await db.execute(
            "SELECT capture_reserved FROM payments WHERE id = %s", (payment["id"],)
        )
        row = await cur.fetchone()
        return bool(row and row[0] == 300)

    await until(first_reserved, "the first capture's phase 1")
    second = await shop.capture(payment["id"], key="second", amount=200, final=False)
    done = await first
    assert (done.status_code, second.status_code) == (200, 200), (done.text, second.text)
    after = await shop.get(payment["id"])
    assert after["processor"]["amountCaptured"] == 500
    assert after["status"] == "PARTIALLY_SETTLED"
    assert_figures_add_up(after)
    cur = await db.execute(
        "SELECT capture_reserved, amount_captured FROM payments WHERE id = %s", (payment["id"],)
    )
    assert await cur.fetchone() == (0, 500)


async def test_a_cancel_that_waited_for_the_authorizations_record_sees_its_processor_id(
    shop: Shop, db: Any, settings: Settings
) -> None:
    """A follow-up's phase 1 reads the payment with its SALE in one locking statement; one that
    waited for the lock while the authorization's answer was written takes the answer's
    processor id, not the snapshot's (none yet), and voids the authorization."""
    payment = await shop.create(1000)
    assert payment["status"] == "AUTHORIZED"
    cur = await db.execute(
        "SELECT sale_id, (SELECT processor_transaction_id FROM transactions t "
        "WHERE t.merchant_id = p.merchant_id AND t.id = p.sale_id) FROM payments p WHERE id = %s",
        (payment["id"],),
    )
    sale_id, authorization = await cur.fetchone()
    assert authorization
    # As the payment was while its authorization was out: pending, its SALE without an id.
    await db.execute(
        "UPDATE payments SET status = 'PENDING', amount_authorized = 0 WHERE id = %s",
        (payment["id"],),
    )
    await db.execute(
        "UPDATE transactions SET processor_transaction_id = NULL, processor_status = 'PENDING' "
        "WHERE id = %s",
        (sale_id,),
    )
    # The authorization's record, in a transaction that holds the payment's lock meanwhile.
    recorder = await psycopg.AsyncConnection.connect(settings.database_url or "")
    try:
        await recorder.execute(
            "UPDATE payments SET status = 'AUTHORIZED', amount_authorized = 1000 WHERE id = %s",
            (payment["id"],),
        )
        await recorder.execute(
            "UPDATE transactions SET processor_transaction_id = %s, "
            "processor_status = 'AUTHORIZED' WHERE id = %s",
            (authorization, sale_id),
        )
        cancel = asyncio.create_task(shop.cancel(payment["id"], key="cancel-after-wait"))

        await until_waiting_for_lock(
            db, "%FROM payments%FOR UPDATE%", "the cancel's phase 1 to wait for the payment's lock"
        )
        await recorder.commit()
    finally:
        await recorder.close()
    cancelled = await cancel
    assert cancelled.status_code == 200, cancelled.text
    assert cancelled.json()["status"] == "CANCELLED"
    # The void was sent to the processor.
    cur = await db.execute(
        "SELECT count(*) FROM sandbox_calls WHERE reference = %s AND verb = 'cancel'",
        (payment["id"],),
    )
    assert await cur.fetchone() == (1,)
