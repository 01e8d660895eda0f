"""`GET /metrics`: Prometheus' text format (prometheus-client), for operator keys only.

Counted as things happen: HTTP requests by surface route, method and status, with latency
(here, by the middleware); processor calls and payments' status changes (workflows/metrics.py).
Read at each scrape: workflow runs running, due and stuck; webhook deliveries pending and dead;
circuit breakers open and half-open; the idempotency guard's Redis failures (its fast path
degraded); the database pool's connections. With `GATEWAY_PROCESSES` > 1 every process writes
its figures under `PROMETHEUS_MULTIPROC_DIR` (set by `gateway serve`) and a scrape of any one of
them adds them up.
"""

from __future__ import annotations

import os

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Gauge,
    generate_latest,
    multiprocess,
)
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import ASGIApp

from gateway import accounts
from gateway.api.operator.endpoint import operator_endpoint
from gateway.http.handlers import surface
from gateway.services import Services

# Read at each scrape: the same in every process ("max" adds nothing up twice).
RUNS = Gauge(
    "gateway_workflow_runs",
    "Workflow runs: running (due now or waiting) and stuck.",
    ["state"],
    multiprocess_mode="max",
)
DELIVERIES = Gauge(
    "gateway_webhook_deliveries",
    "Webhook deliveries pending (to be tried) and dead (dead-lettered).",
    ["state"],
    multiprocess_mode="max",
)
CIRCUITS = Gauge(
    "gateway_circuit_breakers",
    "Processor accounts' circuit breakers that are open or half-open.",
    ["state"],
    multiprocess_mode="max",
)
REDIS_FAILURES = Gauge(
    "gateway_idempotency_redis_failures",
    "Redis calls of the idempotency guard that failed (its fast path degraded to PostgreSQL).",
    multiprocess_mode="livesum",
)
POOL = Gauge(
    "gateway_db_pool_connections",
    "The database pool's connections: open, and idle (the rest are in use).",
    ["state"],
    multiprocess_mode="livesum",
)

_SCRAPE_QUERY = """
SELECT
  (SELECT count(*) FROM workflow_runs WHERE state = 'running'),
  (SELECT count(*) FROM workflow_runs WHERE state = 'running' AND next_attempt_at <= now()),
  (SELECT count(*) FROM workflow_runs WHERE state = 'stuck'),
  (SELECT count(*) FROM webhook_deliveries WHERE state = 'pending'),
  (SELECT count(*) FROM webhook_deliveries WHERE state = 'dead')
"""


async def _read_now(services: Services) -> None:
    async with services.engine.db.connection() as conn:
        cur = await conn.execute(_SCRAPE_QUERY)
        row = await cur.fetchone()
    assert row is not None
    running, due, stuck, pending, dead = row
    RUNS.labels("running").set(running)
    RUNS.labels("due").set(due)
    RUNS.labels("stuck").set(stuck)
    DELIVERIES.labels("pending").set(pending)
    DELIVERIES.labels("dead").set(dead)
    states = [c.state.value for c in await services.engine.circuits.report()]
    for state in ("open", "half-open"):
        CIRCUITS.labels(state).set(states.count(state))
    REDIS_FAILURES.set(services.idempotency.redis_failures)
    stats = services.pool.get_stats()
    POOL.labels("open").set(stats.get("pool_size", 0))
    POOL.labels("idle").set(stats.get("pool_available", 0))


@operator_endpoint
async def metrics(request: Request, principal: accounts.Principal) -> Response:
    services: Services = request.app.state.services
    await _read_now(services)
    registry = REGISTRY
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
    return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)


def app() -> ASGIApp:
    """`GET /metrics`, a surface of its own (the operator API's keys and error shape)."""
    return surface([Route("/metrics", metrics, methods=["GET"])], {})
