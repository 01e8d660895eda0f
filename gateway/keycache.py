"""API keys that authenticated, kept in this process for a few seconds, so that a request does
not read its key from PostgreSQL each time; revocation ends that at once.

What is kept is what PostgreSQL holds (the key's hash, kind, merchant, mode, scopes), never the
key itself; every request still compares the presented secret's hash with the stored one in
constant time. Only keys that authenticated are kept: a new key works at once, an unknown one
is read every time (and throttled as before).

How long a revoked key can keep working, by case:
- Redis up (this process subscribed to the revocations channel): not at all. `gateway keys
  revoke` publishes the key's id after its revocation commits, and every process drops it.
- Redis down, or the subscription lost: the cache is not used; every request reads its key from
  PostgreSQL. On (re)subscribing, the cache starts empty, since a revocation may have been missed.
- A revocation published while Redis could not be reached from where it was revoked, but was
  from the gateways: at most `GATEWAY_KEY_CACHE_SECONDS` (5 s by default), after which every
  entry is read again from PostgreSQL. 0 turns the cache off.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import OrderedDict
from dataclasses import dataclass

from redis.asyncio import Redis
from redis.exceptions import RedisError

from gateway import accounts
from gateway.logging import get_logger

log = get_logger(__name__)

# One channel for the whole deployment (pub/sub reaches every node of a Redis Cluster).
CHANNEL = "gateway:api-key-revocations"
MAX_ENTRIES = 10_000


@dataclass(frozen=True)
class _Entry:
    stored: accounts.StoredKey
    until: float  # monotonic


class KeyCache:
    def __init__(self, redis: Redis, seconds: float) -> None:
        """`redis`: a client of its own, without a read timeout (a subscription waits)."""
        self._redis = redis
        self._seconds = seconds
        self._entries: OrderedDict[str, _Entry] = OrderedDict()
        self._subscribed = False  # only then is an entry trusted
        # Moves on at every revocation heard and every (re)subscription: a key read from
        # PostgreSQL before one of them may be stale, and is not kept (see `put`).
        self._generation = 0

    @property
    def following(self) -> bool:
        """Whether revocations reach this process (only then is the cache used)."""
        return self._subscribed

    def get(self, key_id: str) -> accounts.StoredKey | None:
        if not self._subscribed:
            return None
        entry = self._entries.get(key_id)
        if entry is None:
            return None
        if entry.until <= time.monotonic():
            del self._entries[key_id]
            return None
        return entry.stored

    def generation(self) -> int:
        """Taken before a key is read from PostgreSQL, and given back to `put`."""
        return self._generation

    def put(self, stored: accounts.StoredKey, generation: int) -> None:
        """Keep a key read from PostgreSQL, unless a revocation (of any key) was heard, or the
        subscription changed, since `generation` was taken: the read may predate it."""
        if generation != self._generation or not self._subscribed or self._seconds <= 0:
            return
        if stored.revoked:
            return
        self._entries[stored.key_id] = _Entry(stored, time.monotonic() + self._seconds)
        self._entries.move_to_end(stored.key_id)
        while len(self._entries) > MAX_ENTRIES:
            self._entries.popitem(last=False)

    def drop(self, key_id: str) -> None:
        self._generation += 1
        self._entries.pop(key_id, None)

    def _forget(self, subscribed: bool) -> None:
        self._generation += 1
        self._entries.clear()
        self._subscribed = subscribed

    async def follow(self, stop: asyncio.Event) -> None:
        """Follow the revocations channel until `stop`: resubscribe whenever it is lost, with the
        cache off (and emptied) meanwhile."""
        while not stop.is_set():
            pubsub = self._redis.pubsub()
            try:
                await pubsub.subscribe(CHANNEL)
                self._forget(subscribed=True)
                while not stop.is_set():
                    message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=1.0)
                    if message is not None and message["type"] == "message":
                        data = message["data"]
                        self.drop(data.decode() if isinstance(data, bytes) else str(data))
            except (RedisError, OSError) as error:
                log.warning("api_key_revocations_unfollowed", error=type(error).__name__)
            finally:
                self._forget(subscribed=False)
                with contextlib.suppress(RedisError, OSError):
                    await pubsub.aclose()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=1.0)
        await self._redis.aclose()


async def publish_revocation(redis: Redis, key_id: str) -> bool:
    """Tell every gateway process that `key_id` is revoked (after the revocation committed).
    False when Redis could not be reached: the processes then notice within the cache's time."""
    try:
        await redis.publish(CHANNEL, key_id)
    except (RedisError, OSError):
        return False
    return True
