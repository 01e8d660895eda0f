"""The benchmark (`make bench`), tiny: it must run and print every figure. Speed is never
asserted here."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from gateway.settings import Settings
from tests.conftest import REPO_ROOT, gateway_env
from tools.bench import floor


def test_a_tiny_bench_prints_every_figure_and_finds_no_mismatch(settings: Settings) -> None:
    args = [
        "--duration",
        "1",
        "--concurrency",
        "2,4",
        "--latency-ms",
        "50",
        "--latency-concurrency",
        "10",
        "--latency-duration",
        "1",
        "--floor-clients",
        "peak",
    ]
    result = subprocess.run(
        [sys.executable, "-m", "tools.bench", *args],
        capture_output=True,
        text=True,
        env=gateway_env(settings),
        cwd=REPO_ROOT,
        timeout=600,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    for row in ("gateway", "db limit (a)", "http limit (b)", "floor (pgbench)", "latency 50 ms"):
        assert any(line.startswith(row) for line in out.splitlines()), row
    assert "peak at concurrency" in out and "gateway / db limit =" in out
    assert "gateway / http limit =" in out and "gateway / floor =" in out
    assert "floor: PostgreSQL alone, pgbench," in out and "0 mismatches; gateway / floor" in out
    assert "payments in flight at once" in out and "concurrency / latency =" in out
    assert "gateway peak RSS:" in out
    assert "captured payments checked, 0 mismatches" in out
    [line] = [line for line in out.splitlines() if line.startswith("BENCH ")]
    report = json.loads(line.removeprefix("BENCH "))
    names = [s["name"] for s in report["scenarios"]]
    assert names == ["gateway", "gateway", "db limit (a)", "http limit (b)", "latency 50 ms"]
    for scenario in report["scenarios"]:
        for operation in ("create", "capture"):
            figures = scenario[operation]
            assert set(figures) >= {"perSecond", "p50Ms", "p90Ms", "p99Ms", "maxMs", "errors"}
            assert figures["count"] > 0, scenario["name"]
    assert report["peak"]["gatewayOverDbLimit"] > 0
    assert report["peak"]["gatewayOverHttpLimit"] > 0
    # The floor: pgbench ran the four commits of a payment at the peak's concurrency, every
    # payment it counted is settled and whole in its tables, and the ratio is there.
    assert report["floor"]["unavailable"] is None
    assert report["floor"]["pairsPerSecond"] > 0
    assert report["floor"]["clients"] == report["peak"]["concurrency"]
    assert report["floor"]["clientsFrom"] == "peak"
    assert report["floor"]["script"] == "4 commits per payment"
    assert report["floor"]["paymentsSettled"] == report["floor"]["pgbenchPayments"] > 0
    assert report["floor"]["mismatches"] == 0
    assert report["floor"]["fsync"] == "on" and report["floor"]["synchronousCommit"] == "on"
    assert report["peak"]["gatewayOverFloor"] > 0
    assert report["latency"]["maxInFlight"] > 0
    assert report["gatewayPeakRssMb"] > 0
    assert report["correctness"]["capturedPaymentsChecked"] > 0
    assert report["correctness"]["mismatches"] == 0


def test_without_pgbench_the_floor_is_unavailable_and_says_why(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(floor, "find_pgbench", lambda: None)
    assert settings.database_url
    measured = floor.run(settings.database_url, clients=2, seconds=1)
    assert measured.pairs_per_second is None
    assert measured.unavailable is not None and "no pgbench" in measured.unavailable
