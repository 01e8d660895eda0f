"""`gateway webhooks`: merchants' endpoints, and the deliveries of their events."""

from __future__ import annotations

import asyncio
import uuid
from datetime import datetime

import click

from gateway.cli.common import CommandError, settings, when, with_connection
from gateway.settings import previous_secret_keys
from gateway.webhooks.delivery import UnsafeEndpoint, check_destination
from workflows import merchants, notifications
from workflows.credentials import CredentialBox
from workflows.db import Connection


@click.group("webhooks")
def group() -> None:
    """Webhook endpoints (notifications of payments' changes) and their deliveries."""


def _box() -> CredentialBox:
    current = settings()
    return CredentialBox(current.secret_key, previous_secret_keys(current))


def _endpoint_id(value: str) -> uuid.UUID:
    try:
        return uuid.UUID(value)
    except ValueError:
        raise click.BadParameter(f"{value!r} is not an endpoint id (a UUID)") from None


@group.command()
@click.option("--merchant", required=True, help="the merchant whose payments it hears of")
@click.option("--url", required=True, help="where events are POSTed")
@click.option(
    "--mode",
    type=click.Choice(["sandbox", "live"]),
    default="sandbox",
    show_default=True,
    help="the payments it hears of (live endpoints: https, public addresses only)",
)
@click.option("--description", help="a note of yours, sent in each payload")
def add(merchant: str, url: str, mode: str, description: str | None) -> None:
    """Add an endpoint; its signing secret is printed once (keep it: it is stored sealed)."""
    try:
        asyncio.run(check_destination(url, mode))
    except UnsafeEndpoint as refused:
        raise CommandError(str(refused)) from None
    box = _box()

    async def work(conn: Connection) -> tuple[notifications.Endpoint, str]:
        found = await merchants.find_merchant(conn, merchant)
        return await notifications.add_endpoint(
            conn, box, merchant_id=found.id, mode=mode, url=url, description=description
        )

    endpoint, secret = with_connection(work)
    click.echo(f"added {mode} endpoint {endpoint.id} for {merchant}: {url}")
    click.echo("its signing secret (shown once; verify X-Signature-Primary with it):", err=True)
    click.echo(secret)


@group.command("list")
@click.option("--merchant", help="only this merchant's endpoints")
def list_(merchant: str | None) -> None:
    """List endpoints (never their secrets)."""

    async def work(conn: Connection) -> list[notifications.Endpoint]:
        merchant_id = (await merchants.find_merchant(conn, merchant)).id if merchant else None
        return await notifications.list_endpoints(conn, merchant_id)

    found = with_connection(work)
    click.echo(f"{'ID':<38}{'MERCHANT':<24}{'MODE':<9}{'STATE':<10}{'ROTATED':<21}URL")
    for e in found:
        click.echo(
            f"{e.id!s:<38}{e.merchant_id:<24}{e.mode:<9}{e.state:<10}{when(e.rotated_at):<21}"
            f"{e.url}"
        )
    if not found:
        click.echo("(no webhook endpoints)")


def _set_state(merchant: str, endpoint: str, state: str) -> None:
    async def work(conn: Connection) -> notifications.Endpoint:
        found = await merchants.find_merchant(conn, merchant)
        return await notifications.set_endpoint_state(conn, found.id, _endpoint_id(endpoint), state)

    changed = with_connection(work)
    click.echo(f"endpoint {changed.id} of {merchant}: {changed.state}")


@group.command()
@click.option("--merchant", required=True)
@click.argument("endpoint")
def disable(merchant: str, endpoint: str) -> None:
    """Send an endpoint nothing new (its pending deliveries are still tried)."""
    _set_state(merchant, endpoint, "disabled")


@group.command()
@click.option("--merchant", required=True)
@click.argument("endpoint")
def enable(merchant: str, endpoint: str) -> None:
    """Send an endpoint events again."""
    _set_state(merchant, endpoint, "active")


