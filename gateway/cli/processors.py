"""`gateway processors`: a merchant's accounts at processors, their secrets sealed at rest."""

from __future__ import annotations

import os

import click

from gateway.cli.common import CommandError, settings, with_connection, with_engine
from gateway.services import Services
from gateway.settings import previous_secret_keys
from processors import registry
from workflows import merchants
from workflows.accounts import (
    add_account,
    list_accounts,
    remove_account,
    set_account_state,
    update_credentials,
)
from workflows.circuits import CircuitReport
from workflows.credentials import CredentialBox
from workflows.db import Connection

ACCOUNT_KINDS = [name for name, kind in registry.KINDS.items() if kind.has_accounts]


@click.group("processors")
def group() -> None:
    """Manage processor accounts."""


@group.command()
@click.option("--merchant", required=True, help="the merchant whose account it is")
@click.option("--name", required=True, help="the account's name, e.g. stripe-main")
@click.option("--type", "kind", required=True, type=click.Choice(ACCOUNT_KINDS))
@click.option(
    "--secret-key-env",
    metavar="VAR",
    help="environment variable holding the secret key (never pass secrets as arguments); "
    "sandbox accounts have none",
)
@click.option(
    "--setting",
    "raw_settings",
    multiple=True,
    metavar="NAME=VALUE",
    help="a setting of the kind, e.g. apiBaseUrl=https://... or multicapture=true (repeatable)",
)
def add(
    merchant: str, name: str, kind: str, secret_key_env: str | None, raw_settings: tuple[str]
) -> None:
    """Add a processor account to a merchant (its secret encrypted with GATEWAY_SECRET_KEY).

    A sandbox account is a simulated processor of its own, its behaviour set by settings:
    authorize=by_card|soft_decline|hard_decline, unreachable=true, timesOut=true."""
    credentials: dict[str, str] = {}
    if registry.kind(kind).secret:
        if not secret_key_env:
            raise CommandError(f"a {kind} account needs --secret-key-env")
        secret = os.environ.get(secret_key_env, "")
        if not secret:
            raise CommandError(f"the environment variable {secret_key_env} is not set or empty")
        credentials = {"secretKey": secret}
    kind_settings: dict[str, str] = {}
    for item in raw_settings:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise click.BadParameter(f"{item!r} is not NAME=VALUE", param_hint="--setting")
        kind_settings[key] = value
    box = CredentialBox(settings().secret_key)  # new secrets: under the current key only

    async def work(conn: Connection) -> None:
        found = await merchants.find_merchant(conn, merchant)
        await add_account(
            conn,
            box,
            merchant_id=found.id,
            name=name,
            kind=kind,
            credentials=credentials,
            settings=kind_settings,
        )

    with_connection(work)
    click.echo(
        f"added {kind} account {name} to {merchant}"
        + (" (secret encrypted)" if registry.kind(kind).secret else "")
        + "; route payments to it "
        f"with: gateway merchants configure {merchant} --processor {name}"
    )


@group.command("set-webhook-secret")
@click.option("--merchant", required=True)
@click.option("--name", required=True, help="the Stripe account")
@click.option(
    "--secret-env",
    required=True,
    metavar="VAR",
    help="environment variable holding the endpoint's signing secret (whsec_...)",
)
def set_webhook_secret(merchant: str, name: str, secret_env: str) -> None:
    """Take a Stripe account's events: the signing secret of its webhook endpoint at Stripe
    (sealed with its API key), whose URL is /webhooks/stripe/{merchant id}/{account}."""
    secret = os.environ.get(secret_env, "")
    if not secret:
        raise CommandError(f"the environment variable {secret_env} is not set or empty")
    box = CredentialBox(settings().secret_key, previous_secret_keys(settings()))

    async def work(conn: Connection) -> str:
        await update_credentials(conn, box, merchant, name, webhook_secret=secret)
        return (await merchants.find_merchant(conn, merchant)).id

    merchant_id = with_connection(work)
    click.echo(
        f"{name} of {merchant} takes Stripe events at /webhooks/stripe/{merchant_id}/{name} "
        "(secret encrypted)"
    )


@group.command("list")
def list_() -> None:
    """List processor accounts (never their secrets)."""
    listing = with_connection(list_accounts)
    click.echo(f"{'MERCHANT':<20}{'NAME':<20}{'TYPE':<8}{'STATE':<10}{'CREATED':<21}SETTINGS")
    for account in listing:
        shown = " ".join(f"{key}={value}" for key, value in sorted(account.settings.items()))
        click.echo(
            f"{account.merchant_name:<20}{account.name:<20}{account.kind:<8}{account.state:<10}"
            f"{account.created_at:%Y-%m-%d %H:%M:%S}  {shown}"
        )
    if not listing:
        click.echo("(no processor accounts)")


@group.command()
@click.option("--merchant", help="only this merchant's accounts")
def health(merchant: str | None) -> None:
    """The accounts whose circuit breaker is open (new payments pass over them) or half-open
    (one payment is let through as a probe), as every gateway process sees them."""

    async def work(services: Services) -> list[CircuitReport]:
        merchant_id = None
        if merchant is not None:
            async with services.engine.db.connection() as conn:
                merchant_id = (await merchants.find_merchant(conn, merchant)).id
        return await services.engine.circuits.report(merchant_id)

    found = with_engine(work)
    if not found:
        click.echo("every processor account's circuit is closed")
        return
    click.echo(f"{'MERCHANT':<24}{'ACCOUNT':<20}{'STATE':<11}OPEN FOR")
    for circuit in found:
        left = f"{circuit.open_for_seconds:.0f} s" if circuit.open_for_seconds else "-"
        click.echo(f"{circuit.merchant_id:<24}{circuit.account:<20}{circuit.state.value:<11}{left}")


@group.command()
@click.option("--merchant", required=True)
@click.option("--name", required=True, help="the account to disable")
def disable(merchant: str, name: str) -> None:
    """Send no new payment to an account (its payments' captures and refunds still go to it)."""
    _set_state(merchant, name, "disabled")


@group.command()
@click.option("--merchant", required=True)
@click.option("--name", required=True, help="the account to enable again")
def enable(merchant: str, name: str) -> None:
    """Let new payments go to a disabled account again."""
    _set_state(merchant, name, "active")


def _set_state(merchant: str, name: str, state: str) -> None:
    async def work(conn: Connection) -> None:
        await set_account_state(conn, merchant, name, state)

    with_connection(work)
    click.echo(f"processor account {name} of {merchant}: {state}")


@group.command()
@click.option("--merchant", required=True)
@click.option("--name", required=True, help="the account to remove")
def remove(merchant: str, name: str) -> None:
    """Remove a processor account that no payment has used."""

    async def work(conn: Connection) -> None:
        await remove_account(conn, merchant, name)

    with_connection(work)
    click.echo(f"removed processor account {name} of {merchant}")
