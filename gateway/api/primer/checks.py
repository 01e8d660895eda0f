"""What every body of Primer's surface is checked for beyond its schema, and how a request's
Struct becomes the domain's type."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, TypeVar

import msgspec

from gateway.http.errors import validation_error
from processors.cards import holds_card_number

T = TypeVar("T")


def converted(value: msgspec.Struct | None, domain: type[T]) -> T | None:
    """A request's Struct as the domain's own type (both spell their fields the same)."""
    return None if value is None else msgspec.convert(msgspec.to_builtins(value), domain)


def _strings(value: Any, path: str) -> Iterator[tuple[str, str]]:
    """Every string in a decoded body, keys included, with its path."""
    if isinstance(value, str):
        yield path, value
    elif isinstance(value, msgspec.Struct):
        yield from _strings(msgspec.to_builtins(value), path)
    elif isinstance(value, dict):
        for key, item in value.items():
            yield path, str(key)  # a key is reported at its object: the path never echoes it
            if holds_card_number(str(key)):
                continue
            yield from _strings(item, f"{path}.{key}")
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _strings(item, f"{path}[{index}]")


def refuse_card_numbers(model: str, **free_form: Any) -> None:
    """A card number in a free-form field would be stored and returned in clear: refused, so the
    database stays out of card-data scope (cards go to /payment-instruments)."""
    for name, value in free_form.items():
        for path, text in _strings(value, f"$.{name}"):
            if holds_card_number(text):
                raise validation_error(
                    model, f"A card number must not be sent in a free-form field - at `{path}`"
                )


def check_metadata(model: str, metadata: dict[str, Any] | None) -> None:
    if metadata and any(not key for key in metadata):
        raise validation_error(model, "Metadata keys must not be empty - at `$.metadata`")
