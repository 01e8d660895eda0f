"""Primer's webhook payloads (contracts/primer/webhooks-v2.4.openapi.yml), from an event's
snapshot of the payment: the payment as the change left it, never as it is at delivery."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import msgspec

from workflows.notifications import Delivery


def body(delivery: Delivery, sent_at: datetime | None = None) -> bytes:
    """The payload of one attempt (`date`: when it is sent)."""
    # Imported here: the Primer surface's package imports the services, which hold the deliverer.
    from gateway.api.primer import render

    payload: dict[str, Any] = {
        "eventType": delivery.type.value,
        "date": (sent_at or datetime.now(UTC)).isoformat(),
        "notificationConfig": {"id": str(delivery.endpoint_id)},
        "version": "2.4",
        "payment": render.payment(delivery.view),
    }
    if delivery.description:
        payload["notificationConfig"]["description"] = delivery.description
    return msgspec.json.encode(payload)
