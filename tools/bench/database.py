"""Baseline (a), the database limit: the SQL the gateway runs to create and capture a payment,
sent straight through psycopg on the same number of connections, with no HTTP and no Redis.

The statements are the gateway's own named queries, in the order and transactions the gateway
runs them (auth, the authorize run's three phases with its idempotency key, the sandbox's ledger,
the payment read back; then the same for the capture run). Keep it in step with the engine: the
ratio gateway / baseline is only honest while both do the same database work.
"""

from __future__ import annotations

import asyncio
import hashlib
import secrets
import time
import uuid
from typing import Any

import psycopg
from psycopg.types.json import Jsonb

from processors import sandbox
from tools.bench.load import LoadResult, Operation
from workflows.db import Q


async def run(
    database_url: str,
    *,
    merchant_id: str,
    token: str,
    concurrency: int,
    seconds: float,
) -> LoadResult:
    operations = {"create": Operation(), "capture": Operation()}
    result = LoadResult(seconds, concurrency, operations)
    connections = [
        await psycopg.AsyncConnection.connect(database_url, autocommit=True)
        for _ in range(concurrency)
    ]
    started = time.perf_counter()
    deadline = started + seconds

    async def user(conn: psycopg.AsyncConnection[Any]) -> None:
        while time.perf_counter() < deadline:
            started = time.perf_counter()
            payment_id = await _create(conn, merchant_id, token)
            middle = time.perf_counter()
            await _capture(conn, merchant_id, payment_id)
            operations["create"].latencies.append(middle - started)
            operations["capture"].latencies.append(time.perf_counter() - middle)

    try:
        await asyncio.gather(*(user(conn) for conn in connections))
    finally:
        for conn in connections:
            await conn.close()
    result.seconds = max(seconds, time.perf_counter() - started)
    return result


async def _run_phases(
    conn: psycopg.AsyncConnection[Any],
    merchant_id: str,
    payment_id: str,
    kind: str,
    first_phase: list[tuple[str, dict[str, Any]]],
    event: str,
    amount: int,
    status: str,
    sale_id: str | None,
) -> None:
    run_id, owner = f"run_{secrets.token_hex(10)}", f"bench/{secrets.token_hex(4)}"
    processor_key = f"{merchant_id}:{kind}:{secrets.token_urlsafe(18)}"
    key = {"merchant_id": merchant_id, "id": payment_id, "payment_id": payment_id}
    async with conn.transaction():
        for name, params in first_phase:
            cur = await conn.execute(Q[name], params)
            if name == "lock_payment_with_sale":  # the SALE's processor id known: no re-read
                row = await cur.fetchone()
                assert row is not None and cur.description is not None
                sale_id = row[[c.name for c in cur.description].index("sale_id")]
        assert sale_id is not None
        started = await conn.execute(
            Q["insert_run"],
            {
                **key,
                "id": run_id,
                "kind": kind,
                # The merchant's idempotency key and request fingerprint: the engine's run per
                # key is the durable idempotency record (Redis holds the fast one).
                "idempotency_key": uuid.uuid4().hex,
                "request_fingerprint": hashlib.sha256(secrets.token_bytes(8)).digest(),
                "target": payment_id if kind != "authorize" else "",
                "input": Jsonb({}),
                "amount": amount,
                "transaction_id": sale_id,
                "capture_event_id": None,
                "processor_key": processor_key,
                "lease_owner": owner,
                "outcome": None,
                "event": "started",
                "lease_seconds": 30,
                "history_id": uuid.uuid4(),
                "history_detail": Jsonb({}),
            },
        )
        run_row = await started.fetchone()
        assert run_row is not None
        version = run_row[-1]  # payment_version: the row as phase 1 left it
    # Phase 2: the sandbox's own ledger (the call itself).
    await conn.execute(
        sandbox._RECORD_AND_DO,
        {
            "reference": payment_id,
            "id": uuid.uuid4(),
            "processor_key": processor_key,
            "verb": kind,
            "amount": amount,
            "outcome": "AUTHORIZED",
            "processor_transaction_id": "sbx_bench",
            "settled": True,
        },
    )
    # Phase 3: the outcome in one statement on its own, which returns the payment as the answer
    # shows it (as the engine does straight after phase 1).
    figures = _figures(merchant_id, payment_id, status, amount)
    cur = await conn.execute(
        Q["record_outcome"],
        {
            **figures,
            "version": version,
            "notice": True,
            "view": True,
            "payment_id": payment_id,
            "run_id": run_id,
            "transaction_id": sale_id,
            "lease_owner": owner,
            "state": "succeeded",
            "recovery_point": "finished",
            "attempts": 1,
            "outcome": Jsonb({"outcome": status}),
            "last_error": None,
            "reached": True,
            "retry_after_seconds": 0,
            "history_id": uuid.uuid4(),
            "event": "succeeded",
            "history_detail": Jsonb({}),
            "change_payment": True,
            "change_transaction": True,
            "transaction_status": status,
            "transaction_reason": None,
            "processor_transaction_id": "sbx_bench",
            "outcome_unknown": False,
            "event_id": uuid.uuid4(),
            "event_type": event,
            "event_amount": amount,
            "event_final": True if kind == "capture" else None,
            "capture_event_id": None,
            "capture_released": 0,
            "capture_refunded": 0,
            "mode": "sandbox",
        },
    )
    assert await cur.fetchone() is not None  # written: the row was as phase 1 left it


