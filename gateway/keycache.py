"""API keys that authenticated, kept in this process for a few seconds, so that a request does
not read its key from PostgreSQL each time; revocation ends that at once.

What is kept is what PostgreSQL holds (the key's hash, kind, merchant, mode, scopes), never the
key itself; every request still compares the presented secret's hash with the stored one in
constant time. Only keys that authenticated are kept: a new key works at once, an unknown one
is read every time (and throttled as before).

How long a revoked key can keep working, by case:
- Redis up (this process subscribed to the revocations channel): not at all, or, if the
  subscription's connection dropped just then, until it is made again or counts as lost (3 s
  at most). `gateway keys revoke` publishes the key's id after its revocation commits, and
  every process drops it.
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
from redis.asyncio.client import PubSub
from redis.exceptions import RedisError

from gateway import accounts
from gateway.logging import get_logger

log = get_logger(__name__)

# One channel for the whole deployment (pub/sub reaches every node of a Redis Cluster).
CHANNEL = "gateway:api-key-revocations"
MAX_ENTRIES = 10_000
HEARTBEAT = 1.0  # seconds between pings of the subscription
SILENCE = 3.0  # seconds without a word from it (a pong, a message) before it counts as lost


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
        self._heard = 0.0  # monotonic: when the subscription last said anything

    @property
    def following(self) -> bool:
        """Whether revocations reach this process (only then is the cache used): subscribed,
        and heard from within SILENCE seconds."""
        return self._subscribed and time.monotonic() - self._heard <= SILENCE

    def get(self, key_id: str) -> accounts.StoredKey | None:
        if not self.following:
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
        if generation != self._generation or not self.following or self._seconds <= 0:
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
        if subscribed:
            self._heard = time.monotonic()

    async def follow(self, stop: asyncio.Event) -> None:
        """Follow the revocations channel until `stop`: resubscribe whenever it is lost, with the
        cache off (and emptied) meanwhile. The subscription is pinged every HEARTBEAT seconds and
        counts as lost when nothing (not even the pong) came back for SILENCE seconds: a
        connection that went silent without closing (a partition, a hung proxy) is not trusted."""
        was_following = True
        try:
            while not stop.is_set():
                pubsub = self._redis.pubsub()
                try:
                    await pubsub.subscribe(CHANNEL)
                    await self._listen(pubsub, stop)
                except (RedisError, OSError, _Silent) as error:
                    if was_following:  # once per outage, not at every attempt
                        log.warning("api_key_revocations_unfollowed", error=type(error).__name__)
                except Exception:
                    log.exception("api_key_revocations_unfollowed")
                finally:
                    was_following = self._subscribed
                    self._forget(subscribed=False)
                    with contextlib.suppress(Exception):
                        await pubsub.aclose()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), timeout=1.0)
        finally:  # stopped, or cancelled at shutdown
            self._forget(subscribed=False)
            with contextlib.suppress(Exception):
                await self._redis.aclose()

    async def _listen(self, pubsub: PubSub, stop: asyncio.Event) -> None:
        heard = pinged = time.monotonic()
        while not stop.is_set():
            message = await pubsub.get_message(timeout=HEARTBEAT)
            now = time.monotonic()
            if message is not None:
                heard = self._heard = now
                kind = message["type"]
                if kind == "subscribe":  # Redis has it: from now on no revocation is missed
                    self._forget(subscribed=True)
                elif kind == "message":
                    data = message["data"]
                    self.drop(data.decode() if isinstance(data, bytes) else str(data))
            if now - heard > SILENCE:
                raise _Silent()
            if now - pinged >= HEARTBEAT:
                await pubsub.ping()
                pinged = now


class _Silent(Exception):
    """The subscription's connection answered nothing for SILENCE seconds."""


async def publish_revocation(redis: Redis, key_id: str) -> bool:
    """Tell every gateway process that `key_id` is revoked (after the revocation committed).
    False when Redis could not be reached: the processes then notice within the cache's time."""
    try:
        await redis.publish(CHANNEL, key_id)
    except (RedisError, OSError):
        return False
    return True
