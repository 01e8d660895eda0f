"""A circuit breaker per processor account: a new payment passes over an account that keeps
failing, and tries it again after a cool-off.

A call that gets no proper answer (`CallFailed`: refused, 5xx, timeout) is a failure; any answer,
a decline included, is a success. `failures` failures within `window_seconds`, if they are also at
least `failure_rate` of the account's calls in the window (a busy, healthy account's scattered
failures do not open it), open the account's circuit: for `cool_off_seconds` the routing passes
over it (when the rule has another account to try; an account that is the only one left is tried
anyway, since failing the payment at the gateway is the outage a breaker exists to route
around). Then the circuit is half-open: one
payment is let through as a probe (one per cool-off); its success closes the circuit, its
failure opens it again. Captures, cancels, refunds and status questions always go to their
account (only it can do them), and count too.

`Circuits` is where the state lives: `LocalCircuits` in this process (also the fallback of a
shared store that cannot be reached), or the gateway's Redis store, shared by every process.
"""

from __future__ import annotations

import enum
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Protocol

from processors.base import Call, Capabilities, Processor, Result
from processors.errors import CallFailed
from workflows import metrics, tracing


@dataclass(frozen=True)
class CircuitConfig:
    failures: int = 5
    window_seconds: float = 30.0
    cool_off_seconds: float = 30.0
    failure_rate: float = 0.5  # of the calls within the window


