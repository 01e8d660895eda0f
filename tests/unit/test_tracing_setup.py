"""Traces are off unless asked for, and asking without the `traces` extra is a clear error."""

from __future__ import annotations

import sys

import pytest
from opentelemetry import trace

from gateway import tracing
from gateway.settings import Settings


def test_traces_are_off_by_default() -> None:
    assert Settings().traces == "off"
    assert tracing.setup(Settings()) is False
    assert isinstance(trace.get_tracer_provider(), trace.ProxyTracerProvider)


def test_asking_for_traces_without_opentelemetry_says_what_to_install(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "opentelemetry.sdk.trace", None)  # as if not installed
    with pytest.raises(tracing.TracesUnavailable, match=r"payment-gateway\[traces\]"):
        tracing.setup(Settings(traces="otlp"))
