"""JSON bodies in, decoded by msgspec into a surface's Struct; anything hostile is a 400 in the
surface's validation shape, never a 500."""

from __future__ import annotations

from typing import Any, TypeVar

import msgspec
from starlette.requests import Request

from gateway.http.errors import validation_error

T = TypeVar("T")
_decoders: dict[type[Any], msgspec.json.Decoder[Any]] = {}


async def read_body(request: Request, model: type[T]) -> T:
    decoder = _decoders.get(model)
    if decoder is None:
        decoder = _decoders[model] = msgspec.json.Decoder(model)
    raw = await request.body()
    if b"\\u0000" in raw:
        # PostgreSQL text cannot hold NUL: refuse it here rather than fail there.
        raise validation_error(model.__name__, "Strings must not contain NUL (\\u0000)")
    try:
        return decoder.decode(raw or b"{}")  # type: ignore[no-any-return]
    except msgspec.DecodeError as error:
        raise validation_error(model.__name__, str(error)) from None
    except UnicodeDecodeError:
        raise validation_error(model.__name__, "The body is not valid UTF-8") from None
    except RecursionError:
        raise validation_error(model.__name__, "The body is nested too deeply") from None
