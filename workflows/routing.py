"""Which processor account a new payment goes to: the merchant's routing rules (workflows/rules.py)
when it has some, else its configured processor. Rules are saved as versions (every change kept)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

import msgspec

from processors import registry
from workflows.db import Connection, Q, jsonb, translated
from workflows.errors import (
    Conflict,
    MerchantAccountConflict,
    MerchantAccountNotFound,
    PaymentMethodTokenNotFound,
    ProcessorUnavailable,
)
from workflows.instruments import card_behind
from workflows.rules import Decision, Facts, RulesError, RuleSet, evaluate, parse

if TYPE_CHECKING:
    from workflows.commands import CreatePayment
    from workflows.model import Card


@dataclass(frozen=True)
class Route:
    kind: str  # processors.registry
    account: str | None  # None: the built-in processor of that kind
    disabled: bool = False  # the account takes no new payment

    @property
    def name(self) -> str:
        """As the rules name it: the account's name, or the built-in processor's."""
        return self.account or self.kind


@dataclass(frozen=True)
class MerchantRouting:
    """A merchant's routing settings, as stored on the merchant, and its rules in force."""

    default: Route
    capture_on_create: bool
    rules: RuleSet | None = None


@dataclass(frozen=True)
class RulesVersion:
    version: int
    rules: dict[str, Any]
    created_by: str
    created_at: datetime


def facts_of(command: CreatePayment, card: Card | None) -> Facts:
    """The facts of a command completed from its session (commands.completed)."""
    assert command.currency_code is not None and command.amount is not None
    return _facts(
        command.currency_code,
        command.amount,
        card,
        command.customer_id,
        command.metadata,
        command.order_details,
    )


def _facts(
    currency: str,
    amount: int,
    card: Card | None,
    customer_id: str | None,
    metadata: dict[str, Any] | None,
    order: dict[str, Any] | None,
) -> Facts:
    country = (order or {}).get("countryCode")
    return Facts(
        currency=currency,
        amount=amount,
        payment_method="card" if card is not None else "processor_token",
        network=card.network if card else None,
        first6=card.first6 if card else None,
        customer_id=customer_id,
        metadata=metadata or {},
        issuer_country=card.issuer_country if card else None,
        order_country=country if isinstance(country, str) else None,
    )


async def route_for(
    conn: Connection,
    merchant_id: str,
    routing: MerchantRouting,
    facts: Facts,
    draw: float,
    token: str,
) -> tuple[list[Route], Decision | None]:
    """The routes a payment with these facts may take, in the order to try them: by the rules
    (those of their accounts that are enabled and take the payment's token), or the merchant's
    configured processor."""
    if routing.rules is None:
        if routing.default.disabled:
            raise ProcessorUnavailable(
                f"The merchant's processor account {routing.default.account!r} is disabled."
            )
        return [routing.default], None
    decision = evaluate(routing.rules, facts, draw)
    if not decision.accounts:
        return [], decision  # held: the merchant names the processor later
    routes, disabled = await routes_of(
        conn, merchant_id, decision.accounts, token, facts.payment_method
    )
    if routes:
        return routes, decision
    if disabled:
        raise ProcessorUnavailable(
            f"The routing rule {decision.rule!r} has no account for this payment: "
            f"{', '.join(disabled)} disabled, the others do not take this paymentMethodToken."
        )
    raise PaymentMethodTokenNotFound(
        f"The routing rule {decision.rule!r} sends payments to "
        f"{', '.join(decision.accounts)}, none of which takes this paymentMethodToken."
    )


async def routes_of(
    conn: Connection, merchant_id: str, names: Sequence[str], token: str, payment_method: str
) -> tuple[list[Route], list[str]]:
    """The named accounts that can take a payment, in order (a processor's own token only its
    kind, the gateway's cards only kinds without tokens of their own), and those disabled.
    An account removed since the rules were saved is passed over."""
    routes, disabled = [], []
    for name in names:
        try:
            route = await route_of(conn, merchant_id, name)
        except RulesError:
            continue
        if route.disabled:
            disabled.append(name)
        elif takes(route, token, payment_method):
            routes.append(route)
    return routes, disabled


def takes(route: Route, token: str, payment_method: str) -> bool:
    own = registry.kind(route.kind).own_tokens
    if own is None:
        return payment_method == "card"
    return token.startswith(own.prefix)


async def route_of(conn: Connection, merchant_id: str, name: str) -> Route:
    """An account named in the rules: a built-in processor, or one of the merchant's accounts."""
    if name in registry.BUILTIN:
        return Route(name, None)
    cur = await conn.execute(
        Q["processor_account_kind"], {"merchant_id": merchant_id, "name": name}
    )
    row = await cur.fetchone()
    if row is None:  # removed since the rules were saved: the set-up is incomplete
        raise RulesError(f"the routing rules name an account that is gone: {name!r}")
    return Route(row[0], name, disabled=row[1] == "disabled")


