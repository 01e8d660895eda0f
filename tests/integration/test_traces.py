"""OpenTelemetry traces (GATEWAY_TRACES=otlp): a `gateway serve` process exports, over OTLP/HTTP
to a local collector, one trace per request, from the request through the workflow run to each
processor call, with ids as attributes and never card data or a key."""

from __future__ import annotations

import secrets
import subprocess
from pathlib import Path
from typing import Any

import httpx
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from gateway.settings import Settings
from tests.conftest import gateway_env
from tests.integration.conftest import SomeMerchant, wait_for
from tests.integration.test_crash import processes, start_gateway  # noqa: F401
from tests.integration.webhook_receiver import Receiver, serve

CARD = "4111111111111111"
CVV = "987"


def spans_of(collector: Receiver) -> tuple[dict[str, Any], bytes]:
    """Every span the collector received, by name (the last of each), and the raw bodies."""
    found: dict[str, Any] = {}
    raw = b""
    for received in list(collector.received):
        raw += received.body
        request = ExportTraceServiceRequest.FromString(received.body)
        for resource in request.resource_spans:
            for scope in resource.scope_spans:
                for span in scope.spans:
                    found[span.name] = span
    return found, raw


def attributes(span: Any) -> dict[str, Any]:
    return {a.key: a.value.string_value or a.value.int_value for a in span.attributes}


def test_a_payment_is_one_trace_from_its_request_to_the_processor_call(
    settings: Settings,
    merchant: SomeMerchant,
    processes: list[subprocess.Popen[bytes]],  # noqa: F811
    tmp_path: Path,
) -> None:
    collector = next(serve_collector := serve())
    try:
        env = gateway_env(
            settings,
            GATEWAY_DATA_DIR=str(tmp_path / "data"),
            GATEWAY_TRACES="otlp",
            OTEL_EXPORTER_OTLP_ENDPOINT=collector.url.removesuffix("/hooks"),
            OTEL_BSP_SCHEDULE_DELAY="50",
        )
        _, base = start_gateway(env, processes, tmp_path / "gateway.log")
        headers = {"X-API-KEY": merchant.key}
        card = {"number": CARD, "expirationMonth": "12", "expirationYear": "2032", "cvv": CVV}
        token = httpx.post(f"{base}/payment-instruments", json=card, headers=headers).json()
        # The caller's own trace: the gateway's spans join it.
        trace_id, parent_id = secrets.token_hex(16), secrets.token_hex(8)
        created = httpx.post(
            f"{base}/payments",
            json={
                "orderId": "traced-1",
                "currencyCode": "EUR",
                "amount": 1200,
                "paymentMethodToken": token["token"],
            },
            headers={**headers, "traceparent": f"00-{trace_id}-{parent_id}-01"},
        )
        assert created.status_code == 200, created.text
        payment = created.json()["id"]
        captured = httpx.post(f"{base}/payments/{payment}/capture", json={}, headers=headers)
        assert captured.status_code == 200

        wanted = {
            "POST /payments",
            "workflow.authorize",
            "processor.authorize",
            "POST /payments/{id}/capture",
            "workflow.capture",
            "processor.capture",
        }
        wait_for(lambda: wanted <= set(spans_of(collector)[0]), "the spans at the collector")
        spans, raw = spans_of(collector)
        request, run, call = (
            spans[name] for name in ("POST /payments", "workflow.authorize", "processor.authorize")
        )
        # One trace, the caller's, nested request > run > processor call.
        assert {request.trace_id.hex(), run.trace_id.hex(), call.trace_id.hex()} == {trace_id}
        assert request.parent_span_id.hex() == parent_id
        assert run.parent_span_id == request.span_id
        assert call.parent_span_id == run.span_id
        assert attributes(request)["http.route"] == "/payments"
        assert attributes(request)["http.response.status_code"] == 200
        assert attributes(request)["gateway.merchant_id"] == merchant.id
        assert attributes(request)["gateway.request_id"] == created.headers["x-request-id"]
        assert attributes(run)["gateway.payment_id"] == payment
        assert attributes(run)["gateway.run_kind"] == "authorize"
        assert attributes(call)["gateway.processor_operation"] == "authorize"
        assert attributes(call)["gateway.outcome"] == "AUTHORIZED"
        # The capture is a trace of its own, shaped the same.
        capture = spans["processor.capture"]
        assert capture.trace_id != call.trace_id
        assert capture.parent_span_id == spans["workflow.capture"].span_id
        # Ids and outcomes only: no card, no token, no key anywhere in what was exported (long
        # enough never to turn up by chance in ids and timestamps), and no CVV as any value.
        for secret in (CARD, token["token"], merchant.key):
            assert secret.encode() not in raw
        for span in spans.values():
            for name, value in attributes(span).items():
                assert str(value) != CVV and "cvv" not in name.lower(), (span.name, name)
    finally:
        serve_collector.close()
