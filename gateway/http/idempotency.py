"""Idempotency of merchant requests (`X-Idempotency-Key`), as the reference README's table says.

A request that carries a key is run inside `IdempotencyGuard.hold(...)`:

- Redis is the fast path. One `SET NX GET` either claims the key for this request or returns what
  an earlier request recorded: in flight (409 `IdempotencyKeyInProgress`), processed (409
  `IdempotencyKeyAlreadyExists` with the payment), or another body (422 `IdempotencyKeyReused`).
- PostgreSQL is the truth. The claim is also inserted into `idempotency_keys`, whose primary key
  rejects a repeat that Redis forgot (flush, failover) and serves alone while Redis is unreachable.
- A request that fails before it is processed (the handler raises) releases the key, so the
  merchant can retry with it; a request whose process died holds it only until its lease ends.
- Records live `idempotency_ttl_seconds` (24 h by default) in both stores.

A key names one request of a merchant, whatever the endpoint (as Stripe and Adyen scope keys): the
same key with another operation, payment or body is 422 `IdempotencyKeyReused`, never run as new.
Redis keys carry the merchant as a hash tag (`{mer_...}`), ready for Redis Cluster.
"""

from __future__ import annotations

import asyncio
import hashlib
import secrets
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Literal

import msgspec
from psycopg.rows import dict_row
from psycopg_pool import AsyncConnectionPool
from redis.asyncio import Redis
from redis.exceptions import RedisError

from gateway.db import QUERIES
from gateway.http.errors import (
    ApiError,
    IdempotencyKeyAlreadyExists,
    IdempotencyKeyInProgress,
    IdempotencyKeyReused,
    InvalidIdempotencyKey,
    ServiceUnavailable,
)
from gateway.logging import get_logger
from workflows.db import Database
from workflows.errors import DomainError, StorageUnavailable

log = get_logger(__name__)

# After Redis fails, skip it for this long instead of paying a timeout on every request.
_REDIS_BACKOFF_SECONDS = 1.0


@dataclass(frozen=True)
class IdempotencyScope:
    merchant_id: str
    operation: str
    target: str = ""


class Record(msgspec.Struct, frozen=True, omit_defaults=True):
    """What Redis holds for a key; short field names, it is stored millions of times."""

    s: Literal["in_flight", "processed"]
    f: str  # body fingerprint, hex
    p: str | None = None  # payment id
    st: str | None = None  # payment status when processed
    t: str | None = None  # an in-flight record's owner (one request), so only it deletes it


_record_encoder = msgspec.json.Encoder()
_DELETE_IF_MINE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""
_record_decoder = msgspec.json.Decoder(Record)


@dataclass
class Claim:
    """Handed to the request holding a key: it says which payment the request produced."""

    key: str | None = None  # the X-Idempotency-Key, None for a request without one
    fingerprint: bytes | None = None
    payment_id: str | None = None
    payment_status: str | None = None

    def processed(self, payment_id: str | None, payment_status: str | None) -> None:
        self.payment_id, self.payment_status = payment_id, payment_status


def validate_key(raw: str | None) -> str | None:
    """The X-Idempotency-Key header, checked: 1-255 visible ASCII characters, or absent."""
    if raw is None:
        return None
    if not 1 <= len(raw) <= 255 or not all("!" <= c <= "~" for c in raw):
        raise InvalidIdempotencyKey()
    return raw


def fingerprint(scope: IdempotencyScope, canonical_body: bytes) -> bytes:
    """SHA-256 of what makes two requests the same request: operation, target and body."""
    digest = hashlib.sha256()
    for part in (scope.operation.encode(), scope.target.encode(), canonical_body):
        digest.update(len(part).to_bytes(8, "big"))
        digest.update(part)
    return digest.digest()


def refusal(record: Record, fp: str, *, retry_after: int) -> ApiError:
    """What a request meets when an earlier request holds its key: the earlier request's record
    and this request's body fingerprint decide it."""
    if record.f != fp:
        return IdempotencyKeyReused()
    if record.s == "in_flight":
        return IdempotencyKeyInProgress(headers={"Retry-After": str(max(1, retry_after))})
    return IdempotencyKeyAlreadyExists(payment_id=record.p, payment_status=record.st)


