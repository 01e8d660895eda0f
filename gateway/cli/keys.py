"""`gateway keys`: create, list and revoke API keys."""

from __future__ import annotations

from datetime import datetime

import click

from gateway import accounts
from gateway.cli.common import CommandError, actor, settings, with_connection, with_redis
from gateway.keycache import publish_revocation
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
            return await accounts.create_key(conn, kind="operator", actor=actor())
        assert merchant is not None
        found = await merchants.find_merchant(conn, merchant)
        return await accounts.create_key(
            conn,
            kind="merchant",
            merchant=found,
            mode="live" if mode == "live" else "sandbox",
            scopes=tuple(dict.fromkeys(scopes)) or accounts.SCOPES,
            actor=actor(),
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
        f"{'ID':<18}{'KIND':<10}{'MERCHANT':<20}{'MODE':<9}{'CREATED':<22}{'REVOKED':<22}"
        f"{'LAST USED':<22}SCOPES"
    )
    for key in keys:
        scopes = "all" if set(key.scopes) == set(accounts.SCOPES) else ",".join(key.scopes) or "-"
        click.echo(
            f"{key.id:<18}{key.kind:<10}{key.merchant_name or '-':<20}{key.mode or '-':<9}"
            f"{key.created_at:%Y-%m-%d %H:%M:%S}   {_at(key.revoked_at):<22}"
            f"{_at(key.last_used_at):<22}{scopes}"
        )


def _at(moment: datetime | None) -> str:
    return f"{moment:%Y-%m-%d %H:%M:%S}" if moment else "-"


@group.command()
@click.option("--limit", type=int, default=50, show_default=True)
def audit(limit: int) -> None:
    """What was done to keys (created, revoked), by whom, most recent first."""

    async def work(conn: Connection) -> list[accounts.AuditEntry]:
        return await accounts.audit_log(conn, limit)

    entries = with_connection(work)
    click.echo(f"{'AT':<22}{'ACTION':<18}{'KEY':<18}{'MERCHANT':<20}ACTOR")
    for entry in entries:
        click.echo(
            f"{entry.at:%Y-%m-%d %H:%M:%S}   {entry.action:<18}{entry.subject:<18}"
            f"{entry.merchant_name or '-':<20}{entry.actor}"
        )


@group.command()
@click.argument("key")
def revoke(key: str) -> None:
    """Revoke a key, given by its id or whole (the secret is never echoed)."""

    async def work(conn: Connection) -> tuple[str, datetime | None]:
        return await accounts.revoke_key(conn, key, actor())

    key_id, before = with_connection(work)
    if before is not None:
        click.echo(f"{key_id} was already revoked on {before:%Y-%m-%d %H:%M:%S}")
    else:
        click.echo(f"revoked {key_id}")
    # Gateway processes keep keys that authenticated for a few seconds: tell them now (again,
    # for a key revoked before: that time's message may not have reached them).
    given = settings()
    if given.database_url and not given.redis_url:
        # A database named but no Redis: not the embedded one (it is not the gateways').
        click.echo(
            "GATEWAY_REDIS_URL is not set: gateway processes could not be told; they refuse the "
            "key within GATEWAY_KEY_CACHE_SECONDS (set it, and revoke again, to tell them now)",
            err=True,
        )
    elif not with_redis(lambda redis: publish_revocation(redis, key_id)):
        click.echo(
            "Redis could not be reached: gateway processes refuse the key within "
            "GATEWAY_KEY_CACHE_SECONDS (while Redis is down they read every key anew)",
            err=True,
        )
