"""The operator console (/console) as an operator's browser sees it, over HTTP, without a
browser: signing in and out, the session cookie and its CSRF tokens, escaping, headers, and each
page on real data. (tests/browser drives the same pages in Chromium.)"""

from __future__ import annotations

import html
import re
import secrets
import time
from typing import Any

import httpx
import markupsafe
import msgspec
import pytest

from gateway import accounts
from gateway.console import session as console_session
from gateway.settings import Settings
from tests.integration.conftest import GatewayFactory, Running, SomeMerchant
from tests.integration.shop import Shop
from tests.integration.test_recovery import AUTOMATIC_CALLS, MAX_RECOVERIES, until_stuck
from workflows import accounts as processor_accounts
from workflows import merchants, notifications, routing
from workflows.credentials import new_master_key

LOGIN = "/console/login"


def csrf_of(page: httpx.Response) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', page.text)
    assert found, page.text
    return found.group(1)


def login_token_of(page: httpx.Response) -> str:
    found = re.search(r'name="login_token" value="([^"]+)"', page.text)
    assert found, page.text
    return found.group(1)


async def sign_in(client: httpx.AsyncClient, key: str, **form: str) -> httpx.Response:
    """As a browser does: the sign-in page (its token, in the form and a cookie), then the form."""
    token = login_token_of(await client.get(LOGIN))
    return await client.post(LOGIN, data={"key": key, "login_token": token, **form})


async def operator_key(db: Any) -> accounts.NewKey:
    return await accounts.create_key(db, kind="operator")


@pytest.fixture
async def console(running: Running, db: Any) -> httpx.AsyncClient:
    """A client signed in to the console with a fresh operator key."""
    signed_in = await sign_in(running.client, (await operator_key(db)).secret)
    assert signed_in.status_code == 303, signed_in.text
    return running.client


@pytest.fixture
async def stuck(gateway: GatewayFactory, settings: Settings, merchant: SomeMerchant) -> Any:
    """A console on a gateway whose capture of a payment went stuck (the sandbox's answers lost
    until the recoveries are used up): the running app, the payment and its stuck run."""
    running = await gateway(
        msgspec.structs.replace(
            settings, processor_attempts=2, workflow_max_recoveries=MAX_RECOVERIES
        )
    )
    shop = Shop(running.client, merchant.key)
    payment = await shop.create(
        1000,
        orderId=f"stuck-{secrets.token_hex(4)}",
        metadata={"sandbox_fault_on": "capture", "sandbox_timeouts": AUTOMATIC_CALLS},
    )
    await shop.capture(payment["id"], amount=1000)
    run = await until_stuck(running, payment["id"], "capture")
    return running, shop, payment, run


# ------------------------------------------------------------------ signing in


async def test_an_operator_signs_in_with_a_cookie_that_holds_no_key(
    running: Running, db: Any
) -> None:
    client = running.client
    form = await client.get(LOGIN)
    assert form.status_code == 200
    assert '<form method="post" action="/console/login"' in form.text
    key = await operator_key(db)
    signed_in = await sign_in(client, key.secret)
    assert signed_in.status_code == 303
    assert signed_in.headers["location"] == "/console/"
    cookie = signed_in.headers["set-cookie"]
    name, _, rest = cookie.partition("=")
    value = rest.split(";", 1)[0]
    assert name == console_session.COOKIE
    flags = [part.strip().lower() for part in cookie.split(";")[1:]]
    assert "httponly" in flags
    assert "samesite=strict" in flags
    assert "path=/console" in flags
    assert f"max-age={8 * 3600}" in flags
    assert "secure" not in flags  # plain http here: see the https test
    assert key.id not in value and key.secret.split("_")[-1] not in value
    assert len(value) >= 40  # 256 random bits
    overview = await client.get("/console/")
    assert overview.status_code == 200
    assert "<h1>Overview</h1>" in overview.text


