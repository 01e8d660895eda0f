"""A merchant's routing rules through `gateway routing`, and payments that follow them."""

from __future__ import annotations

import json
import secrets
from pathlib import Path
from typing import Any

import pytest

from gateway import accounts
from gateway.settings import Settings
from tests.conftest import run_gateway
from tests.integration.conftest import Running
from tests.integration.shop import Shop
from workflows import merchants

RULES = """
rules:
  - name: euro-cash
    when: {currency: [EUR], amount: {max: 5000}}
    accounts: [manual]
  - name: visa-split
    when: {network: [VISA]}
    split:
      - {account: sandbox, weight: 50}
      - {account: manual, weight: 50}
  - name: default
    accounts: [sandbox]
"""


DEFAULT = "{name: e, accounts: [sandbox]}]"


@pytest.fixture
async def shop_name(db: Any) -> str:
    return (await merchants.create_merchant(db, f"rt-{secrets.token_hex(4)}")).name


async def shop_of(
    running: Running, db: Any, shop_name: str, *, stripe_account: str | None = None
) -> tuple[merchants.Merchant, Shop]:
    """The merchant's backend (a new sandbox key), with a Stripe account of it added first."""
    from workflows.accounts import add_account
    from workflows.credentials import CredentialBox, new_master_key

    merchant = await merchants.find_merchant(db, shop_name)
    if stripe_account is not None:
        await add_account(
            db,
            CredentialBox(new_master_key()),
            merchant_id=merchant.id,
            name=stripe_account,
            kind="stripe",
            credentials={"secretKey": "sk_test_" + "x" * 24},
            settings={},
        )
    key = await accounts.create_key(db, kind="merchant", merchant=merchant, mode="sandbox")
    return merchant, Shop(running.client, key.secret)


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


async def test_rules_are_checked_versioned_shown_and_explained(
    settings: Settings, shop_name: str, tmp_path: Path
) -> None:
    bad = write(tmp_path, "bad.yaml", RULES.replace("[manual]", "[nowhere]"))
    refused = run_gateway(settings, "routing", "set", "--merchant", shop_name, str(bad))
    assert refused.returncode == 1 and "unknown account 'nowhere'" in refused.stderr
    none = run_gateway(settings, "routing", "show", "--merchant", shop_name)
    assert "has no routing rules" in none.stdout  # nothing was saved

    good = write(tmp_path, "rules.yaml", RULES)
    saved = run_gateway(settings, "routing", "set", "--merchant", shop_name, str(good))
    assert saved.returncode == 0, saved.stderr
    assert "version 1 in force" in saved.stdout
    again = run_gateway(settings, "routing", "set", "--merchant", shop_name, str(good))
    assert "version 2 in force" in again.stdout
    shown = run_gateway(settings, "routing", "show", "--merchant", shop_name)
    assert shown.stdout.startswith("# version 2, by cli ") and "euro-cash" in shown.stdout
    history = run_gateway(settings, "routing", "history", "--merchant", shop_name)
    lines = [line for line in history.stdout.splitlines()[1:] if line.strip()]
    assert [line.split()[0] for line in lines] == ["2", "1"]
    assert "euro-cash, visa-split, default" in lines[0]

    payment = write(tmp_path, "payment.json", json.dumps({"currencyCode": "EUR", "amount": 900}))
    explained = run_gateway(settings, "routing", "explain", "--merchant", shop_name, str(payment))
    assert "rule: euro-cash (version 2)" in explained.stdout
    assert "accounts, in order: manual" in explained.stdout
    usd = write(tmp_path, "usd.json", json.dumps({"currencyCode": "USD", "amount": 900}))
    explained = run_gateway(settings, "routing", "explain", "--merchant", shop_name, str(usd))
    assert "rule: default" in explained.stdout


async def test_payments_go_where_the_rules_say(
    running: Running, settings: Settings, shop_name: str, db: Any, tmp_path: Path
) -> None:
    _, shop = await shop_of(running, db, shop_name)
    rules = write(tmp_path, "rules.yaml", RULES)
    assert (
        run_gateway(settings, "routing", "set", "--merchant", shop_name, str(rules)).returncode == 0
    )
    small_eur = await shop.create(900, currency="EUR", card="5555555555554444")
    assert small_eur["processor"]["name"] == "MANUAL"
    big_mastercard = await shop.create(9000, currency="EUR", card="5555555555554444")
    assert big_mastercard["processor"]["name"] == "SANDBOX"  # the default
    visas = [await shop.create(9000, currency="EUR") for _ in range(12)]
    assert {p["processor"]["name"] for p in visas} <= {"SANDBOX", "MANUAL"}
    # The run says which rule chose, and the accounts in the order it gave them.
    cur = await db.execute(
        "SELECT input FROM workflow_runs WHERE payment_id = %s AND kind = 'authorize'",
        (small_eur["id"],),
    )
    run_input = (await cur.fetchone())[0]
    assert (run_input["rule"], run_input["accounts"]) == ("euro-cash", ["manual"])
    # Follow-ups go to the account that authorized.
    captured = (await shop.capture(small_eur["id"])).json()
    assert captured["status"] == "SETTLED" and captured["processor"]["name"] == "MANUAL"


