"""`make run`, the README's first command, started for real in a temporary data directory.

It must come up on embedded PostgreSQL and Redis, print a sandbox key, share its servers with a
second `gateway` command, stop everything on Ctrl-C, and find the same data (and key) next time.
"""

from __future__ import annotations

import asyncio
import os
import re
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest

from gateway import accounts
from tests.conftest import REPO_ROOT, clean_env

STARTUP_DEADLINE_SECONDS = 180  # a bound, not a speed: first start runs initdb


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def embedded_env(data_dir: Path, port: int) -> dict[str, str]:
    return clean_env(
        GATEWAY_DATA_DIR=str(data_dir), GATEWAY_PORT=str(port), GATEWAY_SETTLEMENT_POLL_SECONDS="0"
    )


class RunningGateway:
    def __init__(self, data_dir: Path, port: int, log: Path) -> None:
        self.port = port
        self.log = log
        self.process = subprocess.Popen(
            ["make", "-s", "run"],
            cwd=REPO_ROOT,
            env=embedded_env(data_dir, port),
            stdout=log.open("w"),
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group, as a terminal's foreground job
        )

    def wait_ready(self) -> None:
        deadline = time.monotonic() + STARTUP_DEADLINE_SECONDS
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                pytest.fail(
                    f"make run exited with {self.process.returncode}:\n{self.log.read_text()}"
                )
            try:
                response = httpx.get(f"http://127.0.0.1:{self.port}/health/ready", timeout=2)
                if response.status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.2)
        pytest.fail(f"not ready within {STARTUP_DEADLINE_SECONDS}s:\n{self.log.read_text()}")

    def ctrl_c(self) -> None:
        os.killpg(self.process.pid, signal.SIGINT)
        try:
            self.process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            pytest.fail(f"make run did not stop on Ctrl-C:\n{self.log.read_text()}")


@pytest.fixture
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    path = tmp_path_factory.mktemp("run")
    yield path
    if servers_of(path):  # whatever happened, leave no server behind
        subprocess.run(["pkill", "-f", str(path)], check=False)


def pay_with(base: str, key: str, **extra: object) -> dict[str, Any]:
    """The walk-through the banner shows: tokenize a test card, create a payment."""
    headers = {"X-API-KEY": key}
    card = {
        "number": "4111111111111111",
        "expirationMonth": "12",
        "expirationYear": "2030",
        "cvv": "123",
    }
    token = httpx.post(f"{base}/payment-instruments", json=card, headers=headers).json()["token"]
    response = httpx.post(
        f"{base}/payments",
        json={
            "orderId": "order-1",
            "currencyCode": "EUR",
            "amount": 1000,
            "paymentMethodToken": token,
            **extra,
        },
        headers=headers,
    )
    assert response.status_code == 200, response.text
    return response.json()  # type: ignore[no-any-return]


def keys_list_beside(data_dir: Path, port: int) -> subprocess.CompletedProcess[str]:
    """`gateway keys list` run beside the gateway, on the same data directory."""
    return subprocess.run(
        [str(REPO_ROOT / ".venv" / "bin" / "gateway"), "keys", "list"],
        env=embedded_env(data_dir, port),
        capture_output=True,
        text=True,
        timeout=120,
    )


def servers_of(data_dir: Path) -> list[str]:
    found = subprocess.run(["pgrep", "-af", str(data_dir)], capture_output=True, text=True)
    return [line for line in found.stdout.splitlines() if "pgrep" not in line]


def test_make_run_serves_the_sandbox_on_embedded_servers_and_stops_cleanly(
    data_dir: Path, tmp_path: Path
) -> None:
    port = free_port()
    first = RunningGateway(data_dir, port, tmp_path / "first.log")
    first.wait_ready()
    output = first.log.read_text()
    keys = re.findall(r"gw_sandbox_[a-z2-7]{16}_[A-Za-z0-9_-]+", output)
    assert keys, output
    sandbox_key = keys[0]
    assert f"export API_KEY='{sandbox_key}'" in output
    base = f"http://127.0.0.1:{port}"
    payment = pay_with(base, sandbox_key)
    assert payment["status"] == "AUTHORIZED"

    # The worker runs inside the embedded gateway: it confirms an asynchronous settlement.
    settling = pay_with(base, sandbox_key, metadata={"sandbox_async_settlement": True})
    headers = {"X-API-KEY": sandbox_key}
    capture = httpx.post(f"{base}/payments/{settling['id']}/capture", json={}, headers=headers)
    assert capture.json()["status"] == "SETTLING"
    deadline = time.monotonic() + STARTUP_DEADLINE_SECONDS
    while time.monotonic() < deadline:
        now = httpx.get(f"{base}/payments/{settling['id']}", headers=headers).json()
        if now["status"] != "SETTLING":
            break
        time.sleep(0.2)
    assert now["status"] == "SETTLED"

    # A second command beside the running gateway uses the same embedded servers.
    beside = keys_list_beside(data_dir, port)
    assert beside.returncode == 0, beside.stderr
    assert accounts.parse_key(sandbox_key)[1] in beside.stdout  # type: ignore[index]
    assert (data_dir / "postgres" / "postmaster.pid").exists()  # still up after `keys list` left

    first.ctrl_c()
    assert not (data_dir / "postgres" / "postmaster.pid").exists()
    assert not (data_dir / "valkey" / "server.json").exists()
    assert servers_of(data_dir) == []

    # The next start finds the same data: no new merchant, and the first key still authenticates.
    second = RunningGateway(data_dir, port, tmp_path / "second.log")
    second.wait_ready()
    again = second.log.read_text()
    assert "exists" in again and "gw_sandbox_" not in again
    url = f"postgresql://postgres:@/gateway?host={data_dir / 'postgres'}"

    async def authenticate() -> accounts.Principal | None:
        conn = await psycopg.AsyncConnection.connect(url, autocommit=True)
        async with conn:
            return await accounts.authenticate(conn, sandbox_key)

    principal = asyncio.run(authenticate())
    assert principal is not None and principal.mode == "sandbox"
    # ...and over HTTP: the payment made before the restart is there, captured now.
    captured = httpx.post(f"{base}/payments/{payment['id']}/capture", json={}, headers=headers)
    assert captured.status_code == 200 and captured.json()["status"] == "SETTLED"
    second.ctrl_c()
    assert servers_of(data_dir) == []


def postmaster_pid(data_dir: Path) -> int | None:
    pid_file = data_dir / "postgres" / "postmaster.pid"
    if not pid_file.exists():
        return None
    return int(pid_file.read_text().split()[0])


def test_serve_stops_an_embedded_postgresql_that_another_command_restarted(
    data_dir: Path, tmp_path: Path
) -> None:
    port = free_port()
    gateway = RunningGateway(data_dir, port, tmp_path / "gateway.log")
    gateway.wait_ready()
    first = postmaster_pid(data_dir)
    assert first is not None
    os.kill(first, signal.SIGKILL)  # PostgreSQL dies hard under the running gateway
    deadline = time.monotonic() + STARTUP_DEADLINE_SECONDS
    while Path(f"/proc/{first}").exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    # Another command starts it again (and leaves it running: the gateway still holds it).
    beside = keys_list_beside(data_dir, port)
    assert beside.returncode == 0, beside.stderr
    second = postmaster_pid(data_dir)
    assert second is not None and second != first
    gateway.ctrl_c()
    assert postmaster_pid(data_dir) is None, gateway.log.read_text()
    assert servers_of(data_dir) == []
