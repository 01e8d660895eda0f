"""The long-lived resources of one gateway process, opened and closed by the app's lifespan."""

from __future__ import annotations

from dataclasses import dataclass

from psycopg_pool import AsyncConnectionPool
from redis.asyncio import Redis

from gateway.idempotency import IdempotencyGuard
from gateway.settings import Settings


@dataclass
class Services:
    settings: Settings
    pool: AsyncConnectionPool
    redis: Redis
    idempotency: IdempotencyGuard
