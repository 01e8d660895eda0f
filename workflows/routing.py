"""Which processor a new payment goes to: the first rule that chooses one.

A rule reads the payment being created and the merchant's routing settings and returns a
`Route` (a processor kind and, for kinds that need one, the merchant's account) or None to let
the next rule choose. Today's one rule is the merchant's configured processor; a new rule is a
function here (or a module of its own) and one entry in `RULES`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from workflows.commands import CreatePayment


@dataclass(frozen=True)
class Route:
    kind: str  # processors.registry
    account: str | None  # None: the built-in processor of that kind


@dataclass(frozen=True)
class MerchantRouting:
    """A merchant's routing settings, as stored on the merchant."""

    default: Route
    capture_on_create: bool


Rule = Callable[["CreatePayment", MerchantRouting], Route | None]


def merchant_default(command: CreatePayment, routing: MerchantRouting) -> Route | None:
    return routing.default


RULES: tuple[Rule, ...] = (merchant_default,)


def choose(command: CreatePayment, routing: MerchantRouting) -> Route:
    for rule in RULES:
        route = rule(command, routing)
        if route is not None:
            return route
    return routing.default
