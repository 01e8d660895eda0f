"""API keys kept in each process for a few seconds (GATEWAY_KEY_CACHE_SECONDS): a revocation
ends that at once while Redis is up, and while it is down every key is read from PostgreSQL."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import msgspec

from gateway import accounts
from gateway.settings import Settings
from tests.conftest import run_gateway
from tests.integration.conftest import GatewayFactory, Running, SomeMerchant

DEADLINE = 20.0


async def until(check: Any, what: str) -> None:
    deadline = time.monotonic() + DEADLINE
    while time.monotonic() < deadline:
        if await check():
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"gave up waiting for {what}")


async def following(running: Running) -> None:
    async def subscribed() -> bool:
        return running.services.keys.following

    await until(subscribed, "the revocations channel to be followed")


async def status(running: Running, key: str) -> int:
    answer = await running.client.get("/payments?limit=1", headers={"X-API-KEY": key})
    return answer.status_code


def key_id(key: str) -> str:
    parsed = accounts.parse_key(key)
    assert parsed is not None
    return parsed[1]


async def test_a_key_revoked_with_the_cli_is_refused_at_once(
    gateway: GatewayFactory, settings: Settings, merchant: SomeMerchant, db: Any
) -> None:
    # A cache long enough that only the revocation's message can end it within the test.
    running = await gateway(msgspec.structs.replace(settings, key_cache_seconds=60))
    await following(running)
    assert await status(running, merchant.key) == 200
    # Revoked behind the gateway's back (no message): the process still has the key.
    await accounts.revoke_key(db, key_id(merchant.key))
    assert await status(running, merchant.key) == 200

    # The CLI publishes the revocation (again, for a key revoked before): refused from then on.
    revoked = run_gateway(settings, "keys", "revoke", key_id(merchant.key))
    assert revoked.returncode == 0, revoked.stderr
    assert "already revoked" in revoked.stdout

    async def refused() -> bool:
        return await status(running, merchant.key) == 401

    await until(refused, "the revoked key to be refused")


async def test_while_redis_is_down_every_key_is_read_from_postgresql(
    gateway: GatewayFactory,
    settings: Settings,
    merchant: SomeMerchant,
    db: Any,
    doomed_redis: Any,
) -> None:
    own = msgspec.structs.replace(
        settings, redis_url=doomed_redis.connection_url, key_cache_seconds=60
    )
    running = await gateway(own)
    await following(running)
    assert await status(running, merchant.key) == 200
    await accounts.revoke_key(db, key_id(merchant.key))  # no message reaches the process
    assert await status(running, merchant.key) == 200

    doomed_redis.stop()

    async def unfollowed() -> bool:
        return not running.services.keys.following

    await until(unfollowed, "the subscription to be lost")
    assert await status(running, merchant.key) == 401


async def test_a_kept_key_still_needs_its_secret(
    gateway: GatewayFactory, settings: Settings, merchant: SomeMerchant
) -> None:
    running = await gateway(msgspec.structs.replace(settings, key_cache_seconds=60))
    await following(running)
    assert await status(running, merchant.key) == 200
    prefix, _, secret = merchant.key.rpartition("_")
    wrong = f"{prefix}_{'x' * len(secret)}"
    assert await status(running, wrong) == 401
    # An edited readable prefix is not the key that was issued either.
    assert await status(running, merchant.key.replace("gw_sandbox_", "gw_live_", 1)) == 401
    assert await status(running, merchant.key) == 200