async def test_over_https_the_cookie_is_secure(running: Running, db: Any) -> None:
    client = httpx.AsyncClient(transport=running.client._transport, base_url="https://gateway.test")
    async with client:
        signed_in = await sign_in(client, (await operator_key(db)).secret)
    assert signed_in.status_code == 303
    assert "secure" in [p.strip().lower() for p in signed_in.headers["set-cookie"].split(";")]


async def test_a_merchant_key_cannot_sign_in(running: Running, merchant: SomeMerchant) -> None:
    refused = await sign_in(running.client, merchant.key)
    assert refused.status_code == 403
    assert "set-cookie" not in refused.headers
    assert "Merchant keys cannot sign in" in refused.text
    assert (await running.client.get("/console/")).status_code == 303


async def test_a_wrong_key_is_refused_and_throttled_as_on_the_api(
    gateway: GatewayFactory, settings: Settings, db: Any
) -> None:
    limited = msgspec.structs.replace(settings, auth_failures_per_minute=3)
    address = f"10.{secrets.randbelow(250)}.{secrets.randbelow(250)}.{secrets.randbelow(250)}"
    running = await gateway(limited, client_address=address)
    running.services.auth_throttle.now = lambda: 1_800_000_010.0  # within one minute
    good = await operator_key(db)
    wrong = good.secret[:-4] + ("aaaa" if not good.secret.endswith("aaaa") else "bbbb")
    for attempt in (wrong, "not a key at all", wrong):
        refused = await sign_in(running.client, attempt)
        assert refused.status_code == 401
        assert "That key is not valid" in refused.text
        assert "set-cookie" not in refused.headers
    throttled = await sign_in(running.client, good.secret)  # even the right key, now
    assert throttled.status_code == 429
    assert throttled.headers["retry-after"] == "50"
    assert "Too many failed sign-ins" in throttled.text
    # One throttle for the console and the API: the address is refused there too.
    api = await running.client.get("/admin/workflows", headers={"X-API-KEY": good.secret})
    assert api.status_code == 429


async def test_a_sign_in_posted_from_another_site_is_refused(running: Running, db: Any) -> None:
    key = (await operator_key(db)).secret
    token = login_token_of(await running.client.get(LOGIN))
    form = {"key": key, "login_token": token}
    for headers in ({"Sec-Fetch-Site": "cross-site"}, {"Origin": "https://evil.example"}):
        refused = await running.client.post(LOGIN, data=form, headers=headers)
        assert refused.status_code == 403, headers
        assert "set-cookie" not in refused.headers
    # A browser that says nothing of where the form came from (no Sec-Fetch-Site, Origin null,
    # as another site's page can arrange): the form's token, which only the sign-in page gave
    # this browser, must match its cookie.
    elsewhere = httpx.AsyncClient(
        transport=running.client._transport, base_url="http://gateway.test"
    )
    async with elsewhere:
        forged = await elsewhere.post(
            LOGIN, data={"key": key, "login_token": token}, headers={"Origin": "null"}
        )
    assert forged.status_code == 403
    assert not forged.cookies.get(console_session.COOKIE)  # no session
    assert "sign in again" in forged.text  # the sign-in page again, with a token of its own
    # So is a sign-in page of another tab: the later page's token is the one kept.
    older = login_token_of(await running.client.get(LOGIN))
    await running.client.get(LOGIN)
    stale = await running.client.post(
        LOGIN, data={"key": key, "login_token": older}, headers={"Sec-Fetch-Site": "same-origin"}
    )
    assert stale.status_code == 403 and "sign in again" in stale.text
    token = login_token_of(stale)
    form = {"key": key, "login_token": token}
    same = await running.client.post(
        LOGIN, data=form, headers={"Sec-Fetch-Site": "same-origin", "Origin": "null"}
    )
    assert same.status_code == 303


