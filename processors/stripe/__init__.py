"""Stripe: an account's credentials and settings, and how to build its connector.

client.py is the transport (and what it logs), wire.py Stripe's answers as typed Structs,
connector.py the mapping of the five verbs onto PaymentIntents and Refunds.
"""

from __future__ import annotations

from typing import Annotated

import msgspec

from processors.base import OwnTokens, Resources
from processors.errors import Misconfigured
from processors.stripe.client import API_BASE, API_VERSION, TIMEOUT, form_encode
from processors.stripe.connector import DECLINES, StripeProcessor

__all__ = [
    "API_BASE",
    "API_VERSION",
    "DECLINES",
    "OWN_TOKENS",
    "TIMEOUT",
    "Credentials",
    "Settings",
    "StripeProcessor",
    "build",
    "check",
    "form_encode",
]

# Stripe payments take Stripe's own PaymentMethod ids, passed through: the gateway never sees
# the card.
OWN_TOKENS = OwnTokens(prefix="pm_", name="a Stripe PaymentMethod id")


class Credentials(msgspec.Struct, frozen=True, kw_only=True, rename="camel", omit_defaults=True):
    # A secret (sk_) or restricted (rk_) key; publishable keys (pk_) cannot move money.
    secret_key: Annotated[str, msgspec.Meta(pattern=r"^(sk|rk)_\S+$")]
    # The signing secret of the account's webhook endpoint at Stripe (its events in).
    webhook_secret: Annotated[str, msgspec.Meta(pattern=r"^whsec_\S+$")] | None = None

    def __repr__(self) -> str:  # never the secrets
        return "Credentials(secret_key=<redacted>, webhook_secret=<redacted>)"


class Settings(msgspec.Struct, frozen=True, kw_only=True, rename="camel"):
    api_base_url: Annotated[str, msgspec.Meta(pattern=r"^https?://\S+$")] = API_BASE
    # Stripe's gated multicapture feature is enabled on this account.
    multicapture: bool = False


def check(credentials: Credentials, settings: Settings) -> None:
    """A live key is sent over https only: never in clear to a mistyped or hostile API base."""
    live = credentials.secret_key.startswith(("sk_live_", "rk_live_"))
    if live and not settings.api_base_url.startswith("https://"):
        raise Misconfigured(
            f"a live Stripe key is only sent over https, not to {settings.api_base_url!r}"
        )


def build(resources: Resources, credentials: Credentials, settings: Settings) -> StripeProcessor:
    return StripeProcessor(
        credentials.secret_key,
        api_base=settings.api_base_url,
        multicapture=settings.multicapture,
        client=resources.http,
    )
