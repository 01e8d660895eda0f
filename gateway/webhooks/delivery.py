"""Delivering the outbox (workflows/notifications.py) to merchants' endpoints.

Any number of workers run `Deliverer.run` (beside the recovery worker): each claims due
deliveries (`FOR UPDATE SKIP LOCKED`), signs and POSTs each (10 s timeout, no redirects), and
records the attempt: a 2xx delivers it; anything else, or no answer, schedules the next attempt
(exponential backoff with jitter, for a day by default), then dead-letters it. A worker that
dies mid-delivery leaves the delivery claimed only until its claim runs out: it is delivered at
least once, never lost. A receiver must therefore expect a repeat (`X-Event-Id` names it).

Live endpoints must be https and resolve only to public addresses, checked when one is added
and again before every delivery (a name that later resolves inward is refused then); sandbox
endpoints may be local receivers.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import socket
import time
from urllib.parse import urlsplit

import httpx
import structlog

from gateway.webhooks import payloads, signing
from workflows.credentials import CredentialBox, CredentialError
from workflows.db import Database
from workflows.notifications import Delivery, Schedule, claim_deliveries, record_attempt
from workflows.notifications import signing_secrets as secrets_of

log = structlog.get_logger("gateway.webhooks")

ANSWER_KEPT_BYTES = 1024


class UnsafeEndpoint(Exception):
    """An endpoint the gateway will not send to (live mode: https only, public addresses)."""


async def check_destination(url: str, mode: str) -> None:
    """Refuse a live endpoint that is not https or that resolves to a private, loopback,
    link-local or otherwise non-public address."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise UnsafeEndpoint(f"not an http(s) URL: {url!r}")
    if mode != "live":
        return
    if parts.scheme != "https":
        raise UnsafeEndpoint("a live endpoint must be https")
    try:
        found = await asyncio.get_running_loop().getaddrinfo(
            parts.hostname, parts.port or 443, type=socket.SOCK_STREAM
        )
    except OSError as error:
        raise UnsafeEndpoint(f"{parts.hostname} does not resolve: {error}") from None
    for *_, address in found:
        ip = ipaddress.ip_address(address[0])
        if not ip.is_global:
            raise UnsafeEndpoint(
                f"{parts.hostname} resolves to {ip}, not a public address: live webhooks are "
                "not sent to private, loopback or link-local addresses"
            )


class Deliverer:
    def __init__(
        self,
        db: Database,
        box: CredentialBox,
        schedule: Schedule,
        *,
        timeout_seconds: float = 10.0,
        http: httpx.AsyncClient | None = None,
    ) -> None:
        self._db = db
        self._box = box
        self.schedule = schedule
        self._timeout = timeout_seconds
        # A claim outlasts one attempt (its timeout) with room to record it.
        self._lease_seconds = timeout_seconds + 30
        self._http = http or httpx.AsyncClient(
            timeout=httpx.Timeout(timeout_seconds), follow_redirects=False
        )

    async def aclose(self) -> None:
        await self._http.aclose()

    async def deliver_due(self, limit: int = 50) -> int:
        """One pass: the due deliveries, sent at once; how many were tried."""
        claimed = await claim_deliveries(self._db, limit, self._lease_seconds)
        await asyncio.gather(*(self._send(delivery) for delivery in claimed))
        return len(claimed)

    async def run(self, stop: asyncio.Event, *, poll_seconds: float = 1.0) -> None:
        log.info("webhook_deliverer_started")
        while not stop.is_set():
            try:
                tried = await self.deliver_due()
            except Exception:
                log.exception("webhook_pass_failed")
                tried = 0
            if tried:
                continue  # more may be due
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=poll_seconds)
        log.info("webhook_deliverer_stopped")

    async def _send(self, delivery: Delivery) -> str:
        status: int | None = None
        answer: str | None = None
        error: str | None = None
        started = time.perf_counter()
        try:
            await check_destination(delivery.url, delivery.mode)
            async with self._db.connection() as conn:
                secrets = await secrets_of(
                    conn, self._box, delivery.merchant_id, delivery.endpoint_id
                )
            body = payloads.body(delivery)
            headers = signing.headers(secrets, body, str(delivery.event_id), delivery.sequence)
            started = time.perf_counter()
            async with self._http.stream(
                "POST", delivery.url, content=body, headers=headers
            ) as response:
                status = response.status_code
                kept = b""
                async for chunk in response.aiter_bytes():
                    kept += chunk
                    if len(kept) >= ANSWER_KEPT_BYTES:
                        break
                answer = kept[:ANSWER_KEPT_BYTES].decode("utf-8", "replace")
        except (UnsafeEndpoint, CredentialError) as refused:
            error = str(refused)
        except httpx.HTTPError as failed:
            error = f"{type(failed).__name__}: {failed}"[:500]
        latency = round((time.perf_counter() - started) * 1000)
        state = await record_attempt(
            self._db,
            delivery,
            status_code=status,
            latency_ms=latency,
            error=error,
            answer=answer,
            schedule=self.schedule,
        )
        log.info(
            "webhook_attempt",
            event_id=str(delivery.event_id),
            endpoint_id=str(delivery.endpoint_id),
            payment_id=delivery.payment_id,
            status=status,
            error=error,
            ms=latency,
            state=state,
        )
        return state
