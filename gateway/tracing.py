"""OpenTelemetry traces, off by default: `GATEWAY_TRACES=otlp` exports them over OTLP/HTTP (to
OTEL_EXPORTER_OTLP_ENDPOINT, http://localhost:4318 unless set, with OpenTelemetry's other
OTEL_* settings), `console` prints them. Needs the `traces` extra
(`pip install 'payment-gateway[traces]'`; `make install` has it).

One trace per request: the request's span (W3C `traceparent` from the caller is honoured), the
workflow run's passes under it, and each processor call under those. A run the worker drives is
a trace of its own. Attributes are ids and outcomes only (workflows/tracing.py).
"""

from __future__ import annotations

from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gateway import GatewayError
from gateway.settings import Settings


class TracesUnavailable(GatewayError):
    """GATEWAY_TRACES is set, but OpenTelemetry is not installed: install the `traces` extra
    (pip install 'payment-gateway[traces]')."""


def require(settings: Settings) -> None:
    """Refuse, before anything starts, traces asked for without OpenTelemetry installed."""
    if settings.traces != "off":
        try:
            import opentelemetry.sdk.trace  # noqa: F401
        except ImportError:
            raise TracesUnavailable(" ".join((TracesUnavailable.__doc__ or "").split())) from None


def setup(settings: Settings) -> bool:
    """Install the exporter `settings` ask for (once per process); whether traces are on."""
    if settings.traces == "off":
        return False
    require(settings)
    try:
        from opentelemetry import trace
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import (
            BatchSpanProcessor,
            ConsoleSpanExporter,
            SpanExporter,
        )
    except ImportError:
        raise TracesUnavailable(" ".join((TracesUnavailable.__doc__ or "").split())) from None
    if not isinstance(trace.get_tracer_provider(), trace.ProxyTracerProvider):
        return True  # this process has one already (an app made twice, as in the tests)
    exporter: SpanExporter
    if settings.traces == "otlp":
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        exporter = OTLPSpanExporter()
    else:
        exporter = ConsoleSpanExporter()
    provider = TracerProvider(resource=Resource.create({"service.name": "payment-gateway"}))
    provider.add_span_processor(BatchSpanProcessor(exporter))
    trace.set_tracer_provider(provider)
    return True


def shutdown() -> None:
    """Send what is still buffered (at the end of the lifespan)."""
    from opentelemetry import trace

    provider: Any = trace.get_tracer_provider()
    if hasattr(provider, "force_flush"):
        provider.force_flush()


# W3C trace context: the only headers read (never a key or a body).
_PROPAGATED = frozenset((b"traceparent", b"tracestate"))


class Traced:
    """Pure ASGI middleware, outermost: a server span per HTTP request, named by its route's
    template once routed, with the request id, the status and (set by the surface) the merchant."""

    def __init__(self, app: ASGIApp) -> None:
        from opentelemetry import propagate, trace

        self.app = app
        self._tracer = trace.get_tracer("gateway.http")
        self._extract = propagate.extract
        self._server = trace.SpanKind.SERVER
        self._error = trace.StatusCode.ERROR

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        carrier = {
            name.decode("latin-1"): value.decode("latin-1")
            for name, value in scope["headers"]
            if name in _PROPAGATED
        }
        status = 500

        async def send_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        method = scope["method"]
        with self._tracer.start_as_current_span(
            method, context=self._extract(carrier), kind=self._server
        ) as span:
            try:
                await self.app(scope, receive, send_status)
            finally:
                template = getattr(scope.get("route"), "path", None)
                route = scope.get("root_path", "") + template if template else None
                if route:
                    span.update_name(f"{method} {route}")
                    span.set_attribute("http.route", route)
                span.set_attribute("http.request.method", method)
                span.set_attribute("http.response.status_code", status)
                request_id = scope.get("state", {}).get("request_id")
                if request_id:
                    span.set_attribute("gateway.request_id", request_id)
                if status >= 500:
                    span.set_status(self._error)
