"""A gateway process killed (SIGKILL) while its processor call is in flight.

The run was committed with its processor key before the call, so a worker process finds it once
its lease runs out, asks the processor what the call did (the dead process may have sent it), and
applies the answer: the processor does the capture once, even one that forgot the key.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import psycopg
import pytest

from gateway.settings import Settings
from tests.conftest import gateway_env
from tests.integration.conftest import wait_for
from tests.integration.test_make_run import free_port

DEADLINE_SECONDS = 120  # bounds on waiting, never an expected speed
LATENCY_MS = 8000  # the capture is in flight at least this long: the kill lands inside it


def environment(settings: Settings, **extra: str) -> dict[str, str]:
    return gateway_env(
        settings,
        GATEWAY_WORKFLOW_LEASE_SECONDS="2",
        GATEWAY_WORKFLOW_RECOVERY_BACKOFF_SECONDS="0",
        GATEWAY_PROCESSOR_BACKOFF_SECONDS="0",
        GATEWAY_WORKER_IN_PROCESS="false",
        **extra,
    )


@pytest.fixture
def processes() -> Iterator[list[subprocess.Popen[bytes]]]:
    """The processes a test started, each in a process group of its own
    (`start_new_session=True`), killed whole afterwards."""
    started: list[subprocess.Popen[bytes]] = []
    yield started
    for process in started:
        # The whole group: a gateway of several processes leaves its workers running when only
        # its supervisor is killed.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def start_gateway(
    env: dict[str, str], processes: list[subprocess.Popen[bytes]], log: Path
) -> tuple[subprocess.Popen[bytes], str]:
    """`gateway serve` on a free port, once ready: the process and its base URL."""
    port = free_port()
    gateway = subprocess.Popen(
        [sys.executable, "-m", "gateway", "serve"],
        env={**env, "GATEWAY_PORT": str(port)},
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
        start_new_session=True,  # its own process group, killed whole by `processes`
    )
    processes.append(gateway)
    base = f"http://127.0.0.1:{port}"

    def ready() -> bool:
        try:
            return httpx.get(f"{base}/health/ready", timeout=1).status_code == 200
        except httpx.TransportError:
            return False

    wait_for(ready, "the gateway to be ready")
    return gateway, base


def tokenize(base: str, headers: dict[str, str]) -> str:
    """A test card's token, from a gateway running in another process."""
    answer = httpx.post(
        f"{base}/payment-instruments",
        json={
            "number": "4111111111111111",
            "expirationMonth": "12",
            "expirationYear": "2032",
            "cvv": "321",
        },
        headers=headers,
    )
    return str(answer.json()["token"])


def test_a_gateway_killed_mid_capture_is_completed_by_a_worker_with_one_capture(
    settings: Settings, processes: list[subprocess.Popen[bytes]], tmp_path: Path
) -> None:
    assert settings.database_url
    db = psycopg.connect(settings.database_url, autocommit=True)
    gateway, base = start_gateway(environment(settings), processes, tmp_path / "gateway.log")

    name = f"crash-{secrets.token_hex(4)}"
    created = subprocess.run(
        [sys.executable, "-m", "gateway", "merchants", "create", name],
        env=environment(settings),
        capture_output=True,
        text=True,
        check=True,
    )
    assert name in created.stdout
    key = subprocess.run(
        [
            sys.executable,
            "-m",
            "gateway",
            "keys",
            "create",
            "--merchant",
            name,
            "--mode",
            "sandbox",
        ],
        env=environment(settings),
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    headers = {"X-API-KEY": key}
    token = tokenize(base, headers)
    payment = httpx.post(
        f"{base}/payments",
        json={
            "orderId": "crash",
            "currencyCode": "EUR",
            "amount": 2500,
            "paymentMethodToken": token,
            # The sandbox forgets the key at once: a blind re-send would capture twice.
            "metadata": {
                "sandbox_fault_on": "capture",
                "sandbox_latency_ms": LATENCY_MS,
                "sandbox_key_lifetime_seconds": 0,
            },
        },
        headers=headers,
    ).json()
    assert payment["status"] == "AUTHORIZED"

    answers: list[object] = []

    def capture() -> None:
        try:
            answers.append(
                httpx.post(
                    f"{base}/payments/{payment['id']}/capture",
                    json={},
                    headers={**headers, "X-Idempotency-Key": "crash-capture"},
                    timeout=60,
                )
            )
        except httpx.TransportError as error:
            answers.append(error)

    in_flight = threading.Thread(target=capture)
    in_flight.start()

    def capture_reached_the_processor() -> bool:
        row = db.execute(
            "SELECT count(*) FROM sandbox_calls WHERE reference = %s AND verb = 'capture'",
            (payment["id"],),
        ).fetchone()
        return bool(row and row[0] >= 1)

    wait_for(capture_reached_the_processor, "the capture call to reach the sandbox")
    gateway.send_signal(signal.SIGKILL)
    gateway.wait()
    in_flight.join()
    assert isinstance(answers[0], httpx.TransportError)  # the merchant never got an answer

    run_state = db.execute(
        "SELECT state FROM workflow_runs WHERE payment_id = %s AND kind = 'capture'",
        (payment["id"],),
    ).fetchone()
    assert run_state == ("running",)

    worker = subprocess.Popen(
        [sys.executable, "-m", "gateway", "worker"],
        env=environment(settings),
        stdout=(tmp_path / "worker.log").open("wb"),
        stderr=subprocess.STDOUT,
        # A group of its own, as `processes` kills: else a worker still running when the test
        # failed would be out of reach of its killpg, and the wait after it would never end.
        start_new_session=True,
    )
    processes.append(worker)

    def run_finished() -> bool:
        row = db.execute(
            "SELECT state FROM workflow_runs WHERE payment_id = %s AND kind = 'capture'",
            (payment["id"],),
        ).fetchone()
        return row is not None and row[0] != "running"

    wait_for(run_finished, "the worker to finish the run")
    worker.send_signal(signal.SIGTERM)
    assert worker.wait(timeout=60) == 0

    state, status, captured, authorized = db.execute(
        "SELECT r.state, p.status, p.amount_captured, p.amount_authorized FROM workflow_runs r"
        " JOIN payments p ON p.merchant_id = r.merchant_id AND p.id = r.payment_id"
        " WHERE r.payment_id = %s AND r.kind = 'capture'",
        (payment["id"],),
    ).fetchone()
    assert (state, status, captured) == ("succeeded", "SETTLED", authorized)
    calls = db.execute(
        "SELECT verb, processor_key FROM sandbox_calls WHERE reference = %s ORDER BY at",
        (payment["id"],),
    ).fetchall()
    # The worker asked what the dead process's call did, and sent nothing again.
    assert [verb for verb, _ in calls] == ["authorize", "capture", "status:capture"]
    assert calls[1][1] == calls[2][1]  # about that very key
    captures = db.execute(
        "SELECT count(*) FROM sandbox_operations WHERE reference = %s AND verb = 'capture'",
        (payment["id"],),
    ).fetchone()
    assert captures == (1,)
    captures = db.execute(
        "SELECT count(*) FROM sandbox_operations WHERE reference = %s AND verb = 'capture'",
        (payment["id"],),
    ).fetchone()
    assert captures == (1,)  # and captured once
    events = db.execute(
        "SELECT coalesce(sum(amount), 0) FROM transaction_events"
        " WHERE payment_id = %s AND type = 'CAPTURE_SUCCEEDED'",
        (payment["id"],),
    ).fetchone()
    assert events == (captured,)
    db.close()
