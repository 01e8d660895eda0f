"""How deliveries are signed, and how a receiver verifies them (the README's recipe).

`X-Signature-Primary` is the base64 of HMAC-SHA256 of the exact body under the endpoint's secret
(Primer's scheme); for a day after the secret is rotated, `X-Signature-Secondary` is the same
under the secret it replaced, so a receiver may switch at its own pace. The body carries the time
it was sent (`date`), and `X-Event-Id` / `X-Event-Sequence` name the event: the same id on every
attempt, a sequence per payment.
"""

from __future__ import annotations

import base64
import hashlib
import hmac

from workflows.notifications import Secrets


def signature(secret: str, body: bytes) -> str:
    return base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest()).decode()


def verify(secret: str, body: bytes, presented: str) -> bool:
    """A receiver's check (constant time): the body was signed with this secret."""
    return hmac.compare_digest(signature(secret, body), presented)


def headers(secrets: Secrets, body: bytes, event_id: str, sequence: int) -> dict[str, str]:
    signed = {
        "Content-Type": "application/json",
        "X-Signature-Primary": signature(secrets.current, body),
        "X-Event-Id": event_id,
        "X-Event-Sequence": str(sequence),
    }
    if secrets.previous is not None:
        signed["X-Signature-Secondary"] = signature(secrets.previous, body)
    return signed
