"""Settings: every `GATEWAY_*` environment variable, parsed once into one typed object.

A bad value stops start-up with one line naming the variable (exit code 2, see `cli`).
"""

from __future__ import annotations

import difflib
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Literal
from urllib.parse import urlsplit, urlunsplit

import msgspec
from msgspec import Meta

from gateway import GatewayError
from workflows.credentials import valid_master_key

PREFIX = "GATEWAY_"


class InvalidSetting(GatewayError):
    """A GATEWAY_* environment variable has a value the gateway cannot use."""

    def __init__(self, variable: str, problem: str) -> None:
        super().__init__(f"{variable}: {problem}")
        self.variable = variable


class Settings(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=False):
    host: str = "127.0.0.1"
    port: Annotated[int, Meta(ge=0, le=65535)] = 8080
    data_dir: str = ".gateway"
    # Unset: embedded PostgreSQL / Redis under data_dir, started on demand.
    database_url: str | None = None
    redis_url: str | None = None
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    # JSON lines (for collectors), or structlog's console renderer for a person; "auto" is the
    # console renderer when stderr is a terminal.
    log_format: Literal["auto", "json", "console"] = "auto"
    # API keys that authenticated are kept this long in each process (0: read every time); a
    # revocation drops them at once while Redis is up (see gateway/keycache.py).
    key_cache_seconds: Annotated[float, Meta(ge=0, le=60)] = 5.0
    # OpenTelemetry traces (the `traces` extra): exported over OTLP/HTTP, printed, or none.
    traces: Literal["off", "otlp", "console"] = "off"
    # Gateway processes `gateway serve` runs on the port (uvicorn workers).
    processes: Annotated[int, Meta(ge=1, le=64)] = 1
    db_pool_min: Annotated[int, Meta(ge=1, le=200)] = 2
    db_pool_max: Annotated[int, Meta(ge=1, le=500)] = 20
    # Once the database has been seen failing: how long a request waits for a connection (and a
    # new connection to be made) before its answer is 503.
    db_checkout_timeout_seconds: Annotated[float, Meta(gt=0, le=60)] = 3.0
    idempotency_ttl_seconds: Annotated[int, Meta(ge=60, le=30 * 86400)] = 86400
    # How long a request may hold an idempotency key before a retry may take it over
    # (a process that died mid-request must not burn the key forever).
    idempotency_lease_seconds: Annotated[int, Meta(ge=1, le=3600)] = 60
    redis_timeout_seconds: Annotated[float, Meta(gt=0, le=30)] = 0.5
    # Requests from one address whose key fails authentication, per minute, before the address
    # is refused (429) for the rest of the minute without a database lookup.
    auth_failures_per_minute: Annotated[int, Meta(ge=1, le=1_000_000)] = 60
    # Requests one API key may make in a minute (every gateway process together).
    requests_per_key_per_minute: Annotated[int, Meta(ge=1, le=100_000_000)] = 120_000
    max_body_bytes: Annotated[int, Meta(ge=1024, le=10 * 1024 * 1024)] = 64 * 1024
    # The workflow engine: processor calls per attempt, how long runs are leased, how recovery
    # backs off and when a run is declared stuck.
    processor_attempts: Annotated[int, Meta(ge=1, le=20)] = 3
    processor_max_seconds: Annotated[float, Meta(gt=0, le=600)] = 30.0
    processor_backoff_seconds: Annotated[float, Meta(ge=0, le=60)] = 0.05
    workflow_lease_seconds: Annotated[int, Meta(ge=1, le=3600)] = 30
    workflow_recovery_backoff_seconds: Annotated[int, Meta(ge=0, le=86400)] = 5
    workflow_max_recoveries: Annotated[int, Meta(ge=0, le=1000)] = 5
    settlement_poll_seconds: Annotated[int, Meta(ge=0, le=86400)] = 5
    # Each processor account's circuit breaker: this many failed calls within the window open
    # it; new payments then pass over the account for the cool-off, then one probe is let through.
    circuit_failures: Annotated[int, Meta(ge=1, le=100_000)] = 5
    circuit_window_seconds: Annotated[float, Meta(gt=0, le=86400)] = 30.0
    circuit_cool_off_seconds: Annotated[float, Meta(gt=0, le=86400)] = 30.0
    # ...and only if the failures are at least this share of the account's calls in the window.
    circuit_failure_rate: Annotated[float, Meta(gt=0, le=1)] = 0.5
    # How long a client session's token may be used (Primer: a day).
    client_session_ttl_seconds: Annotated[int, Meta(ge=60, le=30 * 86400)] = 86400
    # Webhooks out: each attempt's timeout, and the retry schedule (the first retry after
    # `webhook_retry_base_seconds`, doubling up to `webhook_retry_max_seconds`, jittered), until
    # `webhook_give_up_seconds` after the first attempt (then dead-lettered).
    webhook_timeout_seconds: Annotated[float, Meta(gt=0, le=60)] = 10.0
    webhook_retry_base_seconds: Annotated[float, Meta(ge=0, le=86400)] = 30.0
    webhook_retry_max_seconds: Annotated[float, Meta(ge=0, le=86400)] = 3600.0
    webhook_give_up_seconds: Annotated[float, Meta(ge=0, le=30 * 86400)] = 86400.0
    # Master key (Fernet) that encrypts processor secrets at rest. Never logged.
    secret_key: str | None = None
    # Older master keys, comma-separated: still read, until `gateway secret-key rotate` has
    # re-sealed their secrets under GATEWAY_SECRET_KEY.
    secret_key_previous: str | None = None
    # Run the recovery worker inside the gateway process. Unset: yes in embedded mode, no with
    # real servers (run `gateway worker` processes instead).
    worker_in_process: bool | None = None

    @property
    def embedded(self) -> bool:
        return self.database_url is None or self.redis_url is None

    @property
    def runs_worker(self) -> bool:
        return self.embedded if self.worker_in_process is None else self.worker_in_process

    @property
    def data_path(self) -> Path:
        return Path(self.data_dir).expanduser().resolve()


