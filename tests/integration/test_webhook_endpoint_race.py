"""An endpoint added while a change waits for a lock gets that change's event: the change commits
after the endpoint, so the endpoint hears of it. Phase 3 may wait for its payment's row (another
change of the payment) or its run's (a processor event waking the run, an operator's claim, the
lease's heartbeat); it must not take its snapshot before either wait."""

from __future__ import annotations

import asyncio
from typing import Any

import msgspec
import psycopg
import pytest

from gateway.settings import Settings
from tests.integration.conftest import (
    GatewayFactory,
    SomeMerchant,
    until,
    until_waiting_for_lock,
)
from tests.integration.shop import Shop
from tests.integration.test_webhooks import endpoint_of
from workflows.credentials import new_master_key

HELD = {
    # The row held, by merchant and payment id; what phase 3's waiting statement looks like.
    "payment": (
        "SELECT 1 FROM payments WHERE merchant_id = %s AND id = %s FOR UPDATE",
        "%FROM payments%FOR UPDATE%",
    ),
    "run": (
        "SELECT 1 FROM workflow_runs WHERE merchant_id = %s AND payment_id = %s "
        "AND kind = 'capture' FOR UPDATE",
        "%workflow_runs%",
    ),
}


@pytest.mark.parametrize("held", sorted(HELD))
async def test_an_endpoint_added_while_a_capture_waits_for_a_lock_hears_of_it(
    gateway: GatewayFactory, settings: Settings, merchant: SomeMerchant, db: Any, held: str
) -> None:
    lock, waiting = HELD[held]
    running = await gateway(msgspec.structs.replace(settings, secret_key=new_master_key()))
    shop = Shop(running.client, merchant.key)
    # The processor takes a while to answer the capture: time to hold the row.
    payment = await shop.create(
        2000, metadata={"sandbox_fault_on": "capture", "sandbox_latency_ms": 2000}
    )
    capture = asyncio.create_task(
        shop.call("POST", f"/payments/{payment['id']}/capture", {}, key="race-1")
    )

    async def capture_sent() -> bool:
        cur = await db.execute(
            "SELECT 1 FROM workflow_runs WHERE merchant_id = %s AND payment_id = %s "
            "AND kind = 'capture'",
            (merchant.id, payment["id"]),
        )
        return await cur.fetchone() is not None

    await until(capture_sent, "the capture's phase 1")
    holder = await psycopg.AsyncConnection.connect(settings.database_url or "")
    try:
        await holder.execute(lock, (merchant.id, payment["id"]))
        await until_waiting_for_lock(db, waiting, f"the capture's phase 3 to wait for the {held}")
        endpoint, _ = await endpoint_of(running, merchant, "https://example.com/hooks")
    finally:
        await holder.rollback()
        await holder.close()
    answer = await capture
    assert answer.status_code == 200 and answer.json()["status"] == "SETTLED"
    cur = await db.execute(
        "SELECT e.snapshot->'payment'->>'status' FROM webhook_events e "
        "JOIN webhook_deliveries d ON d.merchant_id = e.merchant_id AND d.event_id = e.id "
        "WHERE e.merchant_id = %s AND e.payment_id = %s AND d.endpoint_id = %s",
        (merchant.id, payment["id"], endpoint),
    )
    assert [row[0] for row in await cur.fetchall()] == ["SETTLED"]
