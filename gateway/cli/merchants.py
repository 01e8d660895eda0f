"""`gateway merchants`: create, list, show and configure merchants."""

from __future__ import annotations

import click

from gateway.cli.common import CommandError, when, with_connection
from processors import registry
from workflows import merchants
from workflows.db import Connection


@click.group("merchants")
def group() -> None:
    """Manage merchants."""


@group.command()
@click.argument("name")
def create(name: str) -> None:
    """Create a merchant (its payments go to the sandbox until configured)."""

    async def work(conn: Connection) -> merchants.Merchant:
        return await merchants.create_merchant(conn, name)

    merchant = with_connection(work)
    click.echo(f"created merchant {merchant.name} ({merchant.id})")


@group.command("list")
def list_() -> None:
    """List merchants: routing, capture mode, processor accounts, live keys."""
    found = with_connection(merchants.list_merchants)
    click.echo(f"{'NAME':<24}{'ID':<30}{'PROCESSOR':<20}{'CAPTURE':<12}{'KEYS':>5}  CREATED")
    for m in found:
        capture = "on create" if m.capture_on_create else "on request"
        click.echo(
            f"{m.name:<24}{m.id:<30}{m.processor:<20}{capture:<12}{m.active_keys:>5}  "
            f"{when(m.created_at)}"
        )
    if not found:
        click.echo("(no merchants)")


@group.command()
@click.argument("name")
def show(name: str) -> None:
    """One merchant: its routing, capture mode, processor accounts and live keys."""

    async def work(conn: Connection) -> merchants.MerchantDetail:
        return await merchants.show_merchant(conn, name)

    m = with_connection(work)
    click.echo(f"merchant {m.name} ({m.id}), created {when(m.created_at)}")
    click.echo(f"  processor {m.processor}, capture {_capture(m.capture_on_create)}")
    click.echo(f"  processor accounts: {', '.join(m.accounts) or 'none'}")
    click.echo(f"  active API keys: {m.active_keys}")


@group.command()
@click.argument("name")
@click.option(
    "--processor",
    help=f"{', '.join(registry.BUILTIN)}, or the name of one of its processor accounts",
)
@click.option(
    "--capture-on-create/--capture-on-request",
    "capture_on_create",
    default=None,
    help="capture at once when a payment is authorized, or wait for a capture call",
)
def configure(name: str, processor: str | None, capture_on_create: bool | None) -> None:
    """Set where a merchant's new payments go and when they are captured."""
    if processor is None and capture_on_create is None:
        raise CommandError("nothing to configure: give --processor and/or a capture option")

    async def work(conn: Connection) -> merchants.MerchantDetail:
        return await merchants.configure(
            conn, name, processor=processor, capture_on_create=capture_on_create
        )

    m = with_connection(work)
    click.echo(
        f"merchant {m.name}: processor {m.processor}, capture {_capture(m.capture_on_create)}"
    )


def _capture(on_create: bool) -> str:
    return "at once on create" if on_create else "on request"
