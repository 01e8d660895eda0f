"""Spans for the domain's work, when OpenTelemetry is installed (the `traces` extra) and the
gateway turned tracing on; nothing at all otherwise.

Only ids and outcomes become attributes (run, payment, merchant, processor account, operation,
outcome): never card data, a token, a key or a secret. The tracer is looked up at each
span, so a provider set after import (by `gateway.tracing.setup`) is the one used; until one is
set, a span is nothing.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

try:
    from opentelemetry import trace
except ImportError:  # the extra is not installed: tracing is off
    trace = None  # type: ignore[assignment]

Attribute = str | int | bool


@contextlib.contextmanager
def span(name: str, **attributes: Attribute | None) -> Iterator[Any]:
    """A span around the block (a child of the current one), or nothing when tracing is off."""
    if trace is None or isinstance(trace.get_tracer_provider(), trace.ProxyTracerProvider):
        # Off (no provider installed): not even OpenTelemetry's no-op span, whose context
        # switching cost a request about 1.5% of its CPU.
        yield None
        return
    given = {f"gateway.{k}": v for k, v in attributes.items() if v is not None}
    tracer = trace.get_tracer("gateway")
    # Exceptions are recorded by their type only: a message could quote a processor's answer.
    with tracer.start_as_current_span(
        name, attributes=given, record_exception=False, set_status_on_exception=False
    ) as current:
        try:
            yield current
        except BaseException as error:
            current.set_status(trace.StatusCode.ERROR, type(error).__name__)
            raise


def annotate(**attributes: Attribute | None) -> None:
    """Attributes on the current span (the request's, say, once its merchant is known)."""
    if trace is None:
        return
    current = trace.get_current_span()
    if current.is_recording():
        for key, value in attributes.items():
            if value is not None:
                current.set_attribute(f"gateway.{key}", value)
