"""The Starlette application: routes top to bottom, the lifespan, exception handlers by class."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Sequence

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from gateway import admin, health, instruments, payments
from gateway.errors import ApiError, MethodNotAllowed, RouteNotFound, from_payment_error
from gateway.middleware import RequestContext, request_id
from gateway.services import open_services
from gateway.settings import Settings
from workflows import worker
from workflows.errors import PaymentError

ROUTES: list[BaseRoute] = [
    Route("/payment-instruments", instruments.create_instrument, methods=["POST"]),
    Route("/payments", payments.create_payment, methods=["POST"]),
    Route("/payments", payments.list_payments, methods=["GET"]),
    Route("/payments/{id}", payments.get_payment, methods=["GET"]),
    Route("/payments/{id}/capture", payments.capture_payment, methods=["POST"]),
    Route("/payments/{id}/cancel", payments.cancel_payment, methods=["POST"]),
    Route("/payments/{id}/refund", payments.refund_payment, methods=["POST"]),
    Route("/admin/workflows", admin.list_runs, methods=["GET"]),
    Route("/admin/workflows/{id}", admin.show_run, methods=["GET"]),
    Route("/admin/workflows/{id}/replay", admin.replay_run, methods=["POST"]),
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


async def payment_error(request: Request, error: Exception) -> Response:
    assert isinstance(error, PaymentError)
    return await api_error(request, from_payment_error(error))


async def http_error(request: Request, error: Exception) -> Response:
    assert isinstance(error, HTTPException)
    if error.status_code == 405:
        return await api_error(request, MethodNotAllowed())
    if error.status_code == 404:
        return await api_error(request, RouteNotFound())
    return await api_error(request, ApiError(str(error.detail), status=error.status_code))


def app_from_environment() -> Starlette:
    """The app of a `gateway serve` worker process, from the GATEWAY_* environment."""
    from gateway import settings as settings_module
    from gateway.logging import configure

    settings = settings_module.load()
    configure(settings.log_level)
    return create_app(settings)


def create_app(settings: Settings, *, extra_routes: Sequence[BaseRoute] = ()) -> Starlette:
    """The gateway app for `settings`, whose database and Redis URLs must be set."""

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        async with open_services(settings) as services:
            app.state.services = services
            stop = asyncio.Event()
            worker_task = None
            if settings.runs_worker:
                worker_task = asyncio.create_task(worker.run(services.engine, stop))
            try:
                yield
            finally:
                stop.set()
                if worker_task is not None:
                    await worker_task

    return Starlette(
        routes=[*ROUTES, *extra_routes],
        middleware=[Middleware(RequestContext, max_body_bytes=settings.max_body_bytes)],
        exception_handlers={
            ApiError: api_error,
            PaymentError: payment_error,
            HTTPException: http_error,
        },
        lifespan=lifespan,
    )
