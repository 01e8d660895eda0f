"""The HTTP edge: the three Primer headers, the error envelope, request ids, body limits."""

from __future__ import annotations

import asyncio
import json
import secrets
import time
from typing import Any

import httpx
import msgspec
import pytest

from gateway import accounts
from gateway.keycache import publish_revocation
from gateway.settings import Settings
from tests.conftest import run_gateway
from tests.integration.conftest import GatewayFactory, Running, SomeMerchant, new_merchant

CAPTURE = "/probe/pay_1/capture"
BODY = {"amount": 100}


def assert_envelope(response: httpx.Response, status: int, error_id: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    error = response.json()["error"]
    assert error["errorId"] == error_id
    assert error["description"]
    assert error["diagnosticsId"] == response.headers["x-request-id"]
    return error  # type: ignore[no-any-return]


async def test_a_valid_key_with_the_scope_is_served(
    client: httpx.AsyncClient, merchant: SomeMerchant
) -> None:
    response = await client.post(CAPTURE, json=BODY, headers={"X-API-KEY": merchant.key})
    assert response.status_code == 200
    assert response.json() == {"id": "pay_pay_1", "amount": 100}


async def test_a_missing_api_key_is_401(client: httpx.AsyncClient) -> None:
    response = await client.post(CAPTURE, json=BODY)
    assert_envelope(response, 401, "Unauthorized")


@pytest.mark.parametrize(
    "presented",
    [
        "not-a-key",
        "gw_sandbox_aaaaaaaaaaaaaaaa_" + "x" * 43,  # well-formed, unknown id
        "",
    ],
)
async def test_an_unknown_or_malformed_api_key_is_401(
    client: httpx.AsyncClient, presented: str
) -> None:
    response = await client.post(CAPTURE, json=BODY, headers={"X-API-KEY": presented})
    assert_envelope(response, 401, "Unauthorized")


async def test_a_key_with_a_wrong_secret_is_401(
    client: httpx.AsyncClient, merchant: SomeMerchant
) -> None:
    tampered = merchant.key[:-4] + ("AAAA" if not merchant.key.endswith("AAAA") else "BBBB")
    response = await client.post(CAPTURE, json=BODY, headers={"X-API-KEY": tampered})
    assert_envelope(response, 401, "Unauthorized")


async def test_a_key_whose_readable_prefix_was_edited_is_401(
    client: httpx.AsyncClient, merchant: SomeMerchant
) -> None:
    relabelled = merchant.key.replace("gw_sandbox_", "gw_live_", 1)
    response = await client.post(CAPTURE, json=BODY, headers={"X-API-KEY": relabelled})
    assert_envelope(response, 401, "Unauthorized")


async def test_a_revoked_key_is_refused_at_once(
    running: Running, merchant: SomeMerchant, db: Any
) -> None:
    """As `gateway keys revoke` does it: the revocation, then its message to every process
    (test_key_cache.py has the cases where the message cannot be sent)."""
    client = running.client
    assert (
        await client.post(CAPTURE, json=BODY, headers={"X-API-KEY": merchant.key})
    ).status_code == 200
    key_id = accounts.parse_key(merchant.key)[1]  # type: ignore[index]
    await accounts.revoke_key(db, key_id)
    assert await publish_revocation(running.services.redis, key_id)
    deadline = time.monotonic() + 20
    while True:
        response = await client.post(CAPTURE, json=BODY, headers={"X-API-KEY": merchant.key})
        if response.status_code != 200 or time.monotonic() > deadline:
            break
        await asyncio.sleep(0.02)  # the message is on its way through Redis
    assert_envelope(response, 401, "Unauthorized")


async def test_a_key_without_the_endpoint_scope_is_403(client: httpx.AsyncClient, db: Any) -> None:
    reader = await new_merchant(db, scopes=("transactions:retrieve",))
    response = await client.post(CAPTURE, json=BODY, headers={"X-API-KEY": reader.key})
    error = assert_envelope(response, 403, "Forbidden")
    assert "transactions:capture" in error["description"]


async def test_an_operator_key_is_not_valid_on_merchant_endpoints(
    client: httpx.AsyncClient, db: Any
) -> None:
    operator = await accounts.create_key(db, kind="operator")
    response = await client.post(CAPTURE, json=BODY, headers={"X-API-KEY": operator.secret})
    assert_envelope(response, 401, "Unauthorized")


async def test_a_merchant_key_is_not_valid_on_operator_endpoints(
    client: httpx.AsyncClient, merchant: SomeMerchant
) -> None:
    response = await client.get("/admin/probe", headers={"X-API-KEY": merchant.key})
    assert_envelope(response, 401, "Unauthorized")


async def test_an_operator_key_is_valid_on_operator_endpoints(
    client: httpx.AsyncClient, db: Any
) -> None:
    operator = await accounts.create_key(db, kind="operator")
    response = await client.get("/admin/probe", headers={"X-API-KEY": operator.secret})
    assert response.status_code == 200
    assert response.json() == {"operatorKeyId": operator.id}


@pytest.mark.parametrize("headers", [{}, {"X-API-VERSION": "2.4"}])
async def test_api_version_2_4_or_none_is_served(
    client: httpx.AsyncClient, merchant: SomeMerchant, headers: dict[str, str]
) -> None:
    response = await client.post(CAPTURE, json=BODY, headers={"X-API-KEY": merchant.key, **headers})
    assert response.status_code == 200


@pytest.mark.parametrize("version", ["2.3", "2.1", "3.0", "", "latest", "2.4 "])
async def test_any_other_api_version_is_400_naming_the_supported_ones(
    client: httpx.AsyncClient, merchant: SomeMerchant, version: str
) -> None:
    response = await client.post(
        CAPTURE, json=BODY, headers={"X-API-KEY": merchant.key, "X-API-VERSION": version}
    )
    error = assert_envelope(response, 400, "UnsupportedApiVersion")
    assert "2.4" in error["description"]


@pytest.mark.parametrize("key", ["a", "k" * 255, "order-17:capture#1", "!~"])
async def test_idempotency_keys_of_1_to_255_visible_ascii_characters_are_accepted(
    client: httpx.AsyncClient, merchant: SomeMerchant, key: str
) -> None:
    response = await client.post(
        CAPTURE, json=BODY, headers={"X-API-KEY": merchant.key, "X-Idempotency-Key": key}
    )
    assert response.status_code == 200


@pytest.mark.parametrize(
    "key",
    [b"", b"k" * 256, b"has space", b"tab\there", "caf\u00e9".encode("latin-1"), b"\x7f"],
)
async def test_other_idempotency_keys_are_400(
    client: httpx.AsyncClient, merchant: SomeMerchant, key: bytes, probe: Any
) -> None:
    response = await client.post(
        CAPTURE,
        json=BODY,
        headers=[(b"X-API-KEY", merchant.key.encode()), (b"X-Idempotency-Key", key)],
    )
    assert_envelope(response, 400, "InvalidIdempotencyKey")
    assert probe.executions == 0


async def test_every_response_carries_a_request_id(client: httpx.AsyncClient) -> None:
    ids = set()
    for path in ("/health/live", "/health/ready", "/no/such/route"):
        response = await client.get(path)
        ids.add(response.headers["x-request-id"])
    assert len(ids) == 3


async def test_an_unknown_route_is_404_and_a_wrong_method_405_in_the_envelope(
    client: httpx.AsyncClient,
) -> None:
    # On every surface: Primer's (the root), the operator's and health's.
    for path in ("/nope", "/admin/nope", "/health/nope"):
        assert_envelope(await client.get(path), 404, "NotFound")
    assert_envelope(await client.get(CAPTURE), 405, "MethodNotAllowed")
    assert_envelope(await client.post("/health/live"), 405, "MethodNotAllowed")


async def test_malformed_json_is_422_request_validation_error(
    client: httpx.AsyncClient, merchant: SomeMerchant, probe: Any
) -> None:
    response = await client.post(
        CAPTURE, content=b'{"amount": 1', headers={"X-API-KEY": merchant.key}
    )
    error = assert_envelope(response, 422, "RequestValidationError")
    assert error["validationErrors"][0]["model"] == "ProbeBody"
    assert probe.executions == 0


@pytest.mark.parametrize(
    ("body", "path"),
    [
        ({"amount": "100"}, "$.amount"),
        ({"amount": -1}, "$.amount"),
        ({"amount": 1.5}, "$.amount"),
        ({"amount": 1, "surprise": True}, "$"),
        ({}, "$"),
    ],
)
async def test_wrong_types_unknown_fields_and_out_of_range_values_are_422_with_the_path(
    client: httpx.AsyncClient, merchant: SomeMerchant, body: dict[str, Any], path: str
) -> None:
    response = await client.post(CAPTURE, json=body, headers={"X-API-KEY": merchant.key})
    error = assert_envelope(response, 422, "RequestValidationError")
    [model] = error["validationErrors"]
    assert model["model"] == "ProbeBody"
    assert model["errors"][0]["path"] == path
    assert model["errors"][0]["description"]


async def test_a_body_over_64_kib_is_413_in_the_envelope(
    client: httpx.AsyncClient, merchant: SomeMerchant, probe: Any
) -> None:
    big = json.dumps({"amount": 1, "note": "x" * (64 * 1024)}).encode()
    response = await client.post(CAPTURE, content=big, headers={"X-API-KEY": merchant.key})
    assert_envelope(response, 413, "PayloadTooLarge")

    async def chunks() -> Any:  # no Content-Length: counted as it arrives
        for start in range(0, len(big), 8192):
            yield big[start : start + 8192]

    response = await client.post(CAPTURE, content=chunks(), headers={"X-API-KEY": merchant.key})
    assert_envelope(response, 413, "PayloadTooLarge")
    assert probe.executions == 0


async def test_a_body_just_under_the_limit_is_read(
    client: httpx.AsyncClient, merchant: SomeMerchant
) -> None:
    body = json.dumps({"amount": 1, "note": "x" * (60 * 1024)}).encode()
    response = await client.post(CAPTURE, content=body, headers={"X-API-KEY": merchant.key})
    assert response.status_code == 200


async def test_an_unexpected_failure_is_500_with_a_diagnostics_id_and_no_internals(
    client: httpx.AsyncClient, merchant: SomeMerchant
) -> None:
    response = await client.post(CAPTURE, json={"amount": 500}, headers={"X-API-KEY": merchant.key})
    error = assert_envelope(response, 500, "InternalServerError")
    assert len(error.pop("diagnosticsId")) == 32  # random hex: it may hold any digits
    shown = json.dumps(error)
    assert "exploded" not in shown and "Traceback" not in shown and "4111" not in shown


async def test_ready_reports_postgres_and_redis(client: httpx.AsyncClient) -> None:
    response = await client.get("/health/ready")
    assert response.status_code == 200
    assert response.json()["postgres"] == "ok"
    assert response.json()["redis"] == "ok"
    assert (await client.get("/health/live")).json() == {"status": "ok"}


async def test_each_request_writes_one_json_log_line_with_its_context(
    client: httpx.AsyncClient, merchant: SomeMerchant, capsys: pytest.CaptureFixture[str]
) -> None:
    from gateway.logging import configure

    configure("info")
    try:
        capsys.readouterr()
        response = await client.post(CAPTURE, json=BODY, headers={"X-API-KEY": merchant.key})
        lines = [json.loads(line) for line in capsys.readouterr().err.splitlines()]
    finally:
        configure("warning")
    [line] = [line for line in lines if line["event"] == "request"]
    assert line["request_id"] == response.headers["x-request-id"]
    assert line["merchant_id"] == merchant.id
    assert line["route"] == "/probe/{target}/capture"
    assert line["status"] == 200
    assert line["method"] == "POST"
    assert line["duration_ms"] >= 0
    assert merchant.key not in json.dumps(lines)


async def test_once_the_database_fails_requests_get_a_prompt_503_until_it_answers_again(
    gateway: GatewayFactory, settings: Settings, db: Any
) -> None:
    """PostgreSQL goes away under the gateway (its one connection is killed). Requests are
    answered 503 with Retry-After at once, then, while no connection is to be had, after the
    configured checkout time rather than the pool's 30 s; once it answers, all is served."""
    small = msgspec.structs.replace(
        settings, db_pool_min=1, db_pool_max=1, db_checkout_timeout_seconds=0.2
    )
    running = await gateway(small)
    merchant = await new_merchant(db)
    headers = {"X-API-KEY": merchant.key}
    assert (await running.client.get("/payments", headers=headers)).status_code == 200
    async with running.services.pool.connection() as conn:
        backend = conn.info.backend_pid
    await db.execute("SELECT pg_terminate_backend(%s, 5000)", (backend,))  # waits for it
    killed = await running.client.get("/payments", headers=headers)
    assert_envelope(killed, 503, "ServiceUnavailable")
    assert killed.headers["retry-after"] == "2"
    async with running.services.pool.connection():  # no connection to be had
        waited = await running.client.get("/payments", headers=headers)
        error = assert_envelope(waited, 503, "ServiceUnavailable")
        assert "Retry" in error["recoverySuggestion"]
    assert (await running.client.get("/payments", headers=headers)).status_code == 200


async def test_answers_are_never_cached_along_the_way(
    client: httpx.AsyncClient, merchant: SomeMerchant
) -> None:
    served = await client.post(CAPTURE, json=BODY, headers={"X-API-KEY": merchant.key})
    refused = await client.post(CAPTURE, json=BODY)
    for response in (served, refused):
        assert response.headers["cache-control"] == "no-store"


async def test_an_address_whose_keys_keep_failing_is_refused_before_any_lookup(
    gateway: GatewayFactory, settings: Settings, db: Any
) -> None:
    """Made-up keys cost a database lookup each: past the limit an address gets 429 with
    Retry-After for the rest of the minute, while other addresses are served."""
    limited = msgspec.structs.replace(settings, auth_failures_per_minute=3)
    address = f"10.{secrets.randbelow(250)}.{secrets.randbelow(250)}.{secrets.randbelow(250)}"
    attacker = await gateway(limited, client_address=address)
    attacker.services.auth_throttle.now = lambda: 1_800_000_010.0  # within one minute
    made_up = {"X-API-KEY": "gw_sandbox_aaaaaaaaaaaaaaaa_" + "b" * 43}
    for _ in range(3):
        failed = await attacker.client.get("/payments", headers=made_up)
        assert_envelope(failed, 401, "Unauthorized")
    refused = await attacker.client.get("/payments", headers=made_up)
    assert_envelope(refused, 429, "TooManyRequests")
    assert refused.headers["retry-after"] == "50"  # the rest of that minute
    merchant = await new_merchant(db)
    # The same address, even with a good key, waits out the minute...
    waiting = await attacker.client.get("/payments", headers={"X-API-KEY": merchant.key})
    assert waiting.status_code == 429
    # ...and another address is served.
    other = await gateway(limited, client_address="10.254.254.254")
    served = await other.client.get("/payments", headers={"X-API-KEY": merchant.key})
    assert served.status_code == 200


async def test_one_key_past_its_requests_per_minute_is_refused_before_any_lookup(
    gateway: GatewayFactory, settings: Settings, db: Any
) -> None:
    limited = msgspec.structs.replace(settings, requests_per_key_per_minute=3)
    running = await gateway(limited)
    running.services.auth_throttle.now = lambda: 1_800_000_020.0  # within one minute
    busy, other = await new_merchant(db), await new_merchant(db)
    for _ in range(3):
        assert (await running.client.get("/payments", headers={"X-API-KEY": busy.key})).is_success
    refused = await running.client.get("/payments", headers={"X-API-KEY": busy.key})
    assert_envelope(refused, 429, "TooManyRequests")
    assert refused.headers["retry-after"] == "40"
    # Another key, from the same address, is served: the limit is the key's.
    served = await running.client.get("/payments", headers={"X-API-KEY": other.key})
    assert served.status_code == 200


async def test_a_keys_last_use_is_recorded(
    gateway: GatewayFactory, settings: Settings, db: Any
) -> None:
    running = await gateway(settings)
    merchant = await new_merchant(db)
    key_id = accounts.parse_key(merchant.key)[1]  # type: ignore[index]

    async def last_used() -> Any:
        cur = await db.execute("SELECT last_used_at FROM api_keys WHERE id = %s", (key_id,))
        return (await cur.fetchone())[0]

    assert await last_used() is None
    assert (await running.client.get("/payments", headers={"X-API-KEY": merchant.key})).is_success
    assert await last_used() is not None
    listing = run_gateway(settings, "keys", "list")
    line = next(line for line in listing.stdout.splitlines() if line.startswith(key_id))
    assert f"{(await last_used()):%Y-%m-%d %H:%M}" in line
