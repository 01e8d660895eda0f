"""A merchant's routing rules: data, validated on write, evaluated by a pure function.

A rule set is an ordered list of rules; the first whose conditions match a payment decides, and
the last rule is the default (it must match everything). A rule's action is an ordered list of
processor accounts to try, or a weighted split whose chosen account is followed by the others as
fallbacks (in the order written). Accounts are named as the merchant's processor accounts are, or
as a built-in processor (`sandbox`, `manual`). An empty list (`accounts: []`) holds the payment:
it is created PENDING and sent nowhere, until the merchant authorizes it on a processor it names
(`POST /payments/{id}/authorize`).

Conditions (all optional; a rule with none matches every payment), combined with `match: all`
(the default) or `match: any`:

    currency: [EUR, USD]        amount: {min: 100, max: 50000}   (minor units, both inclusive)
    network: [VISA]             bin: ["411111", "5555"]          (prefixes of the first six digits)
    customer_id: [cus_1]        payment_method: [card, processor_token]
    issuer_country: [US, GB]    (the card's, where known)
    order_country: [DE]         (the order's countryCode)
    metadata: {channel: web}    (each key must hold that text)

Evaluation reads only the payment's facts (`Facts`) and a number in [0, 1) for a split, so it can
be tested exhaustively, and costs a few microseconds per payment.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Annotated, Any, Literal

import msgspec

from workflows.errors import DomainError

MAX_AMOUNT = 2**63 - 1
Name = Annotated[str, msgspec.Meta(pattern=r"^[a-z0-9][a-z0-9_.-]{0,62}$")]


class RulesError(DomainError):
    """A rule set that cannot be saved: what is wrong, and where."""


class Amount(msgspec.Struct, frozen=True, forbid_unknown_fields=True, omit_defaults=True):
    min: Annotated[int, msgspec.Meta(ge=0, le=MAX_AMOUNT)] | None = None
    max: Annotated[int, msgspec.Meta(ge=0, le=MAX_AMOUNT)] | None = None


class Conditions(msgspec.Struct, frozen=True, forbid_unknown_fields=True, omit_defaults=True):
    currency: list[Annotated[str, msgspec.Meta(pattern=r"^[A-Z]{3}$")]] | None = None
    amount: Amount | None = None
    network: list[Annotated[str, msgspec.Meta(pattern=r"^[A-Z][A-Z_]*$")]] | None = None
    bin: list[Annotated[str, msgspec.Meta(pattern=r"^[0-9]{1,6}$")]] | None = None
    customer_id: list[str] | None = None
    payment_method: list[Literal["card", "processor_token"]] | None = None
    issuer_country: list[Annotated[str, msgspec.Meta(pattern=r"^[A-Z]{2}$")]] | None = None
    order_country: list[Annotated[str, msgspec.Meta(pattern=r"^[A-Z]{2}$")]] | None = None
    # Values are text, as YAML must be told ("NO" unquoted is false): compared exactly.
    metadata: dict[str, str] | None = None


class Weighted(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    account: Name
    weight: Annotated[int, msgspec.Meta(ge=1, le=100)]


class Rule(msgspec.Struct, frozen=True, forbid_unknown_fields=True, omit_defaults=True):
    name: Name
    when: Conditions | None = None
    match: Literal["all", "any"] = "all"
    # Exactly one of the two: accounts to try in order, or a split (weights summing to 100).
    accounts: list[Name] | None = None
    split: list[Weighted] | None = None


class RuleSet(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    rules: list[Rule]


@dataclass(frozen=True)
class Facts:
    """What a rule can know of a payment being created."""

    currency: str
    amount: int
    payment_method: str  # "card" (a token of the gateway's) or "processor_token"
    network: str | None = None
    first6: str | None = None
    customer_id: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    issuer_country: str | None = None  # where known
    order_country: str | None = None


@dataclass(frozen=True)
class Decision:
    rule: str
    # To try in this order: the first, then the fallbacks (none: the payment is held).
    accounts: tuple[str, ...]
    why: str  # e.g. "split: 30 of 100 -> stripe-eu"


MAX_RULES_BYTES = 64 * 1024  # as stored: every payment of the merchant reads them


def parse(raw: Any, known_accounts: set[str]) -> RuleSet:
    """A rule set from its document (YAML or JSON, decoded), checked; RulesError otherwise."""
    try:
        ruleset = msgspec.convert(raw, RuleSet)
    except msgspec.ValidationError as error:
        raise RulesError(str(error)) from None
    except (ValueError, RecursionError):  # a YAML alias that refers to itself
        raise RulesError("the rules refer to themselves (a recursive YAML alias)") from None
    if len(msgspec.json.encode(ruleset)) > MAX_RULES_BYTES:
        raise RulesError(f"the rules are over {MAX_RULES_BYTES // 1024} KiB once expanded")
    validate(ruleset, known_accounts)
    return ruleset


def validate(ruleset: RuleSet, known_accounts: set[str]) -> None:
    if not ruleset.rules:
        raise RulesError("a rule set needs at least one rule (the default, last)")
    names = [rule.name for rule in ruleset.rules]
    if len(set(names)) != len(names):
        raise RulesError("rule names must be unique")
    for index, rule in enumerate(ruleset.rules):
        where = f"rule {rule.name!r} (at $.rules[{index}])"
        if (rule.accounts is None) == (rule.split is None):
            raise RulesError(f"{where}: give either `accounts` or `split`")
        targets = rule.accounts or [part.account for part in rule.split or []]
        if not targets and rule.split is not None:
            raise RulesError(f"{where}: a split needs accounts")
        if len(set(targets)) != len(targets):
            raise RulesError(f"{where}: an account is named twice")
        unknown = [name for name in targets if name not in known_accounts]
        if unknown:
            known = ", ".join(sorted(known_accounts))
            raise RulesError(f"{where}: unknown account {unknown[0]!r} (known: {known})")
        if rule.split is not None and sum(part.weight for part in rule.split) != 100:
            raise RulesError(f"{where}: the split's weights must add up to 100")
        amount = rule.when.amount if rule.when else None
        if amount and amount.min is not None and amount.max is not None and amount.min > amount.max:
            raise RulesError(f"{where}: amount.min is above amount.max")
    last = ruleset.rules[-1]
    if last.when is not None and last.when != Conditions():
        raise RulesError(
            f"the last rule ({last.name!r}) is the default: it must have no conditions"
        )


def _holds(conditions: Conditions | None, facts: Facts) -> list[bool]:
    """Each condition given, held or not."""
    checks: list[bool] = []
    if conditions is None:
        return checks
    if conditions.currency is not None:
        checks.append(facts.currency in conditions.currency)
    if conditions.amount is not None:
        low, high = conditions.amount.min, conditions.amount.max
        checks.append(
            (low is None or facts.amount >= low) and (high is None or facts.amount <= high)
        )
    if conditions.network is not None:
        checks.append(facts.network is not None and facts.network in conditions.network)
    if conditions.bin is not None:
        first6 = facts.first6 or ""
        checks.append(bool(first6) and any(first6.startswith(prefix) for prefix in conditions.bin))
    if conditions.customer_id is not None:
        checks.append(facts.customer_id is not None and facts.customer_id in conditions.customer_id)
    if conditions.payment_method is not None:
        checks.append(facts.payment_method in conditions.payment_method)
    if conditions.issuer_country is not None:
        checks.append(facts.issuer_country in conditions.issuer_country)
    if conditions.order_country is not None:
        checks.append(facts.order_country in conditions.order_country)
    if conditions.metadata is not None:
        checks.append(
            all(
                isinstance(facts.metadata.get(key), str) and facts.metadata[key] == value
                for key, value in conditions.metadata.items()
            )
        )
    return checks


def matches(rule: Rule, facts: Facts) -> bool:
    checks = _holds(rule.when, facts)
    if not checks:
        return True
    return all(checks) if rule.match == "all" else any(checks)


def evaluate(ruleset: RuleSet, facts: Facts, draw: float) -> Decision:
    """The first matching rule's accounts, in the order to try them. `draw` in [0, 1) picks a
    split's account (the others follow it as fallbacks, in the order written)."""
    for rule in ruleset.rules:
        if not matches(rule, facts):
            continue
        if rule.accounts is not None:
            return Decision(rule.name, tuple(rule.accounts), "accounts in order")
        assert rule.split is not None
        point, total = int(draw * 100), 0
        for part in rule.split:
            total += part.weight
            if point < total:
                rest = tuple(p.account for p in rule.split if p.account != part.account)
                why = f"split: {point} of 100 -> {part.account}"
                return Decision(rule.name, (part.account, *rest), why)
    raise AssertionError("the last rule matches every payment")  # validate() ensures it
