"""Stripe's events (webhooks in): the `Stripe-Signature` check, and what an event is about.

A signature header is `t=<unix time>,v1=<hex>[,v1=<hex>...]`; each v1 is HMAC-SHA256 of
`"{t}.{body}"` under the endpoint's secret (whsec_...). A signature is accepted when one v1
matches (compared in constant time) and `t` is within the tolerance (5 minutes) of now: an old
event replayed is refused. https://docs.stripe.com/webhooks#verify-manually
"""

from __future__ import annotations

import hashlib
import hmac

import msgspec

from processors.base import Notice
from processors.stripe import wire

TOLERANCE_SECONDS = 300


class BadSignature(Exception):
    """The event is not Stripe's (or not this endpoint's), or too old to be trusted."""


def verify(secret: str, header: str, body: bytes, now: float) -> Notice:
    """The event, if `header` signs `body` under `secret` within the tolerance; else
    BadSignature (nothing of the body is trusted before)."""
    timestamp, presented = None, []
    for part in header.split(","):
        name, _, value = part.strip().partition("=")
        if name == "t" and value.isascii() and value.isdigit():
            timestamp = int(value)
        elif name == "v1" and value:
            presented.append(value)
    if timestamp is None or not presented:
        raise BadSignature("the Stripe-Signature header has no timestamp or no v1 signature")
    expected = hmac.new(
        secret.encode(), str(timestamp).encode() + b"." + body, hashlib.sha256
    ).hexdigest()
    if not any(hmac.compare_digest(expected, signature) for signature in presented):
        raise BadSignature("no signature matches this endpoint's secret")
    if abs(now - timestamp) > TOLERANCE_SECONDS:
        raise BadSignature("the signature's timestamp is outside the 5-minute tolerance")
    try:
        event = msgspec.json.decode(body, type=wire.Event)
    except msgspec.DecodeError as error:
        raise BadSignature(f"a signed body that is not an event: {error}") from None
    about = event.data.object
    return Notice(
        event_id=event.id,
        type=event.type,
        # A charge's event concerns its PaymentIntent (the gateway knows intents, not charges).
        object_id=about.payment_intent if about.object == "charge" else about.id,
        payment_id=about.metadata.get("payment_id"),
        processor_key=about.metadata.get("processor_key"),
    )


def sign(secret: str, body: bytes, timestamp: int) -> str:
    """A Stripe-Signature header for `body` (what Stripe sends; for tests and local tools)."""
    mac = hmac.new(secret.encode(), str(timestamp).encode() + b"." + body, hashlib.sha256)
    return f"t={timestamp},v1={mac.hexdigest()}"