StatusLookup = Callable[[str, str], Awaitable[str | None]]
FinishedLookup = Callable[[str, str], Awaitable["Record | None"]]


def _record_key(
    scope: IdempotencyScope, key: str, fp_bytes: bytes, **extra: object
) -> dict[str, object]:
    """The parameters that name a key's row in idempotency_keys, and any others."""
    return {
        "merchant_id": scope.merchant_id,
        "operation": scope.operation,
        "target": scope.target,
        "key": key,
        "fingerprint": fp_bytes,
        **extra,
    }


class IdempotencyGuard:
    def __init__(
        self,
        pool: AsyncConnectionPool,
        redis: Redis,
        *,
        ttl_seconds: int,
        lease_seconds: int,
        current_status: StatusLookup | None = None,
        finished_run: FinishedLookup | None = None,
    ) -> None:
        self._db = Database(pool)
        self._redis = redis
        self._delete_if_mine = redis.register_script(_DELETE_IF_MINE)
        self._ttl_ms = ttl_seconds * 1000
        self._lease_ms = lease_seconds * 1000
        self._ttl_seconds = ttl_seconds
        self._lease_seconds = lease_seconds
        # (merchant_id, payment_id) -> the payment's status now, for the 409 answer.
        self._current_status = current_status
        # (merchant_id, key) -> the record of the key's finished run, if it has one: the durable
        # truth for handlers that keep their own record (payments: the engine's run per key).
        self._finished_run = finished_run
        self._redis_skip_until = 0.0
        self.redis_failures = 0

    @property
    def redis_degraded(self) -> bool:
        return time.monotonic() < self._redis_skip_until

    @asynccontextmanager
    async def hold(
        self, scope: IdempotencyScope, key: str, body_fingerprint: bytes, *, durable: bool = True
    ) -> AsyncIterator[Claim]:
        """Run the body of a request at most once per key.

        `durable=False`: the handler's own storage holds the durable record of the key (the
        workflow engine's one run per key) and refuses a repeat that Redis forgot; the
        `idempotency_keys` table is then not written at all.
        """
        # One key, one request of the merchant, whatever the endpoint: the key alone names it; the
        # fingerprint (operation, payment, body) tells a repeat from a reuse.
        redis_key = f"gw:{{{scope.merchant_id}}}:idem:{key}"
        fp = body_fingerprint.hex()
        # This request's own in-flight record: only it may be deleted by this request.
        mine = _record_encoder.encode(Record("in_flight", fp, t=secrets.token_hex(8)))
        await self._claim(scope, key, body_fingerprint, redis_key, fp, mine, durable=durable)
        claim = Claim(key=key, fingerprint=body_fingerprint)
        try:
            yield claim
        except BaseException:
            # Not processed: the key is not burnt. Shielded, so a cancelled request still lets go.
            release = self._release(scope, key, body_fingerprint, redis_key, mine, durable=durable)
            await asyncio.shield(release)
            raise
        await self._complete(scope, key, body_fingerprint, redis_key, fp, claim, durable=durable)

    async def _claim(
        self,
        scope: IdempotencyScope,
        key: str,
        fp_bytes: bytes,
        redis_key: str,
        fp: str,
        mine: bytes,
        *,
        durable: bool,
    ) -> None:
        earlier = await self._redis_call(
            self._redis.set(redis_key, mine, nx=True, get=True, px=self._lease_ms)
        )
        if isinstance(earlier, bytes):
            record = _record_decoder.decode(earlier)
            if record.s == "in_flight" and self._finished_run is not None:
                # Redis can outlive the request that wrote "in flight" (a process killed after
                # its run finished): the durable record decides.
                finished = await self._finished_run(scope.merchant_id, key)
                if finished is not None:
                    record = finished
                    ttl = self._ttl_ms
                    await self._redis_call(
                        self._redis.set(redis_key, _record_encoder.encode(record), px=ttl)
                    )
            await self._refuse(scope, record, fp, retry_after=1)
        if not durable:
            return
        params = _record_key(
            scope,
            key,
            fp_bytes,
            lease_seconds=self._lease_seconds,
            ttl_seconds=self._ttl_seconds,
        )
        try:
            async with self._db.connection() as conn:
                for _ in range(3):
                    cur = await conn.execute(QUERIES["claim_idempotency_key"], params)
                    if await cur.fetchone() is not None:
                        return
                    dict_cur = conn.cursor(row_factory=dict_row)
                    await dict_cur.execute(QUERIES["find_idempotency_key"], params)
                    row = await dict_cur.fetchone()
                    if row is not None:
                        break  # held by another request; refused below, outside the connection
                else:
                    raise ServiceUnavailable("Could not claim the idempotency key; retry.")
        except StorageUnavailable:
            await self._delete_own(redis_key, mine)
            raise ServiceUnavailable() from None
        record = Record(
            row["state"], bytes(row["fingerprint"]).hex(), row["payment_id"], row["payment_status"]
        )
        if record.s == "processed":
            # Redis forgot a processed key (flush, failover): teach it again, then refuse.
            await self._redis_call(
                self._redis.set(
                    redis_key, _record_encoder.encode(record), px=row["ttl_left_seconds"] * 1000
                )
            )
        elif record.f != fp:
            await self._delete_own(redis_key, mine)
        await self._refuse(scope, record, fp, retry_after=max(1, row["lease_left_seconds"]))

    async def _refuse(
        self, scope: IdempotencyScope, record: Record, fp: str, *, retry_after: int
    ) -> None:
        refused = refusal(record, fp, retry_after=retry_after)
        if (
            isinstance(refused, IdempotencyKeyAlreadyExists)
            and record.p is not None
            and self._current_status is not None
        ):
            # The payment may have moved on since: answer with its status now.
            status = await self._current_status(scope.merchant_id, record.p)
            refused.payment_status = status or refused.payment_status
        raise refused

    async def _complete(
        self,
        scope: IdempotencyScope,
        key: str,
        fp_bytes: bytes,
        redis_key: str,
        fp: str,
        claim: Claim,
        *,
        durable: bool,
    ) -> None:
        # PostgreSQL first: once it says processed, no repeat can run, whatever Redis does next.
        if durable:
            await self._complete_durably(scope, key, fp_bytes, claim)
        record = Record("processed", fp, claim.payment_id, claim.payment_status)
        await self._redis_call(
            self._redis.set(redis_key, _record_encoder.encode(record), px=self._ttl_ms)
        )

    async def _complete_durably(
        self, scope: IdempotencyScope, key: str, fp_bytes: bytes, claim: Claim
    ) -> None:
        async with self._db.connection() as conn:
            await conn.execute(
                QUERIES["complete_idempotency_key"],
                _record_key(
                    scope,
                    key,
                    fp_bytes,
                    payment_id=claim.payment_id,
                    payment_status=claim.payment_status,
                ),
            )

    async def _release(
        self,
        scope: IdempotencyScope,
        key: str,
        fp_bytes: bytes,
        redis_key: str,
        mine: bytes,
        *,
        durable: bool,
    ) -> None:
        if durable:
            await self._release_durably(scope, key, fp_bytes)
        await self._delete_own(redis_key, mine)

    async def _delete_own(self, redis_key: str, mine: bytes) -> None:
        """Delete the key's record only if it is still this request's in-flight one: a repeat
        that came after the first request's lease must not delete what the first one wrote."""
        await self._redis_call(self._delete_if_mine(keys=[redis_key], args=[mine]))

    async def _release_durably(self, scope: IdempotencyScope, key: str, fp_bytes: bytes) -> None:
        try:
            async with self._db.connection() as conn:
                await conn.execute(
                    QUERIES["release_idempotency_key"], _record_key(scope, key, fp_bytes)
                )
        except DomainError:
            # The lease will free the key; the request's own error is what the client needs.
            log.warning("idempotency_release_failed", operation=scope.operation)

    async def _redis_call(self, command: Awaitable[object]) -> object:
        """Run a Redis command; on failure note the degradation and carry on without Redis."""
        if self.redis_degraded:
            if asyncio.iscoroutine(command):
                command.close()
            return None
        try:
            return await command
        except (RedisError, OSError) as error:
            self.redis_failures += 1
            self._redis_skip_until = time.monotonic() + _REDIS_BACKOFF_SECONDS
            log.warning(
                "redis_unavailable_idempotency_on_postgresql",
                error=type(error).__name__,
                failures=self.redis_failures,
            )
            return None