class CircuitState(enum.StrEnum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half-open"


@dataclass(frozen=True)
class CircuitReport:
    merchant_id: str
    account: str
    state: CircuitState
    failures: int  # within the window (while closed)
    open_for_seconds: float  # until half-open (0 unless open)


class Circuits(Protocol):
    async def allows(self, merchant_id: str, account: str) -> bool:
        """Whether a new payment may go to the account now (a half-open circuit lets one through:
        the caller that got True is the probe)."""
        ...

    async def record(self, merchant_id: str, account: str, *, ok: bool) -> None: ...

    async def report(self, merchant_id: str | None = None) -> list[CircuitReport]:
        """Every circuit that is not plainly closed (open, half-open, or counting failures)."""
        ...


@dataclass
class Circuit:
    """One account's circuit, as kept in a process (the Redis store keeps the same fields)."""

    failures: list[float] = field(default_factory=list)  # when, within the window
    # Calls per window (by its number: now // window), this one's and the one before: the calls
    # within the sliding window are estimated from both (a sliding window counter).
    calls: dict[int, int] = field(default_factory=dict)
    open_until: float | None = None  # set: open until then, half-open after
    probe_until: float = 0.0  # a half-open circuit's probe was let through, until then

    def state(self, now: float) -> CircuitState:
        if self.open_until is None:
            return CircuitState.CLOSED
        return CircuitState.OPEN if now < self.open_until else CircuitState.HALF_OPEN

    def allows(self, now: float, config: CircuitConfig) -> bool:
        state = self.state(now)
        if state is CircuitState.CLOSED:
            return True
        if state is CircuitState.OPEN or self.probe_until > now:
            return False
        self.probe_until = now + config.cool_off_seconds
        return True

    def record(self, now: float, ok: bool, config: CircuitConfig) -> None:
        state = self.state(now)
        if ok:
            if state is CircuitState.HALF_OPEN:
                self._close()
            elif state is CircuitState.CLOSED:
                self._count(now, config)
            return
        if state is CircuitState.OPEN:
            return
        if state is CircuitState.HALF_OPEN:
            self._open(now, config)
            return
        calls = self._count(now, config)
        self.failures = [t for t in self.failures if t > now - config.window_seconds] + [now]
        failed = len(self.failures)
        if failed >= config.failures and failed >= config.failure_rate * calls:
            self._open(now, config)

    def _count(self, now: float, config: CircuitConfig) -> float:
        """Count a call; the calls within the sliding window, estimated."""
        window = int(now // config.window_seconds)
        self.calls = {w: n for w, n in self.calls.items() if w >= window - 1}
        self.calls[window] = self.calls.get(window, 0) + 1
        return calls_within(
            self.calls[window], self.calls.get(window - 1, 0), now, config.window_seconds
        )

    def _close(self) -> None:
        self.failures, self.calls, self.open_until, self.probe_until = [], {}, None, 0.0

    def _open(self, now: float, config: CircuitConfig) -> None:
        self._close()
        self.open_until = now + config.cool_off_seconds


def calls_within(current: int, previous: int, now: float, window_seconds: float) -> float:
    """The calls within the sliding window ending now, from the counts of this fixed window and
    the one before: the previous one weighted by how much of it the sliding window still covers
    (the Redis store does the same sum)."""
    elapsed = (now % window_seconds) / window_seconds
    return current + previous * (1 - elapsed)


class LocalCircuits:
    """The circuits of this process alone."""

    def __init__(
        self, config: CircuitConfig | None = None, clock: Callable[[], float] = time.time
    ) -> None:
        self.config = config or CircuitConfig()
        self.clock = clock
        self._circuits: dict[tuple[str, str], Circuit] = {}

    def _of(self, merchant_id: str, account: str) -> Circuit:
        return self._circuits.setdefault((merchant_id, account), Circuit())

    async def allows(self, merchant_id: str, account: str) -> bool:
        return self._of(merchant_id, account).allows(self.clock(), self.config)

    async def record(self, merchant_id: str, account: str, *, ok: bool) -> None:
        self._of(merchant_id, account).record(self.clock(), ok, self.config)

    async def report(self, merchant_id: str | None = None) -> list[CircuitReport]:
        now = self.clock()
        found = []
        for (merchant, account), circuit in sorted(self._circuits.items()):
            if merchant_id is not None and merchant != merchant_id:
                continue
            failures = [t for t in circuit.failures if t > now - self.config.window_seconds]
            state = circuit.state(now)
            if state is CircuitState.CLOSED and not failures:
                continue
            left = max(0.0, (circuit.open_until or now) - now)
            found.append(CircuitReport(merchant, account, state, len(failures), left))
        return found


class Watched:
    """A processor whose calls are counted on its account's circuit."""

    def __init__(
        self, inner: Processor, circuits: Circuits, merchant_id: str, account: str
    ) -> None:
        self._inner = inner
        self._circuits = circuits
        self._merchant_id = merchant_id
        self._account = account
        self.capabilities: Capabilities = inner.capabilities

    def key_lifetime(self, call: Call) -> timedelta | None:
        return self._inner.key_lifetime(call)

    async def authorize(self, call: Call) -> Result:
        return await self._watch(self._inner.authorize, call)

    async def capture(self, call: Call) -> Result:
        return await self._watch(self._inner.capture, call)

    async def cancel(self, call: Call) -> Result:
        return await self._watch(self._inner.cancel, call)

    async def refund(self, call: Call) -> Result:
        return await self._watch(self._inner.refund, call)

    async def status(self, call: Call) -> Result:
        return await self._watch(self._inner.status, call)

    async def adjust(self, call: Call) -> Result:
        return await self._watch(self._inner.adjust, call)

    async def resume(self, call: Call, resume_token: str) -> Result:
        async def resume(c: Call) -> Result:
            return await self._inner.resume(c, resume_token)

        return await self._watch(resume, call)

    async def _watch(self, operation: Callable[[Call], Awaitable[Result]], call: Call) -> Result:
        """The call, counted on the account's circuit and in the metrics."""
        verb = operation.__name__  # authorize, capture, cancel, refund, adjust, status, resume
        started = time.perf_counter()
        with tracing.span(
            f"processor.{verb}",
            merchant_id=self._merchant_id,
            processor_account=self._account,
            processor_operation=verb,
        ) as span:
            try:
                result = await operation(call)
            except CallFailed as failed:
                self._count(verb, type(failed).__name__, started)
                await self._circuits.record(self._merchant_id, self._account, ok=False)
                raise
            if span is not None:
                span.set_attribute("gateway.outcome", result.outcome.value)
        self._count(verb, result.outcome.value, started)
        await self._circuits.record(self._merchant_id, self._account, ok=True)
        return result

    def _count(self, operation: str, outcome: str, started: float) -> None:
        metrics.PROCESSOR_CALLS.labels(self._account, operation, outcome).inc()
        metrics.PROCESSOR_SECONDS.labels(self._account, operation).observe(
            time.perf_counter() - started
        )
