"""Processors' events in: `POST /webhooks/stripe/{merchant}/{account}`, one URL per Stripe
account of a merchant (the account's webhook endpoint at Stripe, its signing secret stored
sealed with the account's credentials: `gateway processors set-webhook-secret`).

No API key: the signature is the authentication. A missing, bad or stale signature (or an
account with no webhook secret) is 400 and changes nothing; an event seen before is acknowledged
(200) and ignored; any other is recorded and wakes the runs it concerns (workflows/
processor_events.py), which the worker then resolves by asking the processor.
"""

from __future__ import annotations

import time

import structlog
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import ASGIApp

from gateway.http.errors import ApiError
from gateway.http.handlers import surface
from gateway.http.responses import JSONResponse
from gateway.services import Services
from processors.stripe import events as stripe_events
from workflows.accounts import credentials_of
from workflows.credentials import CredentialError
from workflows.errors import AccountError
from workflows.processor_events import receive

log = structlog.get_logger("gateway.processor_events")


class InvalidSignature(ApiError):
    """The event is not signed by the processor for this endpoint (or too long ago)."""

    status = 400
    error_id = "InvalidSignature"


async def stripe_event(request: Request) -> Response:
    services: Services = request.app.state.services
    merchant_id: str = request.path_params["merchant"]
    account: str = request.path_params["account"]
    header = request.headers.get("Stripe-Signature")
    body = await request.body()
    if not header:
        raise InvalidSignature("No Stripe-Signature header.")
    async with services.engine.db.connection() as conn:
        try:
            kind, credentials = await credentials_of(conn, services.box, merchant_id, account)
        except (AccountError, CredentialError):
            kind, credentials = None, None
        secret = getattr(credentials, "webhook_secret", None) if kind == "stripe" else None
        if secret is None:
            # The same answer as a bad signature: which accounts exist is not told.
            raise InvalidSignature("This endpoint does not take Stripe events.")
        try:
            notice = stripe_events.verify(secret, header, body, time.time())
        except stripe_events.BadSignature as bad:
            log.warning("processor_event_refused", merchant_id=merchant_id, account=account)
            raise InvalidSignature(str(bad)) from None
        received = await receive(conn, merchant_id, account, notice)
    log.info(
        "processor_event",
        merchant_id=merchant_id,
        account=account,
        event_id=notice.event_id,
        type=notice.type,
        duplicate=received.duplicate,
        woken=received.woken,
    )
    return JSONResponse({"received": True, "duplicate": received.duplicate})


def app() -> ASGIApp:
    """Mounted at /webhooks."""
    return surface([Route("/stripe/{merchant}/{account}", stripe_event, methods=["POST"])], {})
