"""Failed authentications, counted per client address: past a limit, an address is refused for
the rest of the minute before its keys cost a database lookup.

Every well-formed key is looked up in PostgreSQL before it is known to be wrong, so anyone could
load the pool with made-up keys. Counts live in Redis (shared by every gateway process, expiring
with their minute); while Redis is unreachable each process counts on its own.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from redis.asyncio import Redis
from redis.exceptions import RedisError

WINDOW_SECONDS = 60


class AuthThrottle:
    def __init__(
        self, redis: Redis, *, failures_per_minute: int, now: Callable[[], float] = time.time
    ) -> None:
        self._redis = redis
        self._limit = failures_per_minute
        self._local: dict[tuple[str, int], int] = {}
        self.now = now  # the wall clock; a test holds it within one minute

    def _window(self) -> tuple[int, int]:
        """This minute's number, and the seconds left in it."""
        now = self.now()
        return int(now // WINDOW_SECONDS), WINDOW_SECONDS - int(now % WINDOW_SECONDS)

    def _key(self, address: str, window: int) -> str:
        return f"gw:authfail:{{{address}}}:{window}"

    async def retry_after(self, address: str) -> int | None:
        """Seconds until the address may try again, or None if it may try now."""
        window, left = self._window()
        try:
            raw = await self._redis.get(self._key(address, window))
            count = int(raw or 0)
        except (RedisError, OSError, ValueError):
            count = self._local.get((address, window), 0)
        return max(1, left) if count >= self._limit else None

    async def failed(self, address: str) -> None:
        window, left = self._window()
        key = self._key(address, window)
        try:
            async with self._redis.pipeline(transaction=False) as pipe:
                pipe.incr(key)
                pipe.expire(key, left + 1)
                await pipe.execute()
        except (RedisError, OSError):
            local = {k: v for k, v in self._local.items() if k[1] == window}  # drop old minutes
            local[(address, window)] = local.get((address, window), 0) + 1
            self._local = local
