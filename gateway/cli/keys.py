"""`gateway keys`: create, list and revoke API keys."""

from __future__ import annotations

from datetime import datetime

import click

from gateway import accounts
from gateway.cli.common import CommandError, with_connection
from workflows import merchants
from workflows.db import Connection


@click.group("keys")
def group() -> None:
    """Manage API keys (secrets are shown once, at creation, and never again)."""


@group.command()
@click.option("--merchant", help="merchant name: a key for its payments")
@click.option("--operator", is_flag=True, help="an operator key, for /admin/* only")
@click.option(
    "--mode",
    type=click.Choice(["sandbox", "live"]),
    default=None,
    help="a merchant key's mode  [default: sandbox]",
)
@click.option(
    "--scope",
    "scopes",
    multiple=True,
    type=click.Choice(accounts.SCOPES),
    help="grant only this scope (repeatable)  [default: all of them]",
)
def create(merchant: str | None, operator: bool, mode: str | None, scopes: tuple[str, ...]) -> None:
    """Create an API key; the key is printed once, on stdout."""
    if operator == (merchant is not None):
        raise click.UsageError("give either --merchant NAME or --operator")
    if operator and (mode or scopes):
        raise CommandError("operator keys have no --mode or --scope")

    async def work(conn: Connection) -> accounts.NewKey:
        if operator:
            return await accounts.create_key(conn, kind="operator")
        assert merchant is not None
        found = await merchants.find_merchant(conn, merchant)
        return await accounts.create_key(
            conn,
            kind="merchant",
            merchant=found,
            mode="live" if mode == "live" else "sandbox",
            scopes=tuple(dict.fromkeys(scopes)) or accounts.SCOPES,
        )

    key = with_connection(work)
    click.echo(key.secret)
    what = "operator key" if key.kind == "operator" else f"{key.mode} key for {merchant}"
    click.echo(f"# {what}, id {key.id}. Shown once: store it now.", err=True)


@group.command("list")
def list_() -> None:
    """List API keys (never their secrets)."""
    keys = with_connection(accounts.list_keys)
    click.echo(
        f"{'ID':<18}{'KIND':<10}{'MERCHANT':<20}{'MODE':<9}{'CREATED':<22}{'REVOKED':<22}SCOPES"
    )
    for key in keys:
        scopes = "all" if set(key.scopes) == set(accounts.SCOPES) else ",".join(key.scopes) or "-"
        click.echo(
            f"{key.id:<18}{key.kind:<10}{key.merchant_name or '-':<20}{key.mode or '-':<9}"
            f"{key.created_at:%Y-%m-%d %H:%M:%S}   "
            f"{f'{key.revoked_at:%Y-%m-%d %H:%M:%S}' if key.revoked_at else '-':<22}{scopes}"
        )


@group.command()
@click.argument("key")
def revoke(key: str) -> None:
    """Revoke a key, given by its id or whole (the secret is never echoed)."""

    async def work(conn: Connection) -> tuple[str, datetime | None]:
        return await accounts.revoke_key(conn, key)

    key_id, before = with_connection(work)
    if before is not None:
        click.echo(f"{key_id} was already revoked on {before:%Y-%m-%d %H:%M:%S}")
    else:
        click.echo(f"revoked {key_id}")