async def test_an_account_that_cannot_take_the_token_is_passed_over_and_named_rules_keep_it(
    running: Running, settings: Settings, shop_name: str, db: Any, tmp_path: Path
) -> None:
    _, shop = await shop_of(running, db, shop_name, stripe_account="stripe-main")
    rules = """
rules:
  - name: stripe-only
    when: {currency: [GBP]}
    accounts: [stripe-main]
  - name: default
    accounts: [stripe-main, sandbox]
"""
    path = write(tmp_path, "rules.yaml", rules)
    assert (
        run_gateway(settings, "routing", "set", "--merchant", shop_name, str(path)).returncode == 0
    )
    # A card token of the gateway's cannot go to Stripe (it takes its own pm_ tokens): the next.
    paid = await shop.create(1000, currency="EUR")
    assert paid["processor"]["name"] == "SANDBOX"
    # A rule none of whose accounts takes it: a clear refusal, nothing written.
    response = await shop.call(
        "POST",
        "/payments",
        {
            "orderId": "o",
            "currencyCode": "GBP",
            "amount": 5,
            "paymentMethodToken": await shop.tokenize(),
        },
    )
    assert response.status_code == 400 and "stripe-only" in response.json()["error"]["description"]
    # An account the rules in force name cannot be removed.
    removed = run_gateway(
        settings, "processors", "remove", "--merchant", shop_name, "--name", "stripe-main"
    )
    assert removed.returncode == 1 and "routing rules in force" in removed.stderr


@pytest.mark.parametrize(
    ("text", "says"),
    [
        (
            "rules: [{name: d, when: {network: [visa]}, accounts: [sandbox]}, " + DEFAULT,
            "network",
        ),
        (
            "rules: [{name: d, when: {metadata: {country: NO}}, accounts: [sandbox]}, " + DEFAULT,
            "Expected `str`",
        ),
        (
            "rules: &r [{name: d, accounts: [sandbox]}, *r]",
            "cannot read|refer to themselves|Expected",
        ),
        ("[" * 5000, "cannot read"),
    ],
)
def test_rules_files_that_cannot_be_saved_say_why_without_a_traceback(
    settings: Settings, tmp_path: Path, text: str, says: str, shop_name: str
) -> None:
    import re

    path = write(tmp_path, "rules.yaml", text)
    refused = run_gateway(settings, "routing", "set", "--merchant", shop_name, str(path))
    assert refused.returncode == 1 and "Traceback" not in refused.stderr
    assert re.search(says, refused.stderr), refused.stderr


def test_rules_too_large_once_expanded_are_refused(
    settings: Settings, tmp_path: Path, shop_name: str
) -> None:
    many = ", ".join(f"c{n}" for n in range(2000))
    text = f"rules:\n  - {{name: r0, when: {{customer_id: &ids [{many}]}}, accounts: [sandbox]}}\n"
    text += "".join(
        f"  - {{name: r{n}, when: {{customer_id: *ids}}, accounts: [sandbox]}}\n"
        for n in range(1, 40)
    )
    text += "  - {name: default, accounts: [sandbox]}\n"
    assert len(text) < 32 * 1024  # small as written, large once its aliases are expanded
    path = write(tmp_path, "rules.yaml", text)
    refused = run_gateway(settings, "routing", "set", "--merchant", shop_name, str(path))
    assert refused.returncode == 1 and "KiB once expanded" in refused.stderr, refused.stderr


def test_explain_refuses_a_payment_it_cannot_read(
    settings: Settings, tmp_path: Path, shop_name: str
) -> None:
    for text in ('{"currencyCode": "EUR", "amount": "abc"}', "metadata: &m {a: *m}", "[1, 2]"):
        path = write(tmp_path, "payment.json", text)
        refused = run_gateway(settings, "routing", "explain", "--merchant", shop_name, str(path))
        assert refused.returncode == 1 and "Traceback" not in refused.stderr, refused.stderr


