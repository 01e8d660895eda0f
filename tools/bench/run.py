"""The benchmark run: start gateway processes, load them, measure the baselines, check the money.

Scenarios, in one invocation on one machine:
- gateway: create + capture per iteration, at each concurrency of the sweep; the peak is the
  concurrency with the most captures/s;
- db limit (a): the same SQL straight through psycopg at the peak concurrency;
- http limit (b): a bare Starlette route, same server settings, same body sizes, same concurrency;
- latency: the sandbox answering captures after `latency_ms`, at `latency_concurrency`;
- floor: PostgreSQL alone doing the minimal durable work of a create and a capture (four commits),
  driven by pgbench (floor.py), at `floor_clients` clients (a number, or the peak's concurrency).
Then every payment captured during the run is checked: its figures must equal the sum of its
transactions.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import platform
import resource
import secrets
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import httpx
import msgspec
import psutil
import psycopg

from gateway import accounts
from gateway.settings import Settings
from tools.bench import database, floor
from tools.bench.load import LoadResult, bare_requests, create_and_capture
from workflows import merchants
from workflows.db import Q

REPO_ROOT = Path(__file__).resolve().parents[2]
HOST = "127.0.0.1"


@dataclass(frozen=True)
class Options:
    seconds: float = 8.0
    concurrency: tuple[int, ...] = (4, 8, 16, 64)
    processes: int = 1
    latency_ms: int = 300
    latency_concurrency: int = 2000
    latency_seconds: float = 10.0
    floor_clients: int | Literal["peak"] = 16


@dataclass
class Peak:
    """Peak resident memory of the gateway's processes, sampled while the load runs."""

    rss: dict[int, int] = field(default_factory=dict)
    _stop: threading.Event = field(default_factory=threading.Event)

    @contextlib.contextmanager
    def watching(self, pid: int) -> Iterator[None]:
        def sample() -> None:
            root = psutil.Process(pid)
            while not self._stop.is_set():
                with contextlib.suppress(psutil.Error):
                    for process in [root, *root.children(recursive=True)]:
                        rss = process.memory_info().rss
                        self.rss[process.pid] = max(rss, self.rss.get(process.pid, 0))
                self._stop.wait(0.1)

        thread = threading.Thread(target=sample, daemon=True)
        thread.start()
        try:
            yield
        finally:
            self._stop.set()
            thread.join()


