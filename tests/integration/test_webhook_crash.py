"""A gateway killed (SIGKILL) while it delivers a webhook: the outbox keeps the event, and a
worker delivers it after the dead process's claim runs out. At least once, never lost."""

from __future__ import annotations

import secrets
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import psycopg
import pytest

from gateway.settings import Settings
from tests.conftest import gateway_env, run_gateway
from tests.integration.test_crash import (  # noqa: F401
    processes,
    start_gateway,
    tokenize,
    wait_for,
)
from tests.integration.webhook_receiver import Receiver, serve
from workflows.credentials import new_master_key


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    yield from serve()


def test_a_delivery_cut_by_sigkill_is_delivered_after_restart(
    settings: Settings,
    receiver: Receiver,
    processes: list[subprocess.Popen[bytes]],  # noqa: F811
    tmp_path: Path,
) -> None:
    key = new_master_key()
    assert settings.database_url
    extra = {"GATEWAY_SECRET_KEY": key}
    name = f"hooks-{secrets.token_hex(4)}"
    assert run_gateway(settings, "merchants", "create", name).returncode == 0
    api_key = run_gateway(settings, "keys", "create", "--merchant", name).stdout.strip()
    assert api_key.startswith("gw_sandbox_"), api_key
    added = run_gateway(
        settings, "webhooks", "add", "--merchant", name, "--url", receiver.url, extra_env=extra
    )
    assert added.returncode == 0, added.stderr
    receiver.hold_first = held = threading.Event()
    gateway, base = start_gateway(
        gateway_env(
            settings,
            GATEWAY_WORKER_IN_PROCESS="true",
            GATEWAY_SECRET_KEY=key,
            GATEWAY_WEBHOOK_TIMEOUT_SECONDS="60",  # the held answer is not given up on first
        ),
        processes,
        tmp_path / "gateway.log",
    )
    headers = {"X-API-KEY": api_key}
    token = tokenize(base, headers)
    payment = httpx.post(
        f"{base}/payments",
        json={"orderId": "o", "currencyCode": "EUR", "amount": 700, "paymentMethodToken": token},
        headers=headers,
    ).json()
    assert payment["status"] == "AUTHORIZED"
    # The gateway's worker is sending the first event; the receiver has it and holds the answer.
    wait_for(lambda: len(receiver.received) == 1, "the first delivery to arrive")
    gateway.kill()
    gateway.wait()
    held.set()

    with psycopg.connect(settings.database_url, autocommit=True) as conn:
        states = conn.execute(
            "SELECT sequence, state FROM webhook_deliveries WHERE payment_id = %s ORDER BY 1",
            (payment["id"],),
        ).fetchall()
        assert states == [(1, "pending"), (2, "pending")]  # nothing lost, nothing recorded
        # The dead process's claim runs out (made so here, not waited for).
        conn.execute(
            "UPDATE webhook_deliveries SET next_attempt_at = now() WHERE payment_id = %s",
            (payment["id"],),
        )
    resumed = run_gateway(settings, "worker", "--once", extra_env=extra)
    assert resumed.returncode == 0, resumed.stderr
    with psycopg.connect(settings.database_url, autocommit=True) as conn:
        states = conn.execute(
            "SELECT sequence, state FROM webhook_deliveries WHERE payment_id = %s ORDER BY 1",
            (payment["id"],),
        ).fetchall()
    if states != [(1, "delivered"), (2, "delivered")]:  # the second waited for the first
        assert run_gateway(settings, "worker", "--once", extra_env=extra).returncode == 0
    sequences = [r.headers["X-Event-Sequence"] for r in receiver.received]
    ids = {r.headers["X-Event-Sequence"]: r.headers["X-Event-Id"] for r in receiver.received}
    assert sequences == ["1", "1", "2"]  # the first again (at least once), then the second
    assert len({ids["1"], ids["2"]}) == 2
    assert [r.json["payment"]["status"] for r in receiver.received] == [
        "PENDING",
        "PENDING",
        "AUTHORIZED",
    ]
