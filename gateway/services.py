"""The long-lived resources of one gateway process, opened and closed by the app's lifespan."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

import httpx
from psycopg_pool import AsyncConnectionPool
from redis.asyncio import Redis

from gateway.circuits import RedisCircuits
from gateway.db import create_pool
from gateway.http.idempotency import FinishedLookup, IdempotencyGuard, Record
from gateway.http.throttle import AuthThrottle
from gateway.keycache import KeyCache
from gateway.logging import get_logger
from gateway.settings import Settings, previous_secret_keys
from gateway.webhooks.delivery import Deliverer
from processors.base import Resources
from workflows.accounts import ProcessorDirectory
from workflows.circuits import CircuitConfig, Circuits, LocalCircuits
from workflows.credentials import CredentialBox
from workflows.db import Database
from workflows.engine import Engine, EngineConfig
from workflows.notifications import Schedule
from workflows.reads import Reads

log = get_logger(__name__)


@dataclass
class Services:
    settings: Settings
    pool: AsyncConnectionPool
    redis: Redis
    idempotency: IdempotencyGuard
    auth_throttle: AuthThrottle
    engine: Engine
    reads: Reads
    webhooks: Deliverer
    box: CredentialBox  # seals and opens stored secrets (processor accounts, webhook endpoints)
    keys: KeyCache  # API keys that authenticated, for a few seconds (revocation ends it)


def engine_config(settings: Settings) -> EngineConfig:
    return EngineConfig(
        attempts=settings.processor_attempts,
        max_call_seconds=settings.processor_max_seconds,
        backoff_initial_seconds=settings.processor_backoff_seconds,
        backoff_max_seconds=max(settings.processor_backoff_seconds, 2.0),
        lease_seconds=settings.workflow_lease_seconds,
        recovery_backoff_seconds=settings.workflow_recovery_backoff_seconds,
        max_recoveries=settings.workflow_max_recoveries,
        settlement_poll_seconds=settings.settlement_poll_seconds,
    )


def webhook_schedule(settings: Settings) -> Schedule:
    return Schedule(
        base_seconds=settings.webhook_retry_base_seconds,
        max_seconds=settings.webhook_retry_max_seconds,
        give_up_seconds=settings.webhook_give_up_seconds,
    )


def circuit_config(settings: Settings) -> CircuitConfig:
    return CircuitConfig(
        failures=settings.circuit_failures,
        window_seconds=settings.circuit_window_seconds,
        cool_off_seconds=settings.circuit_cool_off_seconds,
        failure_rate=settings.circuit_failure_rate,
    )


def build_engine(
    pool: AsyncConnectionPool, settings: Settings, circuits: Circuits | None = None
) -> Engine:
    # One pooled HTTP client for every processor connector of this process.
    http = httpx.AsyncClient(
        timeout=httpx.Timeout(connect=5.0, read=30.0, write=10.0, pool=5.0),
        limits=httpx.Limits(max_connections=200, max_keepalive_connections=50),
    )
    directory = ProcessorDirectory(
        Resources(pool=pool, http=http),
        CredentialBox(settings.secret_key, previous_secret_keys(settings)),
    )
    return Engine(
        pool,
        directory,
        engine_config(settings),
        circuits or LocalCircuits(circuit_config(settings)),
    )


@asynccontextmanager
async def open_pool(settings: Settings) -> AsyncIterator[AsyncConnectionPool]:
    assert settings.database_url is not None
    pool = create_pool(
        settings.database_url,
        min_size=settings.db_pool_min,
        max_size=settings.db_pool_max,
        checkout_seconds=settings.db_checkout_timeout_seconds,
    )
    await pool.open(wait=True, timeout=30)
    try:
        yield pool
    finally:
        await pool.close()


def open_redis(settings: Settings) -> Redis:
    assert settings.redis_url is not None
    return Redis.from_url(
        settings.redis_url,
        socket_timeout=settings.redis_timeout_seconds,
        socket_connect_timeout=settings.redis_timeout_seconds,
        retry_on_timeout=False,
        health_check_interval=0,
        max_connections=1024,
    )


async def _report_unusable_accounts(pool: AsyncConnectionPool, settings: Settings) -> None:
    """Said at start-up, not at a merchant's first payment: processor accounts whose secrets
    this process cannot decrypt (no GATEWAY_SECRET_KEY)."""
    if settings.secret_key is not None:
        return
    async with Database(pool).connection() as conn:
        cur = await conn.execute(  # (a sandbox account has no secret: nothing sealed)
            "SELECT count(*) FROM processor_accounts WHERE octet_length(secret_ciphertext) > 0"
        )
        row = await cur.fetchone()
    if row and row[0]:
        log.error(
            "processor_accounts_unusable",
            accounts=row[0],
            why="GATEWAY_SECRET_KEY is not set: their payments are refused (503) until it is",
        )


def _finished_run(engine: Engine) -> FinishedLookup:
    """The guard's view of the engine's durable record of a key: its run, once finished."""

    async def lookup(merchant_id: str, key: str) -> Record | None:
        run = await engine.payments.run_for_key(merchant_id, key)
        if run is None or run.fingerprint is None or not run.state.finished:
            return None
        return Record("processed", run.fingerprint.hex(), run.payment_id, run.payment_status)

    return lookup


@asynccontextmanager
async def open_services(settings: Settings) -> AsyncIterator[Services]:
    async with open_pool(settings) as pool:
        await _report_unusable_accounts(pool, settings)
        redis = open_redis(settings)
        engine = build_engine(pool, settings, RedisCircuits(redis, circuit_config(settings)))
        guard = IdempotencyGuard(
            pool,
            redis,
            ttl_seconds=settings.idempotency_ttl_seconds,
            lease_seconds=settings.idempotency_lease_seconds,
            current_status=engine.payments.status,
            finished_run=_finished_run(engine),
        )
        box = CredentialBox(settings.secret_key, previous_secret_keys(settings))
        webhooks = Deliverer(
            engine.db,
            box,
            webhook_schedule(settings),
            timeout_seconds=settings.webhook_timeout_seconds,
        )
        # The revocations' subscriber: its own client, whose reads wait (it pings itself).
        subscriber = Redis.from_url(
            settings.redis_url or "",
            socket_connect_timeout=settings.redis_timeout_seconds,
            socket_timeout=5.0,
        )
        keys = KeyCache(subscriber, settings.key_cache_seconds)
        stop = asyncio.Event()
        following = asyncio.create_task(keys.follow(stop))
        try:
            yield Services(
                settings=settings,
                pool=pool,
                redis=redis,
                idempotency=guard,
                auth_throttle=AuthThrottle(
                    redis,
                    failures_per_minute=settings.auth_failures_per_minute,
                    requests_per_key_per_minute=settings.requests_per_key_per_minute,
                ),
                engine=engine,
                reads=engine.reads,
                webhooks=webhooks,
                box=box,
                keys=keys,
            )
        finally:
            stop.set()
            following.cancel()  # it may be waiting on Redis: no reason to wait for it
            with contextlib.suppress(asyncio.CancelledError):
                await following
            await webhooks.aclose()
            await engine.aclose()
            await redis.aclose()