async def test_pages_without_a_session_send_to_the_sign_in_page(running: Running) -> None:
    for path in ("/console/", "/console/payments", "/console/runs", "/console/routing"):
        answer = await running.client.get(path)
        assert answer.status_code == 303, path
        assert answer.headers["location"].startswith(f"{LOGIN}?next=")
    # The bare path, as typed, is the console's, not an API's 404.
    bare = await running.client.get("/console")
    assert bare.status_code == 308 and bare.headers["location"] == "/console/"
    # ...and back to the page asked for once signed in.
    answer = await running.client.get("/console/runs?state=failed")
    assert answer.headers["location"] == f"{LOGIN}?next=%2Fconsole%2Fruns"


async def test_signing_in_returns_to_the_page_asked_for_but_never_another_site(
    running: Running, db: Any
) -> None:
    key = (await operator_key(db)).secret
    back = await sign_in(running.client, key, next="/console/runs")
    assert back.headers["location"] == "/console/runs"
    for elsewhere in ("https://evil.example/", "//evil.example/console/", "/admin/workflows"):
        answer = await sign_in(running.client, key, next=elsewhere)
        assert answer.headers["location"] == "/console/", elsewhere


async def test_a_revoked_key_ends_its_session(running: Running, db: Any) -> None:
    key = await operator_key(db)
    await sign_in(running.client, key.secret)
    assert (await running.client.get("/console/runs")).status_code == 200
    await accounts.revoke_key(db, key.id)
    ended = await running.client.get("/console/runs")
    assert ended.status_code == 303
    assert ended.headers["location"].startswith(LOGIN)
    assert "reason=revoked" in ended.headers["location"]
    assert "max-age=0" in ended.headers["set-cookie"].lower()
    login = await running.client.get(ended.headers["location"])
    assert "was revoked" in login.text
    # Signing in again with it is refused.
    assert (await sign_in(running.client, key.secret)).status_code == 401


