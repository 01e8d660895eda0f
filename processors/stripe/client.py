"""Stripe's transport: form-encoded requests, the secret key, the pinned version, the keys that
make a retry safe, and what a failed call means. It logs each call without anything secret: the
method, the path, the status, Stripe's request id and the idempotency key, never a header or a
body."""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any, TypeVar
from urllib.parse import urlencode

import httpx
import msgspec
import structlog

from processors.errors import OutcomeUnknown, TransientError
from processors.stripe import wire

API_BASE = "https://api.stripe.com"
API_VERSION = "2023-08-16"  # the version of the spec the requests are checked against
TIMEOUT = httpx.Timeout(connect=5.0, read=30.0, write=10.0, pool=5.0)

T = TypeVar("T")


def form_encode(params: Mapping[str, Any], prefix: str = "") -> list[tuple[str, str]]:
    """Stripe's nested form encoding: {"a": {"b": 1}, "l": ["x"]} -> a[b]=1&l[0]=x."""
    pairs: list[tuple[str, str]] = []
    for key, value in params.items():
        name = f"{prefix}[{key}]" if prefix else str(key)
        if value is None:
            continue
        if isinstance(value, Mapping):
            pairs += form_encode(value, name)
        elif isinstance(value, list | tuple):
            pairs += form_encode({str(i): item for i, item in enumerate(value)}, name)
        elif isinstance(value, bool):
            pairs.append((name, "true" if value else "false"))
        else:
            pairs.append((name, str(value)))
    return pairs


class Answer(msgspec.Struct, frozen=True):
    status: int
    body: bytes

    def read(self, kind: type[T]) -> T:
        """The body as `kind`. A success that cannot be read is an unknown outcome: Stripe did
        something, and only asking again with the same key tells what."""
        try:
            return msgspec.json.decode(self.body, type=kind)
        except msgspec.DecodeError:
            if self.status < 400:
                raise OutcomeUnknown(f"stripe: {self.status} with an unreadable body") from None
            return kind()

    def error(self) -> wire.Error:
        return self.read(wire.ErrorBody).error


class Client:
    def __init__(self, secret_key: str, *, api_base: str, http: httpx.AsyncClient) -> None:
        self._secret_key = secret_key
        self._base = api_base.rstrip("/")
        self._http = http

    def __repr__(self) -> str:  # never the secret
        return f"stripe.Client(api_base={self._base!r})"

    def _headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self._secret_key}", "Stripe-Version": API_VERSION}

    async def post(self, path: str, params: Mapping[str, Any], idempotency_key: str) -> Answer:
        headers = {
            **self._headers(),
            "Idempotency-Key": idempotency_key,
            "Content-Type": "application/x-www-form-urlencoded",
        }
        body = urlencode(form_encode(params)).encode()
        return await self._send("POST", path, idempotency_key, headers=headers, content=body)

    async def get(self, path: str, params: Mapping[str, Any]) -> Answer:
        return await self._send(
            "GET", path, None, headers=self._headers(), params=form_encode(params)
        )

    async def _send(self, method: str, path: str, key: str | None, **kwargs: Any) -> Answer:
        log = structlog.get_logger("processors.stripe")
        started = time.perf_counter()
        try:
            response = await self._http.request(method, self._base + path, **kwargs)
        except (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout) as error:
            log.warning("stripe_unreachable", method=method, path=path, error=type(error).__name__)
            raise TransientError(f"stripe: {type(error).__name__}") from None  # never sent
        except httpx.TransportError as error:
            # Sent, perhaps received: a read timeout, a reset. Only the key makes a retry safe.
            log.warning("stripe_no_answer", method=method, path=path, error=type(error).__name__)
            raise OutcomeUnknown(f"stripe: {type(error).__name__}") from None
        status = response.status_code
        log.info(
            "stripe_call",
            method=method,
            path=path,
            status=status,
            request_id=response.headers.get("Request-Id"),
            idempotency_key=key,
            ms=round((time.perf_counter() - started) * 1000, 1),
        )
        should_retry = response.headers.get("Stripe-Should-Retry")
        retryable = status in (409, 429) or status >= 500
        if should_retry is not None:
            retryable = should_retry == "true"
        if retryable:
            if status == 429 or (status == 409 and should_retry is None):
                raise TransientError(f"stripe: {status}")
            raise OutcomeUnknown(f"stripe: {status}")
        if status >= 500:
            # Stripe says a retry will not help: the outcome is not known, and not retried now.
            raise OutcomeUnknown(f"stripe: {status}, not to be retried", retryable=False)
        answer = Answer(status, response.content)
        if status == 400 and answer.error().type == "idempotency_error":
            # Stripe holds another request under this key (sent with other parameters): that
            # one may have been done. Not a refusal of ours: its outcome is asked for by status.
            raise OutcomeUnknown("stripe: this key was used by another request", retryable=False)
        return answer
