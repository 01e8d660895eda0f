"""The Starlette application: one Mount per API surface, and the lifespan of the services."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.routing import BaseRoute, Mount, Route

from gateway import console, metrics, runtime, tracing
from gateway.api import health, medusa, operator, primer, processor_events, reference
from gateway.http.middleware import RequestContext
from gateway.services import open_services
from gateway.settings import Settings
from workflows import worker


@dataclass(frozen=True)
class ExtraRoutes:
    """Routes added to a surface (tests mount probes with its authentication and errors)."""

    primer: Sequence[BaseRoute] = ()
    operator: Sequence[BaseRoute] = ()


def app_from_environment() -> Starlette:
    """The app of a `gateway serve` worker process, from the GATEWAY_* environment."""
    from gateway import settings as settings_module
    from gateway.logging import configure

    settings = settings_module.load()
    configure(settings.log_level, settings.log_format)
    app = create_app(settings)
    runtime.tune_collector()
    return app


def create_app(settings: Settings, *, extra: ExtraRoutes | None = None) -> Starlette:
    """The gateway app for `settings`, whose database and Redis URLs must be set."""

    traced = tracing.setup(settings)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        async with open_services(settings) as services:
            app.state.services = services
            stop = asyncio.Event()
            tasks = []
            if settings.runs_worker:
                tasks = [
                    asyncio.create_task(worker.run(services.engine, stop)),
                    asyncio.create_task(services.webhooks.run(stop)),
                ]
            try:
                yield
            finally:
                stop.set()
                await asyncio.gather(*tasks)
                if traced:
                    tracing.shutdown()

    extra = extra or ExtraRoutes()
    # One Mount per API surface, each with its own authentication and error handlers. /admin is
    # two surfaces: Medusa's admin Payments API takes /admin/payments (merchant keys, Medusa's
    # errors), the operator API the rest of /admin (operator keys). Primer's paths have no
    # prefix: its mount comes last and takes what the others do not.
    return Starlette(
        routes=[
            Mount("/health", app=health.app()),
            Route("/metrics", endpoint=metrics.app()),
            *reference.ROUTES,  # /openapi.json and /docs
            Route(medusa.PREFIX, endpoint=medusa.app()),  # the bare path: Medusa's 404
            Mount(medusa.PREFIX, app=medusa.app()),
            Mount("/admin", app=operator.app(extra.operator)),
            Mount("/webhooks", app=processor_events.app()),
            Route("/console", endpoint=console.to_console),  # the bare path: to its pages
            Mount("/console", app=console.app()),
            Mount("", app=primer.app(extra.primer)),
        ],
        middleware=[
            *([Middleware(tracing.Traced)] if traced else []),  # outermost: the request's span
            Middleware(
                RequestContext,
                max_body_bytes=settings.max_body_bytes,
                shapes=[(medusa.PREFIX, medusa.errors.shape)],
            ),
        ],
        lifespan=lifespan,
    )
