"""Routing rules alone: validation on write, matching, the order of accounts, splits."""

from __future__ import annotations

import random
from collections import Counter
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from workflows.rules import Facts, RulesError, evaluate, matches, parse

ACCOUNTS = {"sandbox", "manual", "stripe-eu", "stripe-us", "adyen"}


def ruleset(*rules: dict[str, Any]) -> Any:
    return parse({"rules": [*rules, {"name": "default", "accounts": ["sandbox"]}]}, ACCOUNTS)


def facts(**overrides: Any) -> Facts:
    base: dict[str, Any] = {"currency": "EUR", "amount": 1000, "payment_method": "card"}
    return Facts(**{**base, **overrides})


def test_the_first_matching_rule_decides_and_the_default_catches_the_rest() -> None:
    rules = ruleset(
        {
            "name": "big-usd",
            "when": {"currency": ["USD"], "amount": {"min": 10_000}},
            "accounts": ["stripe-us", "adyen"],
        },
        {"name": "usd", "when": {"currency": ["USD"]}, "accounts": ["adyen"]},
    )
    assert evaluate(rules, facts(currency="USD", amount=20_000), 0.5).accounts == (
        "stripe-us",
        "adyen",
    )
    assert evaluate(rules, facts(currency="USD", amount=9_999), 0.5).rule == "usd"
    assert evaluate(rules, facts(currency="EUR"), 0.5).rule == "default"


@pytest.mark.parametrize(
    ("when", "hit", "miss"),
    [
        ({"network": ["VISA"]}, {"network": "VISA"}, {"network": "MASTERCARD"}),
        ({"bin": ["4111"]}, {"first6": "411111"}, {"first6": "555555"}),
        ({"bin": ["4111"]}, {"first6": "411111"}, {"first6": None}),
        ({"customer_id": ["c1"]}, {"customer_id": "c1"}, {"customer_id": None}),
        ({"payment_method": ["processor_token"]}, {"payment_method": "processor_token"}, {}),
        ({"metadata": {"channel": "web"}}, {"metadata": {"channel": "web"}}, {"metadata": {}}),
        ({"amount": {"min": 100, "max": 200}}, {"amount": 200}, {"amount": 201}),
        ({"amount": {"min": 100, "max": 200}}, {"amount": 100}, {"amount": 99}),
        ({"issuer_country": ["US"]}, {"issuer_country": "US"}, {"issuer_country": "GB"}),
        ({"issuer_country": ["US"]}, {"issuer_country": "US"}, {"issuer_country": None}),
        ({"order_country": ["DE"]}, {"order_country": "DE"}, {"order_country": None}),
    ],
)
def test_each_condition(when: dict[str, Any], hit: dict[str, Any], miss: dict[str, Any]) -> None:
    [rule, _] = ruleset({"name": "r", "when": when, "accounts": ["adyen"]}).rules
    assert matches(rule, facts(**hit)) and not matches(rule, facts(**miss))


def test_any_needs_one_condition_all_needs_every_one() -> None:
    when = {"currency": ["USD"], "network": ["VISA"]}
    both = ruleset(
        {"name": "any", "when": when, "match": "any", "accounts": ["adyen"]},
        {"name": "all", "when": when, "accounts": ["manual"]},
    )
    [any_rule, all_rule, _] = both.rules
    one = facts(currency="USD", network="MASTERCARD")
    assert matches(any_rule, one) and not matches(all_rule, one)
    assert matches(all_rule, facts(currency="USD", network="VISA"))


def test_a_split_chooses_by_weight_and_falls_back_to_the_others() -> None:
    rules = ruleset(
        {
            "name": "split",
            "split": [{"account": "stripe-eu", "weight": 70}, {"account": "adyen", "weight": 30}],
        }
    )
    draws = random.Random(1234)
    chosen = Counter(evaluate(rules, facts(), draws.random()).accounts for _ in range(20_000))
    assert set(chosen) == {("stripe-eu", "adyen"), ("adyen", "stripe-eu")}
    share = chosen[("stripe-eu", "adyen")] / 20_000
    assert 0.68 <= share <= 0.72, share


