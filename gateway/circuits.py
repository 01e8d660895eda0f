"""The processor accounts' circuit breakers (workflows/circuits.py), kept in Redis so that every
gateway process and worker sees one state per account.

Each account has a hash `gw:circuit:{merchant}:account` (open_until, probe_until, in ms) and a
sorted set `...:failures` of the failures within the window, and counters `...:calls:N` of the
calls in fixed windows (this one and the one before, which estimate the calls within the sliding
window); the `{merchant}` hash tag keeps them in one Redis Cluster slot. A circuit that
opens is also listed in `gw:circuits:opened`, for reports (written only when one opens; read by
/health/ready and `gateway processors health`).
Each decision is one Lua script (atomic), on the caller's clock (a breaker needs seconds, not
clock agreement to the millisecond). While Redis cannot be reached each process keeps its own
circuits (`LocalCircuits`): the same rules, not shared.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable

from redis.asyncio import Redis
from redis.exceptions import RedisError

from workflows.circuits import (
    CircuitConfig,
    CircuitReport,
    CircuitState,
    LocalCircuits,
)

_PREFIX = "gw:circuit:"
_OPENED = "gw:circuits:opened"

# KEYS: hash. ARGV: now (ms), cool-off (ms). 1: allowed (closed), 2: the half-open probe, 0: no.
_ALLOWS = """
local open_until = tonumber(redis.call('HGET', KEYS[1], 'open_until') or '0')
if open_until == 0 then return 1 end
local now = tonumber(ARGV[1])
if now < open_until then return 0 end
local probe = tonumber(redis.call('HGET', KEYS[1], 'probe_until') or '0')
if probe > now then return 0 end
redis.call('HSET', KEYS[1], 'probe_until', now + tonumber(ARGV[2]))
return 2
"""
# KEYS: hash, failures. ARGV: now (ms), ok (1/0), window (ms), cool-off (ms), failures to open,
# a unique member, how long an untouched circuit is kept (ms). Returns 1 when the circuit opens.
# KEYS: hash, failures, this window's calls, the previous window's calls. ARGV: now (ms), ok
# (1/0), window (ms), cool-off (ms), failures to open, a unique member, how long an untouched
# circuit is kept (ms), the failure rate to open. Returns 1 when the circuit opens (the rules of
# workflows/circuits.py's Circuit, the calls estimated as its calls_within does).
_RECORD = """
local now = tonumber(ARGV[1])
local window = tonumber(ARGV[3])
local open_until = tonumber(redis.call('HGET', KEYS[1], 'open_until') or '0')
local function count()
  redis.call('INCR', KEYS[3])
  redis.call('PEXPIRE', KEYS[3], 2 * window)
end
local function open()
  redis.call('DEL', KEYS[2], KEYS[3], KEYS[4])
  redis.call('HSET', KEYS[1], 'open_until', now + tonumber(ARGV[4]), 'probe_until', 0)
  redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[7]))
  return 1
end
if ARGV[2] == '1' then
  if open_until == 0 then count()
  elseif now >= open_until then redis.call('DEL', KEYS[1], KEYS[2], KEYS[3], KEYS[4]) end
  return 0
end
if open_until ~= 0 then
  if now < open_until then return 0 end
  return open()
end
count()
redis.call('ZADD', KEYS[2], now, ARGV[6])
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now - window)
redis.call('PEXPIRE', KEYS[2], window)
local failed = redis.call('ZCARD', KEYS[2])
if failed < tonumber(ARGV[5]) then return 0 end
local current = tonumber(redis.call('GET', KEYS[3]) or '0')
local previous = tonumber(redis.call('GET', KEYS[4]) or '0')
local calls = current + previous * (1 - (now % window) / window)
if failed >= tonumber(ARGV[8]) * calls then return open() end
return 0
"""


class RedisCircuits:
    def __init__(
        self,
        redis: Redis,
        config: CircuitConfig | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._redis = redis
        self.config = config or CircuitConfig()
        self.clock = clock
        self.local = LocalCircuits(self.config, lambda: self.clock())
        self._allows = redis.register_script(_ALLOWS)
        self._record = redis.register_script(_RECORD)

    def _keys(self, merchant_id: str, account: str, now: float = 0.0) -> list[str]:
        """The circuit's hash, its failures, and the calls of the window `now` is in and of the
        one before (each expires after two windows: nothing grows with traffic)."""
        base = f"{_PREFIX}{{{merchant_id}}}:{account}"
        window = int(now // self.config.window_seconds)
        return [base, f"{base}:failures", f"{base}:calls:{window}", f"{base}:calls:{window - 1}"]

    def _ms(self, seconds: float) -> int:
        return int(seconds * 1000)

    async def allows(self, merchant_id: str, account: str) -> bool:
        try:
            answer = await self._allows(
                keys=self._keys(merchant_id, account)[:1],
                args=[self._ms(self.clock()), self._ms(self.config.cool_off_seconds)],
            )
        except (RedisError, OSError):
            return await self.local.allows(merchant_id, account)
        return int(answer) != 0

    async def record(self, merchant_id: str, account: str, *, ok: bool) -> None:
        config, now = self.config, self.clock()
        try:
            opened = await self._record(
                keys=self._keys(merchant_id, account, now),
                args=[
                    self._ms(now),
                    1 if ok else 0,
                    self._ms(config.window_seconds),
                    self._ms(config.cool_off_seconds),
                    config.failures,
                    secrets.token_hex(8),
                    # Kept while it matters: open, then half-open for a while (unprobed, it
                    # closes by itself when the key expires).
                    self._ms(2 * config.cool_off_seconds + config.window_seconds),
                    config.failure_rate,
                ],
            )
            if int(opened):
                # Listed for reports (a set of its own slot: written only when one opens).
                await self._redis.sadd(_OPENED, f"{merchant_id}/{account}")
        except (RedisError, OSError):
            await self.local.record(merchant_id, account, ok=ok)

    async def report(self, merchant_id: str | None = None) -> list[CircuitReport]:
        """The circuits that are open or half-open, from Redis (this process's own while Redis
        cannot be reached); those that closed or expired leave the list."""
        now = self._ms(self.clock())
        found = []
        try:
            members = sorted(
                m.decode() if isinstance(m, bytes) else str(m)
                for m in await self._redis.smembers(_OPENED)
            )
            for member in members:
                merchant, _, account = member.partition("/")
                if merchant_id is not None and merchant != merchant_id:
                    continue
                until = int(
                    await self._redis.hget(self._keys(merchant, account)[0], "open_until") or 0
                )
                if not until:
                    await self._redis.srem(_OPENED, member)
                    continue
                state = CircuitState.OPEN if now < until else CircuitState.HALF_OPEN
                found.append(CircuitReport(merchant, account, state, 0, max(0, until - now) / 1000))
        except (RedisError, OSError):
            return await self.local.report(merchant_id)
        return found