async def named_route(
    conn: Connection, merchant_id: str, processor_merchant_id: str, name: str | None
) -> Route:
    """The route a merchant names as payments show it: `processorMerchantId` (an account's name,
    or the merchant's own id for the built-in processors) and, where that is not enough, the
    processor's name (e.g. SANDBOX)."""
    found: list[Route] = []
    if processor_merchant_id == merchant_id:
        found = [Route(kind, None) for kind in registry.BUILTIN]
    else:
        cur = await conn.execute(
            Q["processor_account_kind"], {"merchant_id": merchant_id, "name": processor_merchant_id}
        )
        row = await cur.fetchone()
        if row is not None:
            found = [Route(row[0], processor_merchant_id, disabled=row[1] == "disabled")]
    if name is not None:
        found = [r for r in found if registry.display_name(r.kind) == name.upper()]
    if not found:
        raise MerchantAccountNotFound(
            f"No processor account has processorMerchantId {processor_merchant_id!r}"
            + (f" and name {name!r}." if name else ".")
        )
    if len(found) > 1:
        names = ", ".join(registry.display_name(r.kind) for r in found)
        raise MerchantAccountConflict(
            f"More than one processor has processorMerchantId {processor_merchant_id!r} "
            f"({names}): give processor.name too."
        )
    if found[0].disabled:
        raise ProcessorUnavailable(f"The processor account {found[0].account!r} is disabled.")
    return found[0]


async def known_accounts(conn: Connection, merchant_id: str) -> set[str]:
    cur = await conn.execute(Q["merchant_account_names"], {"merchant_id": merchant_id})
    return {row[0] for row in await cur.fetchall()} | set(registry.BUILTIN)


async def save_rules(conn: Connection, merchant_id: str, raw: Any, created_by: str) -> RulesVersion:
    """Check a rule set and save it as the merchant's next version; RulesError if it is not
    valid (nothing saved)."""
    ruleset = parse(raw, await known_accounts(conn, merchant_id))
    try:
        with translated():
            cur = await conn.execute(
                Q["save_routing_rules"],
                {"merchant_id": merchant_id, "rules": jsonb(ruleset), "created_by": created_by},
            )
            row = await cur.fetchone()
    except Conflict:
        raise RulesError("the rules were changed at the same time: try again") from None
    assert row is not None
    return RulesVersion(int(row[0]), msgspec.to_builtins(ruleset), created_by, row[1])


async def accounts_in_force(conn: Connection, merchant_id: str) -> set[str]:
    """The accounts the merchant's rules in force name (none without rules)."""
    found = await history(conn, merchant_id)
    rules = rules_of(found[0].rules) if found else None
    names: set[str] = set()
    for rule in rules.rules if rules else []:
        names.update(rule.accounts or [part.account for part in rule.split or []])
    return names


async def history(conn: Connection, merchant_id: str) -> list[RulesVersion]:
    cur = await conn.execute(Q["routing_history"], {"merchant_id": merchant_id})
    return [RulesVersion(*row) for row in await cur.fetchall()]


def rules_of(raw: Any) -> RuleSet | None:
    """The rules as stored (already checked when saved)."""
    return None if raw is None else msgspec.convert(raw, RuleSet)


@dataclass(frozen=True)
class Explanation:
    """Which rule, and which accounts in which order, a payment would get."""

    facts: Facts
    version: int | None  # None: no rules (the merchant's configured processor decides)
    rule: str | None = None
    # Each way the rule can send it: (percent of payments, accounts in order); one for a list.
    branches: tuple[tuple[int, tuple[str, ...]], ...] = ()


async def explain(
    conn: Connection,
    merchant_id: str,
    *,
    currency: str,
    amount: int,
    token: str,
    customer_id: str | None = None,
    metadata: dict[str, Any] | None = None,
    order: dict[str, Any] | None = None,
) -> Explanation:
    """How the rules in force would route a sandbox payment with these parts."""
    card = await card_behind(conn, merchant_id, token, "sandbox")
    facts = _facts(currency, amount, card, customer_id, metadata, order)
    found = await history(conn, merchant_id)
    rules = rules_of(found[0].rules) if found else None
    if rules is None:
        return Explanation(facts, None)
    decision = evaluate(rules, facts, 0.0)
    rule = next(r for r in rules.rules if r.name == decision.rule)
    if rule.split is None:
        return Explanation(facts, found[0].version, rule.name, ((100, decision.accounts),))
    branches = tuple(
        (part.weight, (part.account, *(p.account for p in rule.split if p is not part)))
        for part in rule.split
    )
    return Explanation(facts, found[0].version, rule.name, branches)
