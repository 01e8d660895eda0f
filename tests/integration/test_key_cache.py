"""API keys kept in each process for a few seconds (GATEWAY_KEY_CACHE_SECONDS): a revocation
ends that at once while Redis is up, and while it is down every key is read from PostgreSQL."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from typing import Any
from urllib.parse import urlparse

import msgspec
from redis.asyncio import Redis

from gateway import accounts
from gateway.keycache import publish_revocation
from gateway.settings import Settings
from tests.conftest import clean_env, run_gateway
from tests.integration.conftest import GatewayFactory, Running, SomeMerchant, until


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


async def test_once_a_minute_a_kept_key_is_read_again(
    gateway: GatewayFactory, settings: Settings, merchant: SomeMerchant, db: Any
) -> None:
    """A revocation no message told of ends at the key's first request of a minute at the
    latest (its last use is written then, and the key read again on the same connection)."""
    running = await gateway(msgspec.structs.replace(settings, key_cache_seconds=60))
    await following(running)
    throttle = running.services.auth_throttle
    minute = [time.time() // 60 + 1000]
    throttle.now = lambda: minute[0] * 60 + 1.0  # type: ignore[method-assign]
    assert await status(running, merchant.key) == 200
    await accounts.revoke_key(db, key_id(merchant.key))
    assert await status(running, merchant.key) == 200  # kept, same minute
    minute[0] += 1
    assert await status(running, merchant.key) == 401


class SilentProxy:
    """A TCP proxy to Redis that can stop forwarding without closing anything (a partition,
    a hung load balancer)."""

    def __init__(self, target: str) -> None:
        self.target = urlparse(target)
        self.silent = asyncio.Event()

    async def start(self) -> str:
        server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        return f"redis://127.0.0.1:{server.sockets[0].getsockname()[1]}/0"

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self.target.scheme == "unix":
            upstream = await asyncio.open_unix_connection(self.target.path)
        else:
            upstream = await asyncio.open_connection(self.target.hostname, self.target.port)

        async def pump(source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
            while data := await source.read(65536):
                if self.silent.is_set():
                    await asyncio.Event().wait()  # hold everything, close nothing
                sink.write(data)
                await sink.drain()

        await asyncio.gather(
            pump(reader, upstream[1]), pump(upstream[0], writer), return_exceptions=True
        )


async def test_a_subscription_gone_silent_is_not_trusted(
    gateway: GatewayFactory, settings: Settings, merchant: SomeMerchant, db: Any
) -> None:
    assert settings.redis_url
    proxy = SilentProxy(settings.redis_url)
    own = msgspec.structs.replace(settings, redis_url=await proxy.start(), key_cache_seconds=60)
    running = await gateway(own)
    await following(running)
    assert await status(running, merchant.key) == 200
    proxy.silent.set()
    # Revoked and published where the process cannot hear it.
    await accounts.revoke_key(db, key_id(merchant.key))
    direct = Redis.from_url(settings.redis_url)
    assert await publish_revocation(direct, key_id(merchant.key))
    await direct.aclose()

    async def unfollowed() -> bool:
        return not running.services.keys.following

    await until(unfollowed, "the silent subscription to count as lost")
    assert await status(running, merchant.key) == 401
    proxy.silent.clear()


def test_revoking_with_a_database_but_no_redis_url_says_the_gateways_were_not_told(
    settings: Settings, merchant: SomeMerchant, tmp_path: Any
) -> None:
    assert settings.database_url
    done = subprocess.run(
        [sys.executable, "-m", "gateway", "keys", "revoke", key_id(merchant.key)],
        capture_output=True,
        text=True,
        env=clean_env(GATEWAY_DATABASE_URL=settings.database_url, GATEWAY_DATA_DIR=str(tmp_path)),
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert f"revoked {key_id(merchant.key)}" in done.stdout
    assert "GATEWAY_REDIS_URL is not set" in done.stderr
    assert not (tmp_path / "valkey").exists()  # no private Redis started to publish nowhere