async def test_an_expired_session_is_refused(
    console: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert (await console.get("/console/")).status_code == 200
    later = time.time() + console_session.MAX_AGE_SECONDS + 1
    monkeypatch.setattr(console_session, "clock", lambda: later)
    expired = await console.get("/console/")
    assert expired.status_code == 303
    assert expired.headers["location"].startswith(LOGIN)


async def test_a_tampered_or_made_up_cookie_is_refused(console: httpx.AsyncClient) -> None:
    value = console.cookies[console_session.COOKIE]
    flipped = value[:-1] + ("A" if value[-1] != "A" else "B")
    for cookie in (flipped, value + "x", secrets.token_urlsafe(32), "", "x" * 4000):
        console.cookies.clear()
        console.cookies.set(console_session.COOKIE, cookie, domain="gateway.test")
        answer = await console.get("/console/")
        assert answer.status_code == 303, cookie
        assert answer.headers["location"].startswith(LOGIN)
    console.cookies.clear()
    console.cookies.set(console_session.COOKIE, value, domain="gateway.test")
    assert (await console.get("/console/")).status_code == 200


async def test_signing_out_ends_the_session_even_for_a_copy_of_the_cookie(
    console: httpx.AsyncClient,
) -> None:
    value = console.cookies[console_session.COOKIE]
    page = await console.get("/console/")
    out = await console.post("/console/logout", data={"csrf": csrf_of(page)})
    assert out.status_code == 303
    assert out.headers["location"] == f"{LOGIN}?reason=signed-out"
    assert "max-age=0" in out.headers["set-cookie"].lower()
    console.cookies.set(console_session.COOKIE, value, domain="gateway.test")
    assert (await console.get("/console/")).status_code == 303


# ------------------------------------------------------------------ forms and CSRF


async def test_a_replay_without_the_sessions_token_is_refused_and_changes_nothing(
    stuck: Any, db: Any
) -> None:
    running, shop, payment, run = stuck
    client = running.client
    await sign_in(client, (await operator_key(db)).secret)
    confirm = await client.get(f"/console/runs/{run.id}/replay")
    assert confirm.status_code == 200
    token = csrf_of(confirm)
    other_session = await httpx.AsyncClient(
        transport=client._transport, base_url="http://gateway.test"
    ).__aenter__()
    await sign_in(other_session, (await operator_key(db)).secret)
    others_token = csrf_of(await other_session.get("/console/"))
    await other_session.aclose()

    for form, headers in (
        ({}, {}),
        ({"csrf": ""}, {}),
        ({"csrf": token[:-1] + ("a" if token[-1] != "a" else "b")}, {}),
        ({"csrf": others_token}, {}),  # another session's
        ({"csrf": token}, {"Origin": "https://evil.example"}),  # another site's form
        ({"csrf": token}, {"Sec-Fetch-Site": "cross-site"}),  # as a browser says it
    ):
        refused = await client.post(f"/console/runs/{run.id}/replay", data=form, headers=headers)
        assert refused.status_code == 403, form
        assert "Nothing was changed" in refused.text
    still = await running.services.reads.run(run.id)
    assert still.state == "stuck"
    assert still.updated_at == run.updated_at
    assert (await shop.get(payment["id"]))["status"] == "AUTHORIZED"

    replayed = await client.post(f"/console/runs/{run.id}/replay", data={"csrf": token})
    assert replayed.status_code == 303
    assert replayed.headers["location"] == f"/console/runs/{run.id}?done=replay"
    shown = await client.get(replayed.headers["location"])
    assert "Replayed." in shown.text and "succeeded" in shown.text
    assert (await running.services.reads.run(run.id)).state == "succeeded"
    assert (await shop.get(payment["id"]))["status"] == "SETTLED"
    _, history = await running.services.reads.run_with_history(run.id)
    replays = [h for h in history if h.event == "replayed"]
    assert len(replays) == 1 and replays[0].detail["by"].startswith("operator key ")
    # Again: the run is finished, the operator is told so.
    again = await client.post(f"/console/runs/{run.id}/replay", data={"csrf": token})
    assert again.status_code == 409
    assert "already succeeded" in html.unescape(again.text)


async def test_a_replay_without_a_session_goes_to_the_sign_in_page_and_changes_nothing(
    stuck: Any,
) -> None:
    running, shop, payment, run = stuck
    answer = await running.client.post(f"/console/runs/{run.id}/replay", data={"csrf": "x"})
    assert answer.status_code == 303
    assert answer.headers["location"] == LOGIN
    assert (await running.services.reads.run(run.id)).state == "stuck"
    assert (await shop.get(payment["id"]))["status"] == "AUTHORIZED"


async def test_a_stuck_run_is_resolved_with_the_operators_word(stuck: Any, db: Any) -> None:
    running, shop, payment, run = stuck
    await sign_in(running.client, (await operator_key(db)).secret)
    confirm = await running.client.get(f"/console/runs/{run.id}/resolve")
    assert "Resolve the run" in confirm.text
    resolved = await running.client.post(
        f"/console/runs/{run.id}/resolve", data={"csrf": csrf_of(confirm), "outcome": "succeeded"}
    )
    assert resolved.status_code == 303
    assert (await running.services.reads.run(run.id)).state.finished
    assert (await shop.get(payment["id"]))["status"] == "SETTLED"


# ------------------------------------------------------------------ what the pages show


async def test_a_hostile_order_id_is_shown_as_text(
    console: httpx.AsyncClient, shop: Shop, merchant: SomeMerchant
) -> None:
    hostile = '<script>alert("x")</script><img src=x onerror=alert(1)>'
    payment = await shop.create(1000, orderId=hostile)
    found = await console.get(
        "/console/payments", params={"merchant": merchant.id, "order_id": hostile}
    )
    assert found.status_code == 200
    timeline = await console.get(f"/console/payments/{merchant.id}/{payment['id']}")
    for page in (found, timeline):
        assert "<script>alert" not in page.text and "<img src=x" not in page.text
        assert str(markupsafe.escape(hostile)) in page.text  # shown, as text
        assert payment["id"] in page.text


async def test_pages_carry_the_security_headers(console: httpx.AsyncClient) -> None:
    for path in ("/console/", LOGIN, "/console/nowhere", "/console/static/console.css"):
        answer = await console.get(path)
        csp = answer.headers["content-security-policy"]
        assert "default-src 'self'" in csp and "frame-ancestors 'none'" in csp, path
        assert answer.headers["x-frame-options"] == "DENY"
        assert answer.headers["referrer-policy"] == "no-referrer"
        assert answer.headers["cache-control"] == "no-store"
    page = await console.get("/console/")
    assert "<script" not in page.text  # nothing the policy would block: there is no script
    assert page.headers["content-type"].startswith("text/html")


async def test_the_payment_search_takes_primers_filters(
    console: httpx.AsyncClient, shop: Shop, merchant: SomeMerchant
) -> None:
    order = f"order-{secrets.token_hex(4)}"
    settled = await shop.create(1500, orderId=order, currency="USD")
    await shop.capture(settled["id"])
    authorized = await shop.create(700, orderId=order)
    search = {"merchant": merchant.id, "order_id": order}
    both = (await console.get("/console/payments", params=search)).text
    assert settled["id"] in both and authorized["id"] in both
    assert "411111…1111" in both and "4111111111111111" not in both
    for extra, shown, hidden in (
        ({"status": "SETTLED"}, settled, authorized),
        ({"currency_code": "eur"}, authorized, settled),
        ({"min_amount": "1000"}, settled, authorized),
        ({"max_amount": "1000"}, authorized, settled),
    ):
        page = (await console.get("/console/payments", params={**search, **extra})).text
        assert shown["id"] in page and hidden["id"] not in page, extra
    none = await console.get("/console/payments", params={**search, "last_4_digits": "0000"})
    assert "No payment of" in none.text
    bad = await console.get("/console/payments", params={**search, "min_amount": "-1"})
    assert bad.status_code == 400 and "min_amount" in bad.text
    choose = await console.get("/console/payments")
    assert "Choose a merchant" in choose.text and settled["id"] not in choose.text


async def test_the_payment_search_pages_through_results(
    console: httpx.AsyncClient, shop: Shop, merchant: SomeMerchant
) -> None:
    from gateway.console import pages

    order = f"many-{secrets.token_hex(4)}"
    made = [(await shop.create(100 + n, orderId=order))["id"] for n in range(pages.PAGE_SIZE + 2)]
    first = await console.get(
        "/console/payments", params={"merchant": merchant.id, "order_id": order}
    )
    shown = set(re.findall(r"pay_[a-z0-9]+", first.text)) & set(made)
    assert len(shown) == pages.PAGE_SIZE
    following = re.search(r'href="(/console/payments\?[^"]*after=[^"]*)">Next page', first.text)
    assert following
    second = await console.get(html.unescape(following.group(1)))
    rest = set(re.findall(r"pay_[a-z0-9]+", second.text)) & set(made)
    assert rest == set(made) - shown
    assert "Next page" not in second.text


async def test_a_payments_timeline_shows_its_transactions_events_runs_and_deliveries(
    gateway: GatewayFactory, settings: Settings, merchant: SomeMerchant, db: Any
) -> None:
    running = await gateway(
        msgspec.structs.replace(settings, secret_key=new_master_key(), webhook_give_up_seconds=0)
    )
    async with running.services.engine.db.connection() as conn:
        await notifications.add_endpoint(
            conn,
            running.services.box,
            merchant_id=merchant.id,
            mode="sandbox",
            url="http://127.0.0.1:9/nothing-listens",
            description="orders",
        )
    shop = Shop(running.client, merchant.key)
    payment = await shop.create(1000, orderId="timeline-1")
    await shop.capture(payment["id"], amount=400, final=False)
    await shop.refund(payment["id"], amount=100)
    for _ in range(5):
        await running.services.webhooks.deliver_due()
    await sign_in(running.client, (await operator_key(db)).secret)

    page = await running.client.get(f"/console/payments/{merchant.id}/{payment['id']}")
    assert page.status_code == 200
    text = page.text
    assert "PARTIALLY_SETTLED" in text
    assert "<dt>Authorized</dt><dd>1000</dd>" in text
    assert "<dt>Captured</dt><dd>400</dd>" in text
    assert "<dt>Refunded</dt><dd>100</dd>" in text
    assert "SALE" in text and "REFUND" in text
    assert "CAPTURE_SUCCEEDED" in text and "AUTHORIZATION_SUCCEEDED" in text
    runs = await running.services.reads.list_runs(payment_id=payment["id"])
    assert {r.kind for r in runs} == {"authorize", "capture", "refund"}
    for run in runs:
        assert run.id in text
    assert "started" in text and "succeeded" in text  # the runs' history
    # Its webhook deliveries, each dead-lettered (nothing listens).
    async with running.services.engine.db.connection() as conn:
        made = await notifications.list_deliveries(conn, payment_id=payment["id"])
    assert len(made) >= 3 and {d.state for d in made} == {"dead"}
    assert text.count('class="state d-dead"') == len(made)

    # The dead deliveries are listed, and delivered again on the operator's word.
    dead = await running.client.get("/console/deliveries", params={"merchant": merchant.id})
    assert payment["id"] in dead.text
    assert "http://127.0.0.1:9/nothing-listens" in dead.text
    event = re.search(r'name="event" value="([0-9a-f-]+)"', dead.text)
    assert event
    again = await running.client.post(
        "/console/deliveries/redeliver",
        data={"csrf": csrf_of(dead), "merchant": merchant.id, "event": event.group(1)},
    )
    assert again.status_code == 303
    told = await running.client.get(again.headers["location"])
    assert "1 delivery put back" in told.text
    async with running.services.engine.db.connection() as conn:
        pending = await notifications.list_deliveries(
            conn, merchant_id=merchant.id, payment_id=payment["id"], state="pending"
        )
    assert [str(d.event_id) for d in pending] == [event.group(1)]


async def test_unknown_payments_and_runs_are_404_pages(
    console: httpx.AsyncClient, merchant: SomeMerchant
) -> None:
    for path in (
        f"/console/payments/{merchant.id}/pay_doesnotexist",
        "/console/payments/mer_nope/pay_nope",
        "/console/payments/x/%00",
        "/console/runs/run_doesnotexist",
        "/console/runs/run_doesnotexist/replay",
        "/console/nowhere",
    ):
        answer = await console.get(path)
        assert answer.status_code == 404, path
        assert answer.headers["content-type"].startswith("text/html")
        assert "Not found" in answer.text


async def test_an_unexpected_error_is_a_500_page_without_internals(
    console: httpx.AsyncClient, running: Running, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def broken(**kwargs: Any) -> Any:
        raise RuntimeError("secret internals: card 4111111111111111")

    monkeypatch.setattr(running.services.reads, "list_runs", broken)
    answer = await console.get("/console/runs")
    assert answer.status_code == 500
    assert answer.headers["content-type"].startswith("text/html")
    assert "secret internals" not in answer.text and "Traceback" not in answer.text
    assert answer.headers["x-request-id"] in answer.text  # the diagnostics id to quote


async def test_the_stuck_runs_page_lists_them_with_a_confirmed_replay(stuck: Any, db: Any) -> None:
    running, _, payment, run = stuck
    await sign_in(running.client, (await operator_key(db)).secret)
    listed = await running.client.get("/console/runs")
    assert "Stuck runs" in listed.text
    assert run.id in listed.text and payment["id"] in listed.text
    assert f'href="/console/runs/{run.id}/replay"' in listed.text
    confirm = await running.client.get(f"/console/runs/{run.id}/replay")
    assert f'action="/console/runs/{run.id}/replay"' in confirm.text
    assert "Replay the run" in confirm.text
    assert (await running.services.reads.run(run.id)).state == "stuck"  # asking changes nothing
    timeline = await running.client.get(f"/console/payments/{run.merchant_id}/{payment['id']}")
    assert "stuck" in timeline.text and "GATEWAY_TIMEOUT" in timeline.text


async def test_the_processors_page_shows_each_accounts_circuit_breaker(
    console: httpx.AsyncClient, running: Running, db: Any
) -> None:
    name = f"acq-{secrets.token_hex(3)}"
    merchant = await merchants.create_merchant(db, f"proc-{secrets.token_hex(4)}")
    await processor_accounts.add_account(
        db,
        running.services.box,
        merchant_id=merchant.id,
        name=name,
        kind="sandbox",
        credentials={},
        settings={},
    )
    for _ in range(running.services.settings.circuit_failures):
        await running.services.engine.circuits.record(merchant.id, name, ok=False)
    page = await console.get("/console/processors")
    assert page.status_code == 200
    row = re.search(rf"<td>{name}</td>.*?</tr>", page.text, re.S)
    assert row and "c-open" in row.group(0), page.text


async def test_the_routing_page_shows_the_rules_and_explains_a_payment(
    console: httpx.AsyncClient, merchant: SomeMerchant, db: Any
) -> None:
    await routing.save_rules(
        db,
        merchant.id,
        {
            "rules": [
                {
                    "name": "big-usd",
                    "when": {"currency": ["USD"], "amount": {"min": 5000}},
                    "accounts": ["manual", "sandbox"],
                },
                {"name": "rest", "accounts": ["sandbox"]},
            ]
        },
        "test",
    )
    shown = await console.get("/console/routing", params={"merchant": merchant.id})
    assert "big-usd" in shown.text and "manual → sandbox" in shown.text
    explained = await console.get(
        "/console/routing",
        params={"merchant": merchant.id, "currency": "USD", "amount": "9000", "explain": "1"},
    )
    assert "Rule <strong>big-usd</strong>" in explained.text
    assert "100% of such payments: manual → sandbox" in explained.text
    small = await console.get(
        "/console/routing",
        params={"merchant": merchant.id, "currency": "USD", "amount": "10", "explain": "1"},
    )
    assert "Rule <strong>rest</strong>" in small.text
    bad = await console.get(
        "/console/routing",
        params={"merchant": merchant.id, "currency": "dollars", "amount": "10", "explain": "1"},
    )
    assert bad.status_code == 400 and "3-letter code" in bad.text


async def test_a_body_past_the_limit_is_a_413_page_however_it_is_sent(running: Running) -> None:
    async def streamed() -> Any:  # no Content-Length: the limit trips while the form is read
        yield b"key=" + b"a" * 70_000

    answer = await running.client.post(
        LOGIN, content=streamed(), headers={"content-type": "application/x-www-form-urlencoded"}
    )
    assert answer.status_code == 413
    assert answer.headers["content-type"].startswith("text/html")
    assert answer.headers["x-frame-options"] == "DENY"


async def test_a_to_date_takes_in_its_own_day(
    console: httpx.AsyncClient, shop: Shop, merchant: SomeMerchant
) -> None:
    payment = await shop.create(1000, orderId=f"o-{secrets.token_hex(3)}")
    today = payment["date"][:10]  # its own day (UTC), whenever the test runs
    found = await console.get(
        "/console/payments", params={"merchant": merchant.id, "from_date": today, "to_date": today}
    )
    assert payment["id"] in found.text
    assert f'name="to_date" value="{today}"' in found.text  # the form shows what was asked


async def test_the_bare_path_carries_the_consoles_headers_too(running: Running) -> None:
    bare = await running.client.get("/console")
    assert bare.status_code == 308
    assert bare.headers["x-frame-options"] == "DENY"
    assert bare.headers["content-security-policy"].startswith("default-src 'self'")


async def test_a_payments_card_is_shown_as_its_first_6_and_last_4_only(
    console: httpx.AsyncClient, shop: Shop, merchant: SomeMerchant
) -> None:
    payment = await shop.create(1000, orderId=f"o-{secrets.token_hex(3)}")
    page = await console.get(f"/console/payments/{merchant.id}/{payment['id']}")
    assert "411111…1111" in page.text
    assert "expires" not in page.text and "12/2031" not in page.text