async def _create(
    conn: psycopg.AsyncConnection[Any],
    merchant_id: str,
    token: str,
) -> str:
    payment_id = f"pay_{secrets.token_hex(10)}"
    # (No key read: gateway processes keep keys that authenticated, gateway/keycache.py.)
    card: dict[str, Any] = {
        "network": "VISA",
        "first6": "411111",
        "last4": "1111",
        "expirationMonth": "12",
        "expirationYear": "2030",
        "holder": None,
    }
    sale_id = f"txn_{secrets.token_hex(10)}"
    first_phase: list[tuple[str, dict[str, Any]]] = [
        ("payment_setting", {"merchant_id": merchant_id, "token": token, "mode": "sandbox"}),
        (
            "insert_payment",
            {
                "merchant_id": merchant_id,
                "id": payment_id,
                "mode": "sandbox",
                "order_id": "bench",
                "currency_code": "EUR",
                "amount": 1000,
                "customer_id": None,
                "customer": None,
                "order_details": None,
                "metadata": None,
                "payment_options": None,
                "payment_method_token": token,
                "card_token_type": "CARD_PAN",
                "card": Jsonb(card),
                "card_last4": "1111",
                "processor": "sandbox",
                "processor_account": None,
                "processor_merchant_id": merchant_id,
                "sale_id": sale_id,  # (and its SALE, by the same statement)
            },
        ),
    ]
    await _run_phases(
        conn,
        merchant_id,
        payment_id,
        "authorize",
        first_phase,
        "AUTHORIZATION_SUCCEEDED",
        1000,
        "AUTHORIZED",
        sale_id,
    )
    return payment_id


async def _capture(
    conn: psycopg.AsyncConnection[Any],
    merchant_id: str,
    payment_id: str,
) -> None:
    first_phase: list[tuple[str, dict[str, Any]]] = [
        ("lock_payment_with_sale", {"merchant_id": merchant_id, "id": payment_id}),
        (
            "update_payment",
            {
                **_figures(merchant_id, payment_id, "AUTHORIZED", 1000),
                "amount_captured": 0,
                "capture_reserved": 1000,
                "captures_closed": True,
            },
        ),
    ]
    await _run_phases(
        conn,
        merchant_id,
        payment_id,
        "capture",
        first_phase,
        "CAPTURE_SUCCEEDED",
        1000,
        "SETTLED",
        None,
    )


def _figures(merchant_id: str, payment_id: str, status: str, amount: int) -> dict[str, Any]:
    return {
        "merchant_id": merchant_id,
        "id": payment_id,
        "status": status,
        "status_reason": None,
        "amount": amount,
        "amount_authorized": amount,
        "amount_captured": amount if status == "SETTLED" else 0,
        "amount_refunded": 0,
        "capture_reserved": 0,
        "refund_reserved": 0,
        "captures_closed": status == "SETTLED",
        "required_action": None,
    }


async def _history(
    conn: psycopg.AsyncConnection[Any], merchant_id: str, run_id: str, event: str
) -> None:
    await conn.execute(
        Q["append_history"],
        {
            "merchant_id": merchant_id,
            "run_id": run_id,
            "history_id": uuid.uuid4(),
            "event": event,
            "detail": Jsonb({}),
        },
    )