_FIELDS = {name.upper(): name for name in Settings.__struct_fields__}
VARIABLES = tuple(PREFIX + name for name in _FIELDS)
# What each URL may be: (the schemes it takes, what to say when it is something else).
_URL_SCHEMES = {
    "database_url": (("postgresql://", "postgres://"), "a postgresql:// URL"),
    "redis_url": (("redis://", "rediss://", "unix://"), "a redis://, rediss:// or unix:// URL"),
}


def unknown_variables(environ: Mapping[str, str] | None = None) -> list[tuple[str, str | None]]:
    """GATEWAY_* variables the gateway does not know (a typo?), each with the closest known."""
    environ = os.environ if environ is None else environ
    unknown = sorted(v for v in environ if v.startswith(PREFIX) and v not in VARIABLES)

    def closest(variable: str) -> str | None:
        found = difflib.get_close_matches(variable[len(PREFIX) :], list(_FIELDS), n=1)
        return PREFIX + found[0] if found else None

    return [(variable, closest(variable)) for variable in unknown]


def _shown_url(url: str) -> str:
    """A URL as it may be shown: never its password."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return urlunsplit(parts._replace(netloc=netloc))


def _check_url(field: str, value: str) -> None:
    schemes, expected = _URL_SCHEMES[field]
    if not value.startswith(schemes) or len(value) <= len(value.split("://", 1)[0]) + 3:
        raise InvalidSetting(
            PREFIX + field.upper(), f"expected {expected}, got {_shown_url(value)!r}"
        )


def load(environ: Mapping[str, str] | None = None) -> Settings:
    """Read the GATEWAY_* variables of `environ` (default: the process environment)."""
    environ = os.environ if environ is None else environ
    raw: dict[str, str] = {}
    for variable, value in environ.items():
        if not variable.startswith(PREFIX):
            continue
        field = _FIELDS.get(variable[len(PREFIX) :])
        if field is None:
            continue  # not ours: the CLI warns about it (unknown_variables), nothing else does
        if value == "" and field in (
            "database_url",
            "redis_url",
            "secret_key",
            "secret_key_previous",
        ):
            continue
        if field in _URL_SCHEMES:
            _check_url(field, value)
        raw[field] = value
    secret = raw.get("secret_key")
    if secret is not None and not valid_master_key(secret):
        # The value itself is never echoed.
        raise InvalidSetting(
            "GATEWAY_SECRET_KEY", "must be a Fernet key (gateway secret-key makes one)"
        )
    previous = raw.get("secret_key_previous")
    if previous is not None and not all(valid_master_key(k) for k in _keys(previous)):
        raise InvalidSetting(
            "GATEWAY_SECRET_KEY_PREVIOUS", "must be Fernet keys, separated by commas"
        )
    try:
        return msgspec.convert(raw, Settings, strict=False)
    except msgspec.ValidationError as error:
        message = str(error)
        field = message.rsplit("`$.", 1)[-1].rstrip("`") if "`$." in message else ""
        problem = message.split(" - at ", 1)[0]
        variable = PREFIX + field.upper() if field in Settings.__struct_fields__ else "GATEWAY_*"
        raise InvalidSetting(variable, f"{problem} (got {raw.get(field)!r})") from None


def _keys(listed: str | None) -> tuple[str, ...]:
    return tuple(key.strip() for key in (listed or "").split(",") if key.strip())


def previous_secret_keys(settings: Settings) -> tuple[str, ...]:
    """GATEWAY_SECRET_KEY_PREVIOUS, as a list."""
    return _keys(settings.secret_key_previous)
