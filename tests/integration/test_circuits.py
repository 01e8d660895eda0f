"""Circuit breakers per processor account, shared through Redis by every gateway process."""

from __future__ import annotations

import secrets
from typing import Any

import msgspec
from redis.asyncio import Redis

from gateway.circuits import RedisCircuits
from gateway.settings import Settings
from tests.conftest import run_gateway
from tests.integration.conftest import GatewayFactory, SomeMerchant
from tests.integration.shop import Shop
from tests.integration.test_fallback import BEHAVIOURS, sales
from workflows import routing
from workflows.accounts import add_account
from workflows.circuits import CircuitConfig, CircuitState
from workflows.credentials import CredentialBox

CONFIG = CircuitConfig(failures=3, window_seconds=10, cool_off_seconds=30)


class Clock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


async def test_two_processes_share_one_circuit_that_a_probe_closes(settings: Settings) -> None:
    clock = Clock()
    redis = Redis.from_url(settings.redis_url)
    one = RedisCircuits(redis, CONFIG, clock)
    other = RedisCircuits(Redis.from_url(settings.redis_url), CONFIG, clock)
    merchant = f"mer_{secrets.token_hex(6)}"
    for _ in range(3):
        await one.record(merchant, "acquirer-a", ok=False)
    assert not await other.allows(merchant, "acquirer-a")  # the other process sees it open
    assert await other.allows(merchant, "acquirer-b")
    [report] = await other.report(merchant)
    assert (report.account, report.state, report.open_for_seconds) == (
        "acquirer-a",
        CircuitState.OPEN,
        30,
    )
    clock.now += 31
    assert await one.allows(merchant, "acquirer-a")  # the probe, for one of them only
    assert not await other.allows(merchant, "acquirer-a")
    assert (await one.report(merchant))[0].state is CircuitState.HALF_OPEN
    await one.record(merchant, "acquirer-a", ok=True)
    assert await other.allows(merchant, "acquirer-a")
    assert await other.report(merchant) == []


async def test_while_redis_is_down_each_process_keeps_its_own(doomed_redis: Any) -> None:
    clock = Clock()
    circuits = RedisCircuits(Redis.from_url(doomed_redis.connection_url), CONFIG, clock)
    doomed_redis.stop()
    for _ in range(3):
        await circuits.record("mer_x", "acquirer-a", ok=False)
    assert not await circuits.allows("mer_x", "acquirer-a")
    [report] = await circuits.report()
    assert report.state is CircuitState.OPEN


async def test_payments_pass_over_an_account_whose_circuit_is_open(
    gateway: GatewayFactory, settings: Settings, merchant: SomeMerchant, db: Any
) -> None:
    own = msgspec.structs.replace(
        settings, circuit_failures=3, circuit_window_seconds=60, circuit_cool_off_seconds=60
    )
    running = await gateway(own)
    shop = Shop(running.client, merchant.key)
    for name in ("down", "ok"):
        await add_account(
            db,
            CredentialBox(None),
            merchant_id=merchant.id,
            name=name,
            kind="sandbox",
            credentials={},
            settings=BEHAVIOURS[name],
        )
    await routing.save_rules(
        db, merchant.id, {"rules": [{"name": "all", "accounts": ["down", "ok"]}]}, "test"
    )
    # The first payment's three calls to the account fail: it falls back, and the circuit opens.
    first = await shop.create(1200)
    assert sales(await shop.get(first["id"])) == [("down", "FAILED"), ("ok", "AUTHORIZED")]
    # The next goes straight to the account that answers: nothing is sent to the one that fails.
    second = await shop.create(1300)
    assert sales(await shop.get(second["id"])) == [("ok", "AUTHORIZED")]
    cur = await db.execute("SELECT input FROM workflow_runs WHERE payment_id = %s", (second["id"],))
    assert "circuit open" in (await cur.fetchone())[0]["passedOver"]["down"]

    ready = (await running.client.get("/health/ready")).json()
    assert {
        "merchantId": merchant.id,
        "account": "down",
        "state": "open",
    }.items() <= next(c for c in ready["circuits"] if c["merchantId"] == merchant.id).items()
    shown = run_gateway(own, "processors", "health")
    assert shown.returncode == 0, shown.stderr
    line = next(line for line in shown.stdout.splitlines() if merchant.id in line)
    assert line.split()[1:3] == ["down", "open"]


async def test_redis_weighs_failures_against_the_accounts_calls(settings: Settings) -> None:
    clock = Clock()
    circuits = RedisCircuits(Redis.from_url(settings.redis_url), CONFIG, clock)
    merchant = f"mer_{secrets.token_hex(6)}"
    for call in range(100):  # 5% of 100 calls within the window fail
        clock.now += 0.05
        await circuits.record(merchant, "busy", ok=call % 20 != 0)
    assert await circuits.allows(merchant, "busy")
    for _ in range(100):
        await circuits.record(merchant, "busy", ok=False)
    assert not await circuits.allows(merchant, "busy")


async def test_a_healthy_accounts_counts_do_not_grow_with_its_traffic(settings: Settings) -> None:
    clock = Clock()
    redis = Redis.from_url(settings.redis_url)
    circuits = RedisCircuits(redis, CONFIG, clock)
    merchant = f"mer_{secrets.token_hex(6)}"
    for _ in range(600):  # ten minutes of calls, one a second, all answered
        clock.now += 1
        await circuits.record(merchant, "busy", ok=True)
    # One counter per window, each expiring two windows after its last call (in real time; the
    # test's clock ran ahead): what is kept is bounded, whatever the traffic.
    counters = [key async for key in redis.scan_iter(match=f"gw:circuit:{{{merchant}}}:*")]
    assert len(counters) == 600 // 10 + 1
    for key in counters:
        assert 0 < await redis.pttl(key) <= 2 * CONFIG.window_seconds * 1000
