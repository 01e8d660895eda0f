"""`GET /metrics`: Prometheus' format, for operator keys; what a payment's life counts."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import httpx
from prometheus_client.parser import text_string_to_metric_families

from gateway import accounts
from gateway.settings import Settings
from tests.conftest import gateway_env, run_gateway
from tests.integration.conftest import Running, SomeMerchant
from tests.integration.shop import Shop
from tests.integration.test_crash import processes, start_gateway  # noqa: F401


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    found = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


def value(found: dict[Any, float], name: str, **labels: str) -> float:
    return found.get((name, tuple(sorted(labels.items()))), 0.0)


async def test_metrics_count_a_payments_life_for_operators_only(
    running: Running, shop: Shop, merchant: SomeMerchant, db: Any
) -> None:
    assert (await running.client.get("/metrics")).status_code == 401
    merchant_only = await running.client.get("/metrics", headers={"X-API-KEY": merchant.key})
    assert merchant_only.status_code == 401
    operator = {"X-API-KEY": (await accounts.create_key(db, kind="operator")).secret}
    before = samples((await running.client.get("/metrics", headers=operator)).text)

    payment = await shop.create(1000)
    await shop.capture(payment["id"])
    answer = await running.client.get("/metrics", headers=operator)
    assert answer.headers["content-type"].startswith("text/plain")
    after = samples(answer.text)

    def grew(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    assert grew("gateway_http_requests_total", route="/payments", method="POST", status="200") == 1
    assert (
        grew(
            "gateway_http_requests_total",
            route="/payments/{id}/capture",
            method="POST",
            status="200",
        )
        == 1
    )
    assert (
        grew(
            "gateway_processor_calls_total",
            account="sandbox",
            operation="authorize",
            outcome="AUTHORIZED",
        )
        == 1
    )
    assert (
        grew(
            "gateway_processor_calls_total",
            account="sandbox",
            operation="capture",
            outcome="CAPTURED",
        )
        == 1
    )
    assert grew("gateway_payment_status_changes_total", account="sandbox", status="SETTLED") == 1
    for name, state in (
        ("gateway_workflow_runs", "stuck"),
        ("gateway_webhook_deliveries", "dead"),
        ("gateway_circuit_breakers", "open"),
        ("gateway_db_pool_connections", "open"),
    ):
        assert (name, (("state", state),)) in after, name
    assert ("gateway_idempotency_redis_failures", ()) in after
    # A path's ids never become labels.
    assert not any(payment["id"] in str(key) for key in after)


def test_processes_of_one_gateway_add_their_figures_up(
    settings: Settings,
    processes: list[subprocess.Popen[bytes]],  # noqa: F811
    tmp_path: Path,
) -> None:
    operator_key = run_gateway(settings, "keys", "create", "--operator").stdout.strip()
    _, base = start_gateway(
        gateway_env(settings, GATEWAY_PROCESSES="2", GATEWAY_DATA_DIR=str(tmp_path / "data")),
        processes,
        tmp_path / "gateway.log",
    )
    with httpx.Client(base_url=base) as client:
        for _ in range(20):
            assert client.get("/health/live").status_code == 200
        scraped = samples(client.get("/metrics", headers={"X-API-KEY": operator_key}).text)
    served = value(
        scraped, "gateway_http_requests_total", route="/health/live", method="GET", status="200"
    )
    assert served == 20  # every process's requests, summed by the scrape of one
