"""`gateway routing`: a merchant's routing rules: set, show, history, explain."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click
import msgspec
import yaml

from gateway.api.operator.routing import PaymentToExplain
from gateway.cli.common import CommandError, actor, when, with_connection
from workflows import merchants, routing
from workflows.db import Connection


@click.group("routing")
def group() -> None:
    """A merchant's routing rules: which processor account each payment goes to."""


def _load(path: Path) -> Any:
    try:
        return yaml.safe_load(path.read_text(encoding="utf-8"))  # JSON is YAML too
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as error:
        raise CommandError(f"cannot read {path}: {error}") from None
    except RecursionError:
        raise CommandError(f"cannot read {path}: it is nested too deeply") from None


@group.command("set")
@click.option("--merchant", required=True, help="the merchant, by name")
@click.argument("rules_file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
def set_(merchant: str, rules_file: Path) -> None:
    """Check RULES_FILE (YAML or JSON) and make it the merchant's rules, as a new version."""
    raw = _load(rules_file)

    async def work(conn: Connection) -> routing.RulesVersion:
        found = await merchants.find_merchant(conn, merchant)
        return await routing.save_rules(conn, found.id, raw, actor())

    saved = with_connection(work)
    click.echo(f"merchant {merchant}: routing rules version {saved.version} in force")


@group.command()
@click.option("--merchant", required=True, help="the merchant, by name")
def show(merchant: str) -> None:
    """Print the rules in force (YAML), or say that the merchant has none."""
    versions = _history(merchant)
    if not versions:
        click.echo(f"# merchant {merchant} has no routing rules: its configured processor decides")
        return
    latest = versions[0]
    click.echo(f"# version {latest.version}, by {latest.created_by}, {when(latest.created_at)}")
    rules = msgspec.to_builtins(routing.rules_of(latest.rules))  # in the rules' own order
    click.echo(yaml.safe_dump(rules, sort_keys=False).rstrip())


@group.command()
@click.option("--merchant", required=True, help="the merchant, by name")
def history(merchant: str) -> None:
    """Every version of the merchant's rules: who, when, which rules."""
    click.echo(f"{'VERSION':<9}{'AT':<22}{'BY':<36}RULES")
    for version in _history(merchant):
        names = ", ".join(rule["name"] for rule in version.rules["rules"])
        click.echo(
            f"{version.version:<9}{when(version.created_at):<22}{version.created_by:<36}{names}"
        )


def _history(merchant: str) -> list[routing.RulesVersion]:
    async def work(conn: Connection) -> list[routing.RulesVersion]:
        found = await merchants.find_merchant(conn, merchant)
        return await routing.history(conn, found.id)

    return with_connection(work)


@group.command()
@click.option("--merchant", required=True, help="the merchant, by name")
@click.argument("payment_file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
def explain(merchant: str, payment_file: Path) -> None:
    """Which rule, and which accounts in which order, a payment (a POST /payments body, as
    JSON) would get under the rules in force."""
    try:
        body = msgspec.convert(_load(payment_file), PaymentToExplain)
    except msgspec.ValidationError as error:
        raise CommandError(f"{payment_file}: {error}") from None
    except (ValueError, RecursionError):
        raise CommandError(f"{payment_file}: it refers to itself (a YAML alias)") from None

    async def work(conn: Connection) -> routing.Explanation:
        found = await merchants.find_merchant(conn, merchant)
        return await routing.explain(
            conn,
            found.id,
            currency=body.currencyCode,
            amount=body.amount,
            token=body.paymentMethodToken,
            customer_id=body.customerId,
            metadata=body.metadata,
            order=body.order,
        )

    explained = with_connection(work)
    shown = {k: v for k, v in vars(explained.facts).items() if v not in (None, {})}
    click.echo(f"payment: {json.dumps(shown, sort_keys=True)}")
    if explained.version is None:
        click.echo("no routing rules: the merchant's configured processor")
        return
    click.echo(f"rule: {explained.rule} (version {explained.version})")
    if len(explained.branches) == 1:
        accounts = explained.branches[0][1]
        if not accounts:
            click.echo("held: sent to no processor (POST /payments/{id}/authorize names one)")
            return
        click.echo(f"accounts, in order: {' -> '.join(accounts)}")
        return
    for weight, accounts in explained.branches:
        click.echo(f"  {weight:>3}%: {' -> '.join(accounts)}")
