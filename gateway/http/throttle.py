"""Who may be looked up: failed authentications counted per client address, and requests counted
per key id, each within the minute, before a key costs a database lookup.

Every well-formed key is looked up in PostgreSQL before it is known to be good or bad, so anyone
could load the pool: with made-up keys (past `failures_per_minute` an address is refused for the
rest of the minute) or with one key, good or not (past `requests_per_key_per_minute` its id is
refused for the rest of the minute). Both counts are read and written in one Redis round trip,
shared by every gateway process and expiring with their minute; while Redis is unreachable each
process counts on its own. A key's first request of a minute is also when its last use is
recorded, so that costs one write a minute per key, not one per request.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from redis.asyncio import Redis
from redis.exceptions import RedisError

WINDOW_SECONDS = 60


@dataclass(frozen=True)
class Admission:
    retry_after: int | None = None  # refused: seconds until the minute is over
    by_address: bool = False  # refused for the address's failures (else for the key's rate)
    first_of_minute: bool = False  # the key's first request this minute

    @property
    def refused(self) -> bool:
        return self.retry_after is not None


class AuthThrottle:
    def __init__(
        self,
        redis: Redis,
        *,
        failures_per_minute: int,
        requests_per_key_per_minute: int = 1_000_000,
        now: Callable[[], float] = time.time,
    ) -> None:
        self._redis = redis
        self._failures = failures_per_minute
        self._per_key = requests_per_key_per_minute
        self._local: dict[tuple[str, int], int] = {}
        self.now = now  # the wall clock; a test holds it within one minute

    def _window(self) -> tuple[int, int]:
        """This minute's number, and the seconds left in it."""
        now = self.now()
        return int(now // WINDOW_SECONDS), WINDOW_SECONDS - int(now % WINDOW_SECONDS)

    @staticmethod
    def _failures_key(address: str, window: int) -> str:
        return f"gw:authfail:{{{address}}}:{window}"

    @staticmethod
    def _requests_key(key_id: str, window: int) -> str:
        return f"gw:key:{{{key_id}}}:{window}"

    async def admit(self, address: str, key_id: str) -> Admission:
        """Count a request of `key_id` from `address`; whether it may be looked up now."""
        window, left = self._window()
        failures_key, requests_key = (
            self._failures_key(address, window),
            self._requests_key(key_id, window),
        )
        try:
            async with self._redis.pipeline(transaction=False) as pipe:
                pipe.get(failures_key)
                pipe.incr(requests_key)
                pipe.expire(requests_key, left + 1)
                raw_failures, requests, _ = await pipe.execute()
            failures = int(raw_failures or 0)
        except (RedisError, OSError, ValueError):
            failures = self._local.get((failures_key, window), 0)
            requests = self._count_locally(requests_key, window)
        if failures >= self._failures:
            return Admission(max(1, left), by_address=True)
        if requests > self._per_key:
            return Admission(max(1, left))
        return Admission(first_of_minute=requests == 1)

    async def failed(self, address: str) -> None:
        window, left = self._window()
        key = self._failures_key(address, window)
        try:
            async with self._redis.pipeline(transaction=False) as pipe:
                pipe.incr(key)
                pipe.expire(key, left + 1)
                await pipe.execute()
        except (RedisError, OSError):
            self._count_locally(key, window)

    def _count_locally(self, key: str, window: int) -> int:
        local = {k: v for k, v in self._local.items() if k[1] == window}  # drop old minutes
        local[(key, window)] = local.get((key, window), 0) + 1
        self._local = local
        return local[(key, window)]
