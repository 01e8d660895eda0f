"""Every kind of processor the gateway can route to, by name: the one place that lists them.

A kind says how to build its connector from an account's credentials (sealed at rest) and
settings (in clear), and whether its payments take the processor's own tokens. Adding a processor
is a new package under `processors/` plus one line in `KINDS`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import msgspec

from processors import manual, sandbox, stripe
from processors.base import OwnTokens, Processor, Resources
from processors.errors import Misconfigured


@dataclass(frozen=True)
class Kind:
    name: str  # as stored and typed by operators, e.g. "stripe"
    display_name: str  # as merchants see it on a payment, e.g. "STRIPE"
    build: Callable[[Resources, Any, Any], Processor]  # (resources, credentials, settings)
    # Every merchant can route to it without an account (built from no credentials or settings).
    builtin: bool = False
    # None: a merchant cannot add accounts of the kind.
    credentials: type[msgspec.Struct] | None = None
    settings: type[msgspec.Struct] | None = None
    own_tokens: OwnTokens | None = None
    # Refuses (Misconfigured) credentials and settings that must not go together.
    checks: Callable[[Any, Any], None] | None = None

    @property
    def has_accounts(self) -> bool:
        return self.credentials is not None

    @property
    def secret(self) -> bool:
        """Whether its accounts' credentials hold anything (a secret to be given)."""
        return bool(self.credentials and self.credentials.__struct_fields__)

    def open_credentials(self, plain: str) -> msgspec.Struct:
        """The credentials an account keeps sealed: JSON of `credentials` (accounts added before
        migration 0006 sealed a bare secret, the only field of their kind's credentials)."""
        assert self.credentials is not None
        try:
            return msgspec.json.decode(plain, type=self.credentials)
        except msgspec.DecodeError:
            fields = self.credentials.__struct_fields__
            required = fields[: len(fields) - len(self.credentials.__struct_defaults__)]
            if len(required) != 1 or plain.startswith("{"):
                raise Misconfigured(f"unreadable {self.name} credentials") from None
            return self.credentials(**{required[0]: plain})

    def check(self, credentials: Any, settings: Any) -> None:
        if self.checks is not None:
            self.checks(credentials, settings)

    def read_settings(self, raw: dict[str, Any] | None) -> msgspec.Struct | None:
        if self.settings is None:
            return None
        try:
            # strict=False: settings typed on a command line arrive as text ("true", "8080").
            return msgspec.convert(raw or {}, self.settings, strict=False)
        except msgspec.ValidationError as error:
            raise Misconfigured(f"{self.name} settings: {error}") from None


KINDS: dict[str, Kind] = {
    kind.name: kind
    for kind in (
        Kind(
            "sandbox",
            "SANDBOX",
            sandbox.build,
            builtin=True,
            credentials=sandbox.Credentials,
            settings=sandbox.Settings,
        ),
        Kind("manual", "MANUAL", manual.build, builtin=True),
        Kind(
            "stripe",
            "STRIPE",
            stripe.build,
            credentials=stripe.Credentials,
            settings=stripe.Settings,
            own_tokens=stripe.OWN_TOKENS,
            checks=stripe.check,
        ),
    )
}
BUILTIN = tuple(name for name, kind in KINDS.items() if kind.builtin)


def kind(name: str) -> Kind:
    found = KINDS.get(name)
    if found is None:
        raise Misconfigured(f"unknown processor kind {name!r} (known: {', '.join(KINDS)})")
    return found


def display_name(name: str) -> str:
    """A kind's name as merchants see it; an unknown one (a kind since removed) as stored."""
    found = KINDS.get(name)
    return found.display_name if found else name.upper()