@pytest.mark.parametrize(
    ("rules", "says"),
    [
        ([], "at least one rule"),
        ([{"name": "a", "accounts": ["nope"]}], "unknown account 'nope'"),
        (
            [
                {
                    "name": "a",
                    "split": [
                        {"account": "adyen", "weight": 60},
                        {"account": "manual", "weight": 30},
                    ],
                }
            ],
            "add up to 100",
        ),
        (
            [{"name": "a", "accounts": ["adyen"], "split": [{"account": "manual", "weight": 100}]}],
            "either `accounts` or `split`",
        ),
        ([{"name": "a", "accounts": ["adyen", "adyen"]}], "named twice"),
        (
            [
                {"name": "a", "when": {"amount": {"min": 5, "max": 1}}, "accounts": ["adyen"]},
                {"name": "b", "accounts": ["adyen"]},
            ],
            "amount.min is above amount.max",
        ),
        ([{"name": "a", "when": {"currency": ["EUR"]}, "accounts": ["adyen"]}], "the default"),
        ([{"name": "a", "accounts": ["adyen"]}, {"name": "a", "accounts": ["adyen"]}], "unique"),
        ([{"name": "a", "when": {"amount": {"min": -1}}, "accounts": ["adyen"]}], ">= 0"),
        ([{"name": "a", "when": {"colour": ["red"]}, "accounts": ["adyen"]}], "colour"),
        ([{"name": "a", "when": {"order_country": ["Germany"]}, "accounts": []}], "order_country"),
        ([{"name": "a", "split": []}], "a split needs accounts"),
    ],
)
def test_invalid_rules_are_refused_saying_why(rules: list[Any], says: str) -> None:
    with pytest.raises(RulesError, match=None) as refused:
        parse({"rules": rules}, ACCOUNTS)
    assert says in str(refused.value)


conditions = st.fixed_dictionaries(
    {},
    optional={
        "currency": st.lists(st.sampled_from(["EUR", "USD", "GBP"]), min_size=1, max_size=2),
        "amount": st.fixed_dictionaries(
            {}, optional={"min": st.integers(0, 5000), "max": st.integers(5000, 10_000)}
        ),
        "network": st.lists(st.sampled_from(["VISA", "MASTERCARD"]), min_size=1, max_size=2),
        "bin": st.lists(st.sampled_from(["4", "41", "5555"]), min_size=1, max_size=2),
    },
)
a_rule = st.builds(
    lambda i, when, match, accounts: {
        "name": f"r{i}",
        "when": when,
        "match": match,
        "accounts": accounts,
    },
    st.integers(0, 10**6),
    conditions,
    st.sampled_from(["all", "any"]),
    st.lists(st.sampled_from(sorted(ACCOUNTS)), min_size=1, max_size=3, unique=True),
)
a_payment = st.builds(
    facts,
    currency=st.sampled_from(["EUR", "USD", "GBP"]),
    amount=st.integers(0, 10_000),
    network=st.sampled_from(["VISA", "MASTERCARD", None]),
    first6=st.sampled_from(["411111", "555555", None]),
)


@settings(max_examples=300, deadline=None)
@given(st.lists(a_rule, max_size=6, unique_by=lambda r: r["name"]), a_payment, st.floats(0, 0.999))
def test_the_decision_is_the_first_matching_rules_accounts(
    rules: list[dict[str, Any]], payment: Facts, draw: float
) -> None:
    parsed = ruleset(*rules)
    decision = evaluate(parsed, payment, draw)
    chosen = next(r for r in parsed.rules if r.name == decision.rule)
    earlier = parsed.rules[: parsed.rules.index(chosen)]
    assert matches(chosen, payment)
    assert not any(matches(rule, payment) for rule in earlier)
    assert decision.accounts == tuple(chosen.accounts or [])
