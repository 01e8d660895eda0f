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


def _multi_valued(model: type[Any]) -> frozenset[str]:
    """The fields of a query Struct that take every value of a repeated parameter (lists)."""
    info = msgspec.inspect.type_info(model)
    assert isinstance(info, msgspec.inspect.StructType)

    def is_list(t: msgspec.inspect.Type) -> bool:
        if isinstance(t, msgspec.inspect.UnionType):
            return any(is_list(option) for option in t.types)
        return isinstance(t, msgspec.inspect.ListType)

    return frozenset(f.encode_name for f in info.fields if is_list(f.type))


_multi: dict[type[Any], frozenset[str]] = {}


def read_query(request: Request, model: type[T]) -> T:
    """The query string decoded into `model` (a Struct whose fields are the parameters, as the
    OpenAPI document shows them): a list field takes every value of a repeated parameter, and
    unknown parameters are ignored, as browsers and proxies add their own."""
    multi = _multi.get(model)
    if multi is None:
        multi = _multi[model] = _multi_valued(model)
    params = request.query_params
    raw: dict[str, Any] = {}
    for name in params:
        value = params.getlist(name) if name in multi else params[name]
        if any("\x00" in v for v in (value if isinstance(value, list) else [value])):
            raise validation_error(model.__name__, f"NUL in a parameter - at `$.{name}`")
        raw[name] = value
    try:
        return msgspec.convert(raw, model, strict=False)
    except msgspec.ValidationError as error:
        raise validation_error(model.__name__, str(error)) from None
