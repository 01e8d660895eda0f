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
from dataclasses import dataclass

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
    """An endpoint the gateway will not send to (not a URL it can send to; in live mode, not
    https or not a public address)."""


@dataclass(frozen=True)
class Destination:
    """Where an attempt connects: for a live endpoint, the address that was checked (so a name
    that resolves elsewhere a moment later is not followed), with the name kept for the Host
    header and TLS (SNI and the certificate's check)."""

    url: str
    host_header: str | None = None
    sni_hostname: str | None = None


_NAT64 = ipaddress.ip_network("64:ff9b::/96")


def _public(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    if isinstance(ip, ipaddress.IPv6Address):
        embedded = ip.ipv4_mapped or ip.sixtofour
        if embedded is None and ip in _NAT64:
            embedded = ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
        if embedded is not None:
            return embedded.is_global
    return ip.is_global


async def check_destination(url: str, mode: str) -> Destination:
    """Where to connect for `url`; UnsafeEndpoint for one the gateway does not send to: not a
    valid http(s) URL, or in live mode not https or resolving to any private, loopback,
    link-local or otherwise non-public address."""
    try:
        parsed = httpx.URL(url)
        host, port = parsed.host, parsed.port
    except (httpx.InvalidURL, ValueError, UnicodeError) as error:
        raise UnsafeEndpoint(f"not a valid URL: {error}") from None
    if parsed.scheme not in ("http", "https") or not host:
        raise UnsafeEndpoint("not an http(s) URL with a host")
    if mode != "live":
        return Destination(url)
    if parsed.scheme != "https":
        raise UnsafeEndpoint("a live endpoint must be https")
    try:
        found = await asyncio.get_running_loop().getaddrinfo(
            host, port or 443, type=socket.SOCK_STREAM
        )
    except (OSError, UnicodeError) as error:
        raise UnsafeEndpoint(f"{host} does not resolve: {error}") from None
    addresses = [ipaddress.ip_address(address[0]) for *_, address in found]
    for ip in addresses:
        if not _public(ip):
            raise UnsafeEndpoint(
                f"{host} resolves to {ip}, not a public address: live webhooks are not sent to "
                "private, loopback or link-local addresses"
            )
    pinned = addresses[0]
    literal = f"[{pinned}]" if pinned.version == 6 else str(pinned)
    netloc = host if port is None else f"{host}:{port}"
    return Destination(
        str(parsed.copy_with(host=literal.strip("[]"))),
        host_header=netloc,
        sni_hostname=host,
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
            destination = await check_destination(delivery.url, delivery.mode)
            async with self._db.connection() as conn:
                secrets = await secrets_of(
                    conn, self._box, delivery.merchant_id, delivery.endpoint_id
                )
            body = payloads.body(delivery)
            headers = signing.headers(secrets, body, str(delivery.event_id), delivery.sequence)
            if destination.host_header:
                headers["Host"] = destination.host_header
            extensions = (
                {"sni_hostname": destination.sni_hostname} if destination.sni_hostname else {}
            )
            started = time.perf_counter()
            # The whole attempt, however slowly the receiver answers: httpx's own timeouts
            # bound each read, not the sum.
            async with asyncio.timeout(self._timeout):
                async with self._http.stream(
                    "POST", destination.url, content=body, headers=headers, extensions=extensions
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
        except TimeoutError:
            # (A status already received stands: the receiver answered, slowly.)
            error = f"no whole answer within {self._timeout:g} s"
        except Exception as failed:  # any failure is an attempt that failed, recorded
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