async def test_a_disabled_account_takes_no_new_payment_but_keeps_serving_its_own(
    running: Running, settings: Settings, shop_name: str, db: Any, tmp_path: Path
) -> None:
    merchant, shop = await shop_of(running, db, shop_name, stripe_account="stripe-old")
    rules = "rules:\n  - name: default\n    accounts: [stripe-old, sandbox]\n"
    path = write(tmp_path, "rules.yaml", rules)
    assert (
        run_gateway(settings, "routing", "set", "--merchant", shop_name, str(path)).returncode == 0
    )
    disabled = run_gateway(
        settings, "processors", "disable", "--merchant", shop_name, "--name", "stripe-old"
    )
    assert disabled.returncode == 0 and "disabled" in disabled.stdout
    listing = run_gateway(settings, "processors", "list")
    line = next(x for x in listing.stdout.splitlines() if "stripe-old" in x)
    assert "disabled" in line
    after = await shop.create(1000)
    assert after["processor"]["name"] == "SANDBOX"  # passed over
    # A merchant routed straight to a disabled account: refused cleanly, nothing written.
    routed = run_gateway(settings, "merchants", "configure", shop_name, "--processor", "stripe-old")
    assert routed.returncode == 0, routed.stderr
    await db.execute("DELETE FROM routing_rules WHERE merchant_id = %s", (merchant.id,))
    cur = await db.execute("SELECT count(*) FROM payments WHERE merchant_id = %s", (merchant.id,))
    count = (await cur.fetchone())[0]
    refused = await shop.call(
        "POST",
        "/payments",
        {"orderId": "o", "currencyCode": "EUR", "amount": 5, "paymentMethodToken": "pm_card_visa"},
    )
    assert refused.status_code == 503 and "disabled" in refused.json()["error"]["description"]
    cur = await db.execute("SELECT count(*) FROM payments WHERE merchant_id = %s", (merchant.id,))
    assert (await cur.fetchone())[0] == count
    enabled = run_gateway(
        settings, "processors", "enable", "--merchant", shop_name, "--name", "stripe-old"
    )
    assert enabled.returncode == 0 and "active" in enabled.stdout
    unknown = run_gateway(settings, "processors", "disable", "--merchant", shop_name, "--name", "x")
    assert unknown.returncode == 1 and "no processor account" in unknown.stderr


async def test_operators_manage_and_explain_rules_over_http(
    running: Running, shop_name: str, db: Any
) -> None:
    operator = await accounts.create_key(db, kind="operator")
    admin = {"X-API-KEY": operator.secret}
    base = f"/admin/routing/{shop_name}"
    empty = await running.client.get(base, headers=admin)
    assert empty.status_code == 200 and empty.json()["rules"] is None
    rules = {
        "rules": [
            {"name": "usd", "when": {"currency": ["USD"]}, "accounts": ["manual", "sandbox"]},
            {
                "name": "default",
                "split": [
                    {"account": "sandbox", "weight": 60},
                    {"account": "manual", "weight": 40},
                ],
            },
        ]
    }
    saved = await running.client.put(base, headers=admin, json=rules)
    assert saved.status_code == 200, saved.text
    assert saved.json()["version"] == 1
    assert saved.json()["createdBy"] == f"operator key {operator.id}"
    bad = {"rules": [{"name": "default", "accounts": ["nowhere"]}]}
    refused = await running.client.put(base, headers=admin, json=bad)
    assert refused.status_code == 422 and "nowhere" in refused.json()["error"]["description"]
    malformed = await running.client.put(base, headers=admin, json={"rules": "x"})
    assert malformed.status_code == 422
    history = (await running.client.get(f"{base}/history", headers=admin)).json()["data"]
    assert [v["version"] for v in history] == [1]  # nothing saved by the refusals
    usd = await running.client.post(
        f"{base}/explain", headers=admin, json={"currencyCode": "USD", "amount": 100}
    )
    assert usd.json()["rule"] == "usd"
    assert usd.json()["branches"] == [{"percent": 100, "accounts": ["manual", "sandbox"]}]
    eur = await running.client.post(
        f"{base}/explain", headers=admin, json={"currencyCode": "EUR", "amount": 100}
    )
    assert eur.json()["branches"] == [
        {"percent": 60, "accounts": ["sandbox", "manual"]},
        {"percent": 40, "accounts": ["manual", "sandbox"]},
    ]
    missing = await running.client.get("/admin/routing/no-such-shop", headers=admin)
    assert missing.status_code == 404
    merchant_key = await accounts.create_key(
        db, kind="merchant", merchant=await merchants.find_merchant(db, shop_name), mode="sandbox"
    )
    as_merchant = await running.client.get(base, headers={"X-API-KEY": merchant_key.secret})
    assert as_merchant.status_code == 401