def run(settings: Settings, options: Options, *, embedded: bool) -> dict[str, Any]:
    assert settings.database_url and settings.redis_url
    _allow_many_connections(options.latency_concurrency + max(options.concurrency) + 256)
    merchant_id, key, token = asyncio.run(_merchant(settings.database_url))
    logs = Path(tempfile.mkdtemp(prefix="gateway-bench-"))
    report: dict[str, Any] = {
        "machine": _machine(embedded),
        "options": msgspec.to_builtins(options),
    }
    peak = Peak()
    port = _free_port()
    gateway = _start(
        [sys.executable, "-m", "gateway", "serve"],
        env=_gateway_env(settings, port, options.processes),
        log=logs / "gateway.log",
    )
    sweep: list[LoadResult] = []
    try:
        _wait_ready(port, gateway, logs / "gateway.log")
        # Warm-up, not reported: connections opened, statements prepared, caches filled.
        asyncio.run(
            create_and_capture(
                HOST,
                port,
                key,
                token,
                concurrency=max(options.concurrency),
                seconds=min(2.0, options.seconds),
            )
        )
        with peak.watching(gateway.pid):
            for concurrency in options.concurrency:
                sweep.append(
                    asyncio.run(
                        create_and_capture(
                            HOST, port, key, token, concurrency=concurrency, seconds=options.seconds
                        )
                    )
                )
            body_size = asyncio.run(_body_sizes(port, key, token))
            latency = asyncio.run(
                create_and_capture(
                    HOST,
                    port,
                    key,
                    token,
                    concurrency=options.latency_concurrency,
                    seconds=options.latency_seconds,
                    metadata={
                        "sandbox_fault_on": "capture",
                        "sandbox_latency_ms": options.latency_ms,
                    },
                )
            )
    finally:
        _stop(gateway)
    best = max(sweep, key=lambda result: result.per_second("capture"))
    db_limit = asyncio.run(
        database.run(
            settings.database_url,
            merchant_id=merchant_id,
            token=token,
            concurrency=best.concurrency,
            seconds=options.seconds,
        )
    )
    http_limit = _bare(best.concurrency, options.seconds, body_size, logs)
    floor_clients = best.concurrency if options.floor_clients == "peak" else options.floor_clients
    the_floor = floor.run(settings.database_url, clients=floor_clients, seconds=options.seconds)
    checked, mismatches = asyncio.run(_check_figures(settings.database_url, merchant_id))

    report["scenarios"] = [_scenario("gateway", result) for result in sweep] + [
        _scenario("db limit (a)", db_limit),
        _scenario("http limit (b)", http_limit),
        _scenario(f"latency {options.latency_ms} ms", latency),
    ]
    ideal = options.latency_concurrency / (options.latency_ms / 1000)
    report["peak"] = {
        "concurrency": best.concurrency,
        "capturesPerSecond": round(best.per_second("capture"), 1),
        "captureP99Ms": round(best.operations["capture"].percentile(0.99) * 1000, 2),
        "gatewayOverDbLimit": _ratio(best.per_second("capture"), db_limit.per_second("capture")),
        "gatewayOverHttpLimit": _ratio(
            best.per_second("capture"), http_limit.per_second("capture")
        ),
        # A create and a capture per iteration: the gateway's pairs/s are its captures/s.
        "gatewayOverFloor": (
            _ratio(best.per_second("capture"), the_floor.pairs_per_second)
            if the_floor.pairs_per_second
            else None
        ),
    }
    report["floor"] = {
        **the_floor.summary(),
        "clientsFrom": "peak" if options.floor_clients == "peak" else "option",
    }
    report["latency"] = {
        "processorLatencyMs": options.latency_ms,
        "concurrency": options.latency_concurrency,
        "maxInFlight": latency.max_in_flight,
        "capturesPerSecond": round(latency.per_second("capture"), 1),
        "concurrencyOverLatency": round(ideal, 1),
        "ratio": _ratio(latency.per_second("capture"), ideal),
        "errors": sum(sum(op.errors.values()) for op in latency.operations.values()),
    }
    report["gatewayPeakRssMb"] = round(max(peak.rss.values(), default=0) / 2**20, 1)
    report["gatewayProcesses"] = len(peak.rss)
    report["correctness"] = {"capturedPaymentsChecked": checked, "mismatches": mismatches}
    report["routingRules"] = routing_rules_cost()
    report["gatewayLog"] = str(logs / "gateway.log")
    return report


def routing_rules_cost(evaluations: int = 50_000) -> dict[str, float]:
    """The time one payment's routing decision takes (a rule set of five rules, the last one
    matching), against a capture's latency at the peak: what the rules add per payment."""
    from workflows.rules import Facts, evaluate, parse

    known = {"sandbox", "manual", "a", "b", "c"}
    rules = parse(
        {
            "rules": [
                {"name": "gbp", "when": {"currency": ["GBP"]}, "accounts": ["a"]},
                {"name": "big", "when": {"amount": {"min": 10**6}}, "accounts": ["b", "a"]},
                {"name": "amex", "when": {"network": ["AMEX"], "bin": ["37"]}, "accounts": ["c"]},
                {"name": "web", "when": {"metadata": {"channel": "web"}}, "accounts": ["a"]},
                {
                    "name": "default",
                    "split": [{"account": "a", "weight": 70}, {"account": "b", "weight": 30}],
                },
            ]
        },
        known,
    )
    facts = Facts(
        currency="EUR",
        amount=1000,
        payment_method="card",
        network="VISA",
        first6="411111",
        metadata={"channel": "app"},
    )
    started = time.perf_counter()
    for n in range(evaluations):
        evaluate(rules, facts, (n % 100) / 100)
    return {"microsecondsPerPayment": round((time.perf_counter() - started) / evaluations * 1e6, 2)}


