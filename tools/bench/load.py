"""The load: merchants' backends creating and capturing payments over keep-alive connections."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import msgspec

from tools.bench.client import HttpConnection


@dataclass
class Operation:
    """What one kind of request did during a run."""

    latencies: list[float] = field(default_factory=list)
    errors: Counter[str] = field(default_factory=Counter)

    def count(self) -> int:
        return len(self.latencies)

    def percentile(self, q: float) -> float:
        if not self.latencies:
            return 0.0
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))]

    def summary(self, seconds: float) -> dict[str, Any]:
        return {
            "perSecond": round(self.count() / seconds, 1),
            "count": self.count(),
            "p50Ms": round(self.percentile(0.50) * 1000, 2),
            "p90Ms": round(self.percentile(0.90) * 1000, 2),
            "p99Ms": round(self.percentile(0.99) * 1000, 2),
            "maxMs": round(max(self.latencies, default=0.0) * 1000, 2),
            "errors": dict(self.errors),
        }


@dataclass
class LoadResult:
    seconds: float
    concurrency: int
    operations: dict[str, Operation]
    max_in_flight: int = 0
    payment_ids: list[str] = field(default_factory=list)

    def per_second(self, operation: str) -> float:
        return self.operations[operation].count() / self.seconds


_ids = msgspec.json.Decoder(dict[str, Any])


async def create_and_capture(
    host: str,
    port: int,
    api_key: str,
    token: str,
    *,
    concurrency: int,
    seconds: float,
    metadata: dict[str, Any] | None = None,
) -> LoadResult:
    """Each connection in a loop: create a payment, then capture it; both with idempotency keys."""
    operations = {"create": Operation(), "capture": Operation()}
    create_body = msgspec.json.encode(
        {
            "orderId": "bench",
            "currencyCode": "EUR",
            "amount": 1000,
            "paymentMethodToken": token,
            **({"metadata": metadata} if metadata else {}),
        }
    )
    in_flight = 0
    result = LoadResult(seconds, concurrency, operations)
    started = asyncio.Event()
    ready = 0
    deadline = 0.0

    async def user() -> None:
        nonlocal in_flight, ready, deadline
        connection = HttpConnection(host, port, api_key)
        await connection.open()
        ready += 1
        if ready == concurrency:
            deadline = time.perf_counter() + seconds
            started.set()
        await started.wait()
        try:
            while time.perf_counter() < deadline:
                try:
                    status, body, took = await connection.request(
                        "POST", "/payments", create_body, uuid.uuid4().hex
                    )
                except (OSError, asyncio.IncompleteReadError) as error:
                    operations["create"].errors[type(error).__name__] += 1
                    await connection.close()
                    continue
                if status != 200:
                    operations["create"].errors[f"HTTP {status}"] += 1
                    continue
                operations["create"].latencies.append(took)
                payment_id = _ids.decode(body)["id"]
                in_flight += 1
                result.max_in_flight = max(result.max_in_flight, in_flight)
                try:
                    status, _, took = await connection.request(
                        "POST", f"/payments/{payment_id}/capture", b"{}", uuid.uuid4().hex
                    )
                except (OSError, asyncio.IncompleteReadError) as error:
                    operations["capture"].errors[type(error).__name__] += 1
                    await connection.close()
                    continue
                finally:
                    in_flight -= 1
                if status != 200:
                    operations["capture"].errors[f"HTTP {status}"] += 1
                    continue
                operations["capture"].latencies.append(took)
                result.payment_ids.append(payment_id)
        finally:
            await connection.close()

    await asyncio.gather(*(user() for _ in range(concurrency)))
    # Rates are over the time the run really took: the last iterations end after the deadline.
    result.seconds = max(seconds, time.perf_counter() - (deadline - seconds))
    return result


async def bare_requests(
    host: str, port: int, *, concurrency: int, seconds: float, create_body: bytes
) -> LoadResult:
    """The same two requests per iteration against the bare baseline server."""
    operations = {"create": Operation(), "capture": Operation()}
    result = LoadResult(seconds, concurrency, operations)
    started = time.perf_counter()
    deadline = started + seconds

    async def user() -> None:
        connection = HttpConnection(host, port, "bare")
        await connection.open()
        try:
            while time.perf_counter() < deadline:
                for name, path, body in (
                    ("create", "/payments", create_body),
                    ("capture", "/payments/pay_bare/capture", b"{}"),
                ):
                    status, _, took = await connection.request("POST", path, body, "k")
                    if status == 200:
                        operations[name].latencies.append(took)
                    else:
                        operations[name].errors[f"HTTP {status}"] += 1
        finally:
            await connection.close()

    await asyncio.gather(*(user() for _ in range(concurrency)))
    result.seconds = max(seconds, time.perf_counter() - started)
    return result