@group.command("rotate-secret")
@click.option("--merchant", required=True)
@click.argument("endpoint")
def rotate_secret(merchant: str, endpoint: str) -> None:
    """A new signing secret, printed once; for a day the old one signs too
    (X-Signature-Secondary), so the receiver can switch without missing an event."""
    box = _box()

    async def work(conn: Connection) -> str:
        found = await merchants.find_merchant(conn, merchant)
        return await notifications.rotate_endpoint_secret(
            conn, box, found.id, _endpoint_id(endpoint)
        )

    secret = with_connection(work)
    click.echo("the new signing secret (shown once):", err=True)
    click.echo(secret)


@group.command()
@click.option("--merchant", help="only this merchant's")
@click.option("--endpoint", help="only this endpoint's")
@click.option("--payment", help="only this payment's")
@click.option("--state", type=click.Choice(["pending", "delivered", "dead"]))
@click.option("--limit", default=50, show_default=True)
def deliveries(
    merchant: str | None, endpoint: str | None, payment: str | None, state: str | None, limit: int
) -> None:
    """List deliveries, most recent first."""

    async def work(conn: Connection) -> list[notifications.DeliveryRow]:
        merchant_id = (await merchants.find_merchant(conn, merchant)).id if merchant else None
        return await notifications.list_deliveries(
            conn,
            merchant_id=merchant_id,
            endpoint_id=_endpoint_id(endpoint) if endpoint else None,
            payment_id=payment,
            state=state,
            limit=limit,
        )

    rows = with_connection(work)
    click.echo(
        f"{'EVENT':<38}{'ENDPOINT':<38}{'PAYMENT':<26}{'SEQ':>4} {'TYPE':<15}{'STATE':<10}"
        f"{'TRIES':>5}  NEXT"
    )
    for r in rows:
        click.echo(
            f"{r.event_id!s:<38}{r.endpoint_id!s:<38}{r.payment_id:<26}{r.sequence:>4} "
            f"{r.type:<15}{r.state:<10}{r.attempts:>5}  {when(r.next_attempt_at)}"
        )
    if not rows:
        click.echo("(no deliveries)")


@group.command()
@click.argument("event")
@click.argument("endpoint")
@click.option("--merchant", required=True)
def attempts(event: str, endpoint: str, merchant: str) -> None:
    """The attempts of one delivery: when, the answer's status, latency and first 1 KB."""

    async def work(conn: Connection) -> list[notifications.Attempt]:
        found = await merchants.find_merchant(conn, merchant)
        return await notifications.attempts_of(
            conn, found.id, _endpoint_id(event), _endpoint_id(endpoint)
        )

    for a in with_connection(work):
        answer = (a.answer or "").replace("\n", " ")[:120]
        click.echo(
            f"#{a.number}  {when(a.at)}  {a.status_code or '-':>3}  {a.latency_ms:>6} ms  "
            f"{a.error or answer}"
        )


@group.command()
@click.argument("event", required=False)
@click.option("--failed-since", help="every dead-lettered delivery since this time (ISO 8601)")
@click.option("--merchant", help="only this merchant's")
def redeliver(event: str | None, failed_since: str | None, merchant: str | None) -> None:
    """Deliver again, now and on a fresh schedule: one event, or every dead-lettered delivery
    since a time."""
    since = None
    if failed_since is not None:
        try:
            since = datetime.fromisoformat(failed_since)
        except ValueError:
            raise click.BadParameter("not an ISO 8601 time", param_hint="--failed-since") from None
    if (event is None) == (since is None):
        raise click.UsageError("give an EVENT id or --failed-since")

    async def work(conn: Connection) -> int:
        merchant_id = (await merchants.find_merchant(conn, merchant)).id if merchant else None
        return await notifications.redeliver(
            conn,
            event_id=_endpoint_id(event) if event else None,
            failed_since=since,
            merchant_id=merchant_id,
        )

    count = with_connection(work)
    click.echo(f"{count} delivery(ies) due again now")