def print_report(report: dict[str, Any]) -> None:
    machine = report["machine"]
    print(f"gateway bench on {machine['description']}")
    print(
        f"{'scenario':<18}{'conc':>6}{'captures/s':>12}{'creates/s':>11}  "
        f"{'capture p50/p90/p99/max ms':<30}{'create p50/p90/p99/max ms':<30}errors"
    )
    for s in report["scenarios"]:
        cap, cre = s["capture"], s["create"]
        errors = {
            **{f"capture {k}": v for k, v in cap["errors"].items()},
            **{f"create {k}": v for k, v in cre["errors"].items()},
        }
        rates = f"{cap['perSecond']:>12.1f}{cre['perSecond']:>11.1f}"
        print(
            f"{s['name']:<18}{s['concurrency']:>6}{rates}  "
            f"{_latencies(cap):<30}{_latencies(cre):<30}{errors or '-'}"
        )
    f = report["floor"]
    if f["unavailable"] is None:
        rates = f"{f['pairsPerSecond']:>12.1f}{f['pairsPerSecond']:>11.1f}"
        work = f"avg {f['paymentLatencyAvgMs']} ms per payment (create + capture, 4 commits)"
        print(f"{'floor (pgbench)':<18}{f['clients']:>6}{rates}  {work:<60}-")
    else:
        print(f"{'floor (pgbench)':<18}{f['clients']:>6}  unavailable: {f['unavailable']}")
    p, lat = report["peak"], report["latency"]
    over_floor = p["gatewayOverFloor"] if p["gatewayOverFloor"] is not None else "unavailable"
    print(
        f"peak at concurrency {p['concurrency']}: {p['capturesPerSecond']} captures/s, "
        f"p99 {p['captureP99Ms']} ms; gateway / db limit = {p['gatewayOverDbLimit']}, "
        f"gateway / http limit = {p['gatewayOverHttpLimit']}, gateway / floor = {over_floor}"
    )
    if f["unavailable"] is None:
        clients = f"{f['clients']} clients" + (
            " (the peak's)" if f["clientsFrom"] == "peak" else ""
        )
        print(
            f"floor: PostgreSQL alone, pgbench, {clients}, {f['script']} "
            f"(fsync {f['fsync']}, synchronous_commit {f['synchronousCommit']}): "
            f"{f['pairsPerSecond']} pairs/s (a create and a capture each); "
            f"{f['paymentsSettled']} settled payments checked, {f['mismatches']} mismatches; "
            f"gateway / floor = {over_floor}"
        )
    else:
        print(f"floor: unavailable ({f['unavailable']}); gateway / floor not measured")
    print(
        f"latency {lat['processorLatencyMs']} ms: {lat['maxInFlight']} payments in flight at once, "
        f"{lat['capturesPerSecond']} captures/s against concurrency / latency = "
        f"{lat['concurrencyOverLatency']}/s (ratio {lat['ratio']}), {lat['errors']} errors"
    )
    print(
        f"gateway peak RSS: {report['gatewayPeakRssMb']} MB per process "
        f"({report['gatewayProcesses']} process(es))"
    )
    c = report["correctness"]
    print(
        f"correctness: {c['capturedPaymentsChecked']} captured payments checked, "
        f"{c['mismatches']} mismatches"
    )
    cost = report["routingRules"]["microsecondsPerPayment"]
    capture_ms = report["peak"]["captureP99Ms"]
    print(
        f"routing rules: {cost} µs per payment (5 rules, the last matching), "
        f"{cost / 1000 / capture_ms:.5f} of a capture's p99"
    )
    print("BENCH " + msgspec.json.encode(report).decode(), flush=True)


def _latencies(operation: dict[str, Any]) -> str:
    return f"{operation['p50Ms']}/{operation['p90Ms']}/{operation['p99Ms']}/{operation['maxMs']}"


def _scenario(name: str, result: LoadResult) -> dict[str, Any]:
    return {
        "name": name,
        "concurrency": result.concurrency,
        "seconds": result.seconds,
        **{op: stats.summary(result.seconds) for op, stats in result.operations.items()},
    }


def _ratio(value: float, baseline: float) -> float:
    return round(value / baseline, 3) if baseline else 0.0


def _machine(embedded_servers: bool) -> dict[str, Any]:
    cpus = os.cpu_count()
    embedded = "embedded" if embedded_servers else "external"
    description = (
        f"{cpus} cores, {round(psutil.virtual_memory().total / 2**30)} GiB, "
        f"{platform.system()} {platform.machine()}, Python {platform.python_version()}, "
        f"{embedded} PostgreSQL and Redis on the same machine"
    )
    return {"cpus": cpus, "description": description}


