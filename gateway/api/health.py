"""Liveness and readiness.

Ready means PostgreSQL answers: it is the truth, and without it no request can be served. Redis
being unreachable is reported (`"redis": "unavailable"`) but does not make the gateway unready,
because payments keep flowing on the PostgreSQL path; taking every instance out of a load
balancer when Redis blips would turn a degradation into an outage.
"""

from __future__ import annotations

import asyncio

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import ASGIApp

from gateway.http.handlers import surface
from gateway.http.responses import JSONResponse
from gateway.services import Services

_CHECK_TIMEOUT_SECONDS = 2.0


async def live(request: Request) -> Response:
    return JSONResponse({"status": "ok"})


async def ready(request: Request) -> Response:
    services: Services = request.app.state.services
    postgres, redis, circuits = await asyncio.gather(
        _postgres_ok(services), _redis_ok(services), _circuits(services)
    )
    body = {
        "status": "ready" if postgres else "unavailable",
        "postgres": "ok" if postgres else "unavailable",
        "redis": "ok" if redis else "unavailable",
        "redisFailures": services.idempotency.redis_failures,
        # Processor accounts whose circuit breaker is open or half-open (new payments pass over
        # them); a detail, not a reason to be unready.
        "circuits": circuits,
    }
    return JSONResponse(body, status_code=200 if postgres else 503)


async def _postgres_ok(services: Services) -> bool:
    try:
        async with asyncio.timeout(_CHECK_TIMEOUT_SECONDS):
            async with services.pool.connection() as conn:
                await conn.execute("SELECT 1")
        return True
    except Exception:
        return False


async def _circuits(services: Services) -> list[dict[str, object]]:
    try:
        async with asyncio.timeout(_CHECK_TIMEOUT_SECONDS):
            found = await services.engine.circuits.report()
    except Exception:
        return []
    return [
        {
            "merchantId": c.merchant_id,
            "account": c.account,
            "state": c.state.value,
            "openForSeconds": round(c.open_for_seconds, 1),
        }
        for c in found
    ]


async def _redis_ok(services: Services) -> bool:
    try:
        async with asyncio.timeout(_CHECK_TIMEOUT_SECONDS):
            return bool(await services.redis.ping())
    except Exception:
        return False


def app() -> ASGIApp:
    """Mounted at /health: no key needed, nothing to leak."""
    return surface(
        [Route("/live", live, methods=["GET"]), Route("/ready", ready, methods=["GET"])], {}
    )
