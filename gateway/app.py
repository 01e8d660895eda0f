"""The Starlette application: routes top to bottom, the lifespan, exception handlers by class."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Sequence

from redis.asyncio import Redis
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from gateway import health
from gateway.errors import ApiError, MethodNotAllowed, RouteNotFound
from gateway.idempotency import IdempotencyGuard
from gateway.middleware import RequestContext, request_id
from gateway.services import Services
from gateway.settings import Settings
from gateway.storage import create_pool

ROUTES: list[BaseRoute] = [
    Route("/health/live", health.live, methods=["GET"]),
    Route("/health/ready", health.ready, methods=["GET"]),
]


async def api_error(request: Request, error: Exception) -> Response:
    assert isinstance(error, ApiError)
    return Response(
        error.body(request_id(request.scope)),
        status_code=error.status,
        headers=error.headers,
        media_type="application/json",
    )


async def http_error(request: Request, error: Exception) -> Response:
    assert isinstance(error, HTTPException)
    if error.status_code == 405:
        return await api_error(request, MethodNotAllowed())
    if error.status_code == 404:
        return await api_error(request, RouteNotFound())
    return await api_error(request, ApiError(str(error.detail), status=error.status_code))


def open_redis(settings: Settings) -> Redis:
    assert settings.redis_url is not None
    return Redis.from_url(
        settings.redis_url,
        socket_timeout=settings.redis_timeout_seconds,
        socket_connect_timeout=settings.redis_timeout_seconds,
        retry_on_timeout=False,
        health_check_interval=0,
        max_connections=1024,
    )


def create_app(settings: Settings, *, extra_routes: Sequence[BaseRoute] = ()) -> Starlette:
    """The gateway app for `settings`, whose database and Redis URLs must be set."""

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        assert settings.database_url is not None
        pool = create_pool(
            settings.database_url, min_size=settings.db_pool_min, max_size=settings.db_pool_max
        )
        await pool.open(wait=True, timeout=30)
        redis = open_redis(settings)
        guard = IdempotencyGuard(
            pool,
            redis,
            ttl_seconds=settings.idempotency_ttl_seconds,
            lease_seconds=settings.idempotency_lease_seconds,
        )
        app.state.services = Services(settings=settings, pool=pool, redis=redis, idempotency=guard)
        try:
            yield
        finally:
            await redis.aclose()
            await pool.close()

    return Starlette(
        routes=[*ROUTES, *extra_routes],
        middleware=[Middleware(RequestContext, max_body_bytes=settings.max_body_bytes)],
        exception_handlers={ApiError: api_error, HTTPException: http_error},
        lifespan=lifespan,
    )