def _allow_many_connections(wanted: int) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = min(hard, max(soft, wanted * 2)) if hard != resource.RLIM_INFINITY else wanted * 2
    if target > soft:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def _gateway_env(settings: Settings, port: int, processes: int) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GATEWAY_")}
    assert settings.database_url and settings.redis_url
    env.update(
        GATEWAY_DATABASE_URL=settings.database_url,
        GATEWAY_REDIS_URL=settings.redis_url,
        GATEWAY_HOST=HOST,
        GATEWAY_PORT=str(port),
        GATEWAY_PROCESSES=str(processes),
        GATEWAY_WORKER_IN_PROCESS="false",
        GATEWAY_LOG_LEVEL=settings.log_level,
        GATEWAY_DB_POOL_MAX=str(settings.db_pool_max),
    )
    return env


def _start(
    command: list[str], *, env: dict[str, str] | None = None, log: Path
) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        command,
        env=env,
        cwd=REPO_ROOT,  # `python -m tools.bench.bare` is found from the repository's root
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def _wait_ready(
    port: int,
    process: subprocess.Popen[bytes],
    log: Path,
    *,
    method: str = "GET",
    path: str = "/health/ready",
) -> None:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the server exited with {process.returncode}; see {log}")
        with contextlib.suppress(httpx.TransportError):
            if httpx.request(method, f"http://{HOST}:{port}{path}", timeout=1).status_code == 200:
                return
        time.sleep(0.1)
    raise RuntimeError(f"the server did not get ready; see {log}")


def _stop(process: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGINT)
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def _bare(concurrency: int, seconds: float, body_size: int, logs: Path) -> LoadResult:
    port = _free_port()
    server = _start(
        [sys.executable, "-m", "tools.bench.bare", str(port), str(body_size)],
        log=logs / "bare.log",
    )
    try:
        _wait_ready(port, server, logs / "bare.log", method="POST", path="/payments")
        create_body = (
            b'{"orderId":"bench","currencyCode":"EUR","amount":1000,"paymentMethodToken":"t"}'
        )
        return asyncio.run(
            bare_requests(
                HOST, port, concurrency=concurrency, seconds=seconds, create_body=create_body
            )
        )
    finally:
        _stop(server)


async def _body_sizes(port: int, key: str, token: str) -> int:
    """How large the gateway's capture answer is, for the bare baseline to answer the same."""
    from tools.bench.client import HttpConnection

    connection = HttpConnection(HOST, port, key)
    body = msgspec.json.encode(
        {"orderId": "bench", "currencyCode": "EUR", "amount": 1000, "paymentMethodToken": token}
    )
    _, created, _ = await connection.request("POST", "/payments", body)
    payment_id = msgspec.json.decode(created)["id"]
    _, captured, _ = await connection.request("POST", f"/payments/{payment_id}/capture", b"{}")
    await connection.close()
    return len(captured)


async def _merchant(database_url: str) -> tuple[str, str, str]:
    conn = await psycopg.AsyncConnection.connect(database_url, autocommit=True)
    async with conn:
        merchant = await merchants.create_merchant(conn, f"bench-{secrets.token_hex(4)}")
        key = await accounts.create_key(conn, kind="merchant", merchant=merchant, mode="sandbox")
        token = f"tok_{secrets.token_urlsafe(18)}"
        await conn.execute(
            Q["create_instrument"],
            {
                "merchant_id": merchant.id,
                "token": token,
                "mode": "sandbox",
                "network": "VISA",
                "first6": "411111",
                "last4": "1111",
                "expiration_month": "12",
                "expiration_year": "2030",
                "cardholder_name": None,
                "issuer_country": None,
                "client_session": None,
            },
        )
        # Saved for a customer (vaulted): every payment of the bench may take it.
        await conn.execute(
            "UPDATE payment_instruments SET customer_id = 'bench' "
            "WHERE merchant_id = %s AND token = %s",
            (merchant.id, token),
        )
    return merchant.id, key.secret, token


async def _check_figures(database_url: str, merchant_id: str) -> tuple[int, int]:
    """Every captured payment's figures against the sum of its transactions and events."""
    conn = await psycopg.AsyncConnection.connect(database_url, autocommit=True)
    async with conn:
        cur = await conn.execute(Q["bench_check_figures"], {"merchant_id": merchant_id})
        row = await cur.fetchone()
    assert row is not None
    return int(row[0]), int(row[1])
