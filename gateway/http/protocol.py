"""The HTTP/1.1 connection, bounded: uvicorn's httptools protocol with limits on a request's head.

httptools sets no limit of its own: a client could send megabytes of headers (one huge value is
buffered whole before any callback sees it), thousands of header fields, or a head one byte at a
time for ever, and each connection would hold that memory and a slot. Here a head (request line
and headers) may take `MAX_HEAD_BYTES`, `MAX_HEADER_FIELDS` and `HEAD_SECONDS`; past any of them
the connection gets 431 (or 408) in the error envelope and is closed, before more is read.
"""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import structlog
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from gateway.http.errors import ApiError

MAX_HEAD_BYTES = 32 * 1024
MAX_HEADER_FIELDS = 100
HEAD_SECONDS = 10.0

log = structlog.get_logger("gateway.http")


class HeadersTooLarge(ApiError):
    """The request's headers are too large or too many."""

    status = 431
    error_id = "RequestHeaderFieldsTooLarge"
    recovery = f"Send at most {MAX_HEADER_FIELDS} header fields and {MAX_HEAD_BYTES} bytes of them."


class HeadersTooSlow(ApiError):
    """The request's headers did not arrive in time."""

    status = 408
    error_id = "RequestTimeout"
    recovery = f"Send a request's headers within {HEAD_SECONDS:g} seconds."


class _Refused(Exception):
    """Stops the parser mid-feed (httptools re-raises it as a parser error, which uvicorn
    answers with a 400 unless the connection was refused already)."""


class BoundedHttpToolsProtocol(HttpToolsProtocol):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._in_head = True  # waiting for (the rest of) a request's head
        self._head_bytes = 0  # received while the head was incomplete
        self._head_size = 0  # of the head's URL and header fields, as parsed
        self._header_fields = 0
        self._head_timer: asyncio.TimerHandle | None = None
        self._refused = False

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._await_head()

    def connection_lost(self, exc: Exception | None) -> None:
        self._stop_head_timer()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._refused:
            return
        if self._in_head:
            self._head_bytes += len(data)
        super().data_received(data)
        if self._in_head and self._head_bytes > MAX_HEAD_BYTES and not self._refused:
            self._refuse(HeadersTooLarge(f"The request's headers are over {MAX_HEAD_BYTES} bytes."))

    def on_url(self, url: bytes) -> None:
        self._head_size += len(url)
        super().on_url(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        self._header_fields += 1
        self._head_size += len(name) + len(value) + 4
        if self._header_fields > MAX_HEADER_FIELDS:
            self._refuse(
                HeadersTooLarge(f"The request has over {MAX_HEADER_FIELDS} header fields.")
            )
            raise _Refused  # stops the parser
        super().on_header(name, value)

    def on_headers_complete(self) -> None:
        self._in_head = False
        self._stop_head_timer()
        if self._head_size > MAX_HEAD_BYTES:  # the whole head arrived at once
            self._refuse(HeadersTooLarge(f"The request's headers are over {MAX_HEAD_BYTES} bytes."))
            raise _Refused
        super().on_headers_complete()

    def send_400_response(self, msg: str) -> None:
        if not self._refused:  # the parser stopped by a refusal: it was answered
            super().send_400_response(msg)

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if not self.transport.is_closing():
            self._await_head()

    # ---------------------------------------------------------------- the head's budget

    def _await_head(self) -> None:
        self._in_head = True
        self._head_bytes = 0
        self._head_size = 0
        self._header_fields = 0
        self._stop_head_timer()
        self._head_timer = self.loop.call_later(HEAD_SECONDS, self._head_timed_out)

    def _stop_head_timer(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _head_timed_out(self) -> None:
        self._head_timer = None
        if not self._in_head or self.transport.is_closing():
            return
        if self._head_bytes == 0:
            self.transport.close()  # an idle connection: nothing to answer
            return
        self._refuse(HeadersTooSlow(f"The request's headers took over {HEAD_SECONDS:g} s."))

    def _refuse(self, error: ApiError) -> None:
        self._refused = True
        self._stop_head_timer()
        diagnostics_id = uuid.uuid4().hex
        body = error.body(diagnostics_id)
        log.warning(
            "request_head_refused",
            status=error.status,
            reason=error.description,
            client=self.client[0] if self.client else None,
            diagnostics_id=diagnostics_id,
        )
        reason = {431: b"Request Header Fields Too Large", 408: b"Request Timeout"}[error.status]
        self.transport.write(
            b"HTTP/1.1 %d %s\r\ncontent-type: application/json\r\ncontent-length: %d\r\n"
            b"x-request-id: %s\r\nconnection: close\r\n\r\n"
            % (error.status, reason, len(body), diagnostics_id.encode())
            + body
        )
        self.transport.close()
