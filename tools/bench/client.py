"""A minimal HTTP/1.1 keep-alive client for load generation.

The load generator shares the machine with the gateway and its databases, so it must cost as
little CPU per request as possible: a general client (httpx) would measure itself. One
connection sends one request at a time and reads a Content-Length response.
"""

from __future__ import annotations

import asyncio
import contextlib
import time


class HttpConnection:
    def __init__(self, host: str, port: int, api_key: str) -> None:
        self._host, self._port = host, port
        self._fixed = f"Host: {host}:{port}\r\nX-API-KEY: {api_key}\r\n".encode()
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None

    async def open(self) -> None:
        self._reader, self._writer = await asyncio.open_connection(self._host, self._port)

    async def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            with contextlib.suppress(OSError):
                await self._writer.wait_closed()

    async def request(
        self, method: str, path: str, body: bytes = b"", idempotency_key: str | None = None
    ) -> tuple[int, bytes, float]:
        """(status, body, seconds taken); reconnects once if the server closed the connection."""
        if self._writer is None or self._writer.is_closing():
            await self.open()
        assert self._reader is not None and self._writer is not None
        head = [f"{method} {path} HTTP/1.1\r\n".encode(), self._fixed]
        if idempotency_key:
            head.append(f"X-Idempotency-Key: {idempotency_key}\r\n".encode())
        head.append(
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n".encode()
        )
        started = time.perf_counter()
        self._writer.write(b"".join(head) + body)
        status_line = await self._reader.readuntil(b"\r\n")
        length = 0
        while True:
            line = await self._reader.readuntil(b"\r\n")
            if line == b"\r\n":
                break
            name, _, value = line.partition(b":")
            if name.lower() == b"content-length":
                length = int(value)
        payload = await self._reader.readexactly(length) if length else b""
        return int(status_line.split(b" ", 2)[1]), payload, time.perf_counter() - started
