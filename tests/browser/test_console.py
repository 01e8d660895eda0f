"""The operator console in Chromium, against a `gateway serve` process: an operator signs in,
finds a payment by its order id, opens its timeline, replays its stuck capture (confirming) and
sees it settle; then the webhooks, processors and routing pages. Every page is screenshotted."""

from __future__ import annotations

import secrets
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest

from gateway.settings import Settings
from tests.conftest import gateway_env
from tests.integration.conftest import wait_for
from tests.integration.test_crash import start_gateway, tokenize
from tests.integration.test_recovery import ATTEMPTS, AUTOMATIC_CALLS, MAX_RECOVERIES
from workflows.credentials import new_master_key

DEADLINE_SECONDS = 120  # bounds on waiting, never an expected speed


class Shop:
    """A merchant's backend on the gateway process, over HTTP."""

    def __init__(self, base: str, key: str) -> None:
        self.base, self.headers = base, {"X-API-KEY": key}

    def pay(self, amount: int, order: str, currency: str = "EUR", **extra: Any) -> dict[str, Any]:
        body = {
            "orderId": order,
            "currencyCode": currency,
            "amount": amount,
            "paymentMethodToken": tokenize(self.base, self.headers),
            **extra,
        }
        answer = httpx.post(f"{self.base}/payments", json=body, headers=self.headers, timeout=60)
        assert answer.status_code == 200, answer.text
        return answer.json()  # type: ignore[no-any-return]

    def post(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        answer = httpx.post(f"{self.base}{path}", json=body, headers=self.headers, timeout=60)
        assert answer.status_code == 200, answer.text
        return answer.json()  # type: ignore[no-any-return]


def cli(env: dict[str, str], *args: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "gateway", *args],
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


@pytest.fixture(scope="module")
def processes() -> Any:
    started: list[subprocess.Popen[bytes]] = []
    yield started
    for process in started:
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


@pytest.fixture(scope="module")
def shop_gateway(
    settings: Settings, processes: Any, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, Any]:
    """A gateway process with its own worker, a merchant with two sandbox accounts (one
    unreachable), routing rules, a webhook endpoint nobody listens on, a few payments, and one
    whose capture is stuck."""
    env = gateway_env(
        settings,
        GATEWAY_SECRET_KEY=new_master_key(),
        GATEWAY_WORKER_IN_PROCESS="true",
        GATEWAY_PROCESSOR_ATTEMPTS=str(ATTEMPTS),
        GATEWAY_WORKFLOW_MAX_RECOVERIES=str(MAX_RECOVERIES),
        GATEWAY_WORKFLOW_RECOVERY_BACKOFF_SECONDS="0",
        GATEWAY_PROCESSOR_BACKOFF_SECONDS="0",
        GATEWAY_WEBHOOK_GIVE_UP_SECONDS="0",
        GATEWAY_CIRCUIT_FAILURES="3",
        GATEWAY_CIRCUIT_COOL_OFF_SECONDS="3600",
    )
    _, base = start_gateway(env, processes, tmp_path_factory.mktemp("gateway") / "gateway.log")
    merchant = f"acme-{secrets.token_hex(3)}"
    cli(env, "merchants", "create", merchant)
    cli(
        env,
        "processors",
        "add",
        "--merchant",
        merchant,
        "--name",
        "acquirer-eu",
        "--type",
        "sandbox",
    )
    cli(
        env,
        "processors", "add", "--merchant", merchant, "--name", "acquirer-us", "--type", "sandbox",
        "--setting", "unreachable=true",
    )  # fmt: skip
    key = cli(env, "keys", "create", "--merchant", merchant, "--mode", "sandbox")
    operator = cli(env, "keys", "create", "--operator")
    admin = {"X-API-KEY": operator}
    rules = {
        "rules": [
            {"name": "usd-first", "when": {"currency": ["USD"]},
             "accounts": ["acquirer-us", "acquirer-eu"]},
            {"name": "default", "accounts": ["acquirer-eu"]},
        ]
    }  # fmt: skip
    assert httpx.put(f"{base}/admin/routing/{merchant}", json=rules, headers=admin).is_success
    hooked = httpx.post(
        f"{base}/admin/webhooks/{merchant}/endpoints",
        json={"url": "http://127.0.0.1:9/orders/hooks", "mode": "sandbox"},
        headers=admin,
    )
    assert hooked.status_code == 201, hooked.text

    shop = Shop(base, key)
    for n, (amount, currency) in enumerate(
        [(4200, "EUR"), (1999, "USD"), (12500, "EUR"), (780, "USD"), (3100, "EUR")]
    ):
        paid = shop.pay(amount, f"order-{1040 + n}", currency, customerId=f"cus_{n % 3}")
        if n % 2 == 0:
            shop.post(f"/payments/{paid['id']}/capture", {})
        if n == 2:
            shop.post(f"/payments/{paid['id']}/refund", {"amount": 2500, "reason": "one returned"})
    declined = httpx.post(
        f"{base}/payments",
        json={
            "orderId": "order-1046",
            "currencyCode": "EUR",
            "amount": 990,
            "paymentMethodToken": tokenize_card(base, shop.headers, "4000000000000002"),
        },
        headers=shop.headers,
    )
    assert declined.json()["status"] == "DECLINED"

    order = f"order-{secrets.randbelow(9000) + 1000}-stuck"
    stuck = shop.pay(
        2500,
        order,
        metadata={"sandbox_fault_on": "capture", "sandbox_timeouts": AUTOMATIC_CALLS},
    )
    unknown = shop.post(f"/payments/{stuck['id']}/capture", {})
    assert unknown["statusReason"]["type"] == "GATEWAY_TIMEOUT"
    assert settings.database_url
    with psycopg.connect(settings.database_url, autocommit=True) as db:

        def capture_run() -> tuple[str, str] | None:
            row = db.execute(
                "SELECT id, state::text FROM workflow_runs "
                "WHERE payment_id = %s AND kind = 'capture'",
                (stuck["id"],),
            ).fetchone()
            return None if row is None else (row[0], row[1])

        # The worker recovers it until its recoveries are used up: then it is stuck.
        wait_for(lambda: (capture_run() or ("", ""))[1] == "stuck", "the capture to be stuck")
        found = capture_run()
        assert found
        run_id = found[0]
    return {
        "base": base,
        "merchant": merchant,
        "operator": operator,
        "order": order,
        "payment": stuck["id"],
        "run": run_id,
    }


def tokenize_card(base: str, headers: dict[str, str], number: str) -> str:
    answer = httpx.post(
        f"{base}/payment-instruments",
        json={"number": number, "expirationMonth": "12", "expirationYear": "2032", "cvv": "321"},
        headers=headers,
    )
    return str(answer.json()["token"])


def test_an_operator_replays_a_stuck_capture_and_sees_the_payment_settle(
    page: Any, shop_gateway: dict[str, Any], screenshots: Path
) -> None:
    from playwright.sync_api import expect

    base, merchant = shop_gateway["base"], shop_gateway["merchant"]
    payment, run = shop_gateway["payment"], shop_gateway["run"]

    def shot(name: str) -> None:
        page.screenshot(path=str(screenshots / f"{name}.png"), full_page=True)

    # Not signed in: the sign-in page.
    page.goto(f"{base}/console/")
    expect(page).to_have_url(f"{base}/console/login?next=%2Fconsole%2F")
    shot("01-login")
    page.fill("#key", shop_gateway["operator"])
    page.click("button:has-text('Sign in')")
    expect(page.locator("h1")).to_have_text("Overview")
    expect(page.locator("ul.cards")).to_contain_text("stuck workflow run")
    shot("02-overview")

    # Find the payment: the merchant's payments, then by its order id.
    page.click("nav >> text=Payments")
    page.select_option("select[name=merchant]", label=merchant)
    page.click("button:has-text('Search')")
    expect(page.locator("table.list tbody tr")).to_have_count(7)
    shot("03-payments")
    page.fill("input[name=order_id]", shop_gateway["order"])
    page.click("button:has-text('Search')")
    rows = page.locator("table.list tbody tr")
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("AUTHORIZED")
    shot("04-payments-by-order")

    # Its timeline: the capture's run is stuck.
    page.click(f"text={payment}")
    expect(page.locator("h1")).to_contain_text(payment)
    expect(page.locator(f"section.run:has-text('{run}') .state")).to_have_text("stuck")
    shot("05-timeline-stuck")

    # Stuck runs: replay it, after the confirmation page.
    page.click("nav >> text=Stuck runs")
    row = page.locator(f"tr:has-text('{run}')")
    expect(row).to_contain_text("stuck")
    shot("06-stuck-runs")
    row.locator("text=Replay…").click()
    expect(page.locator("h1")).to_contain_text(f"Replay run {run}?")
    shot("07-replay-confirm")
    page.click("button:has-text('Replay the run')")
    expect(page.locator("p.notice")).to_contain_text("Replayed.")
    expect(page.locator("dl.facts .state").first).to_have_text("succeeded")
    shot("08-replayed")

    # The payment settles.
    page.click(f"dl.facts >> text={payment}")

    def settled() -> bool:
        page.reload()
        return page.locator("h1 .status").inner_text() == "SETTLED"

    wait_for(settled, "the payment to show SETTLED")
    expect(page.locator(f"section.run:has-text('{run}') .state")).to_have_text("succeeded")
    expect(page.locator("dl.facts")).to_contain_text("2500")
    shot("09-timeline-settled")

    # Webhooks nobody received: delivered again on the operator's word.
    page.click("nav >> text=Webhooks")
    page.select_option("select[name=merchant]", label=merchant)
    page.click("button:has-text('Show')")
    expect(page.locator("h1")).to_have_text("Failed webhook deliveries")
    expect(page.locator("table.list")).to_contain_text("http://127.0.0.1:9/orders/hooks")
    shot("10-deliveries")
    page.locator("button:has-text('Redeliver')").first.click()
    expect(page.locator("p.notice")).to_contain_text("1 delivery put back")

    # Processor accounts: the unreachable one's breaker opened, payments went to the other.
    page.click("nav >> text=Processors")
    us = page.locator("tr:has(td:text-is('acquirer-us'))").filter(has_text=merchant)
    expect(us.locator(".state")).to_have_text("open")
    eu = page.locator("tr:has(td:text-is('acquirer-eu'))").filter(has_text=merchant)
    expect(eu.locator(".state")).to_have_text("closed")
    shot("11-processors")

    # Routing: the rules in force, and which branch a USD payment takes.
    page.click("nav >> text=Routing")
    page.select_option("select[name=merchant]", label=merchant)
    page.click("button:has-text('Show')")
    expect(page.locator("table.list")).to_contain_text("usd-first")
    page.fill("input[name=currency]", "USD")
    page.fill("input[name=amount]", "2500")
    page.click("button:has-text('Explain')")
    expect(page.locator(".explained")).to_contain_text("Rule usd-first")
    expect(page.locator(".explained")).to_contain_text("acquirer-us → acquirer-eu")
    shot("12-routing-explain")

    # Signing out ends the session.
    page.click("button:has-text('Sign out')")
    expect(page.locator("p.notice")).to_have_text("You are signed out.")
    page.goto(f"{base}/console/runs")
    expect(page).to_have_url(f"{base}/console/login?next=%2Fconsole%2Fruns")
    print(f"screenshots in {screenshots}")


def test_pages_read_without_javascript(
    browser: Any, shop_gateway: dict[str, Any], screenshots: Path
) -> None:
    """Reading needs no script (there is none): with JavaScript off, sign in and read a
    payment's timeline."""
    from playwright.sync_api import expect

    context = browser.new_context(java_script_enabled=False)
    page = context.new_page()
    base = shop_gateway["base"]
    page.goto(f"{base}/console/login")
    page.fill("#key", shop_gateway["operator"])
    page.click("button:has-text('Sign in')")
    expect(page.locator("h1")).to_have_text("Overview")
    page.goto(f"{base}/console/payments")
    page.select_option("select[name=merchant]", label=shop_gateway["merchant"])
    page.fill("input[name=order_id]", shop_gateway["order"])
    page.click("button:has-text('Search')")
    page.click(f"text={shop_gateway['payment']}")
    expect(page.locator("h1")).to_contain_text(shop_gateway["payment"])
    expect(page.locator("h2", has_text="Workflow runs")).to_be_visible()
    context.close()
