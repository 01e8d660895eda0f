"""A request's head is bounded on a real `gateway serve`: its size, its number of header fields,
and the time it takes to arrive. Past them the client gets 431 (or 408) in the error envelope and
the connection is closed before more is read."""

from __future__ import annotations

import asyncio
import json
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn

from gateway.http import protocol
from gateway.settings import Settings
from tests.conftest import gateway_env
from tests.integration.test_make_run import free_port

DEADLINE_SECONDS = 60  # bounds on waiting, never an expected speed


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory, settings: Settings) -> Iterator[int]:
    port = free_port()
    log = tmp_path_factory.mktemp("limits") / "gateway.log"
    process = subprocess.Popen(
        [sys.executable, "-m", "gateway", "serve"],
        env=gateway_env(settings, GATEWAY_PORT=str(port), GATEWAY_WORKER_IN_PROCESS="false"),
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + DEADLINE_SECONDS
        while True:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/health/live", timeout=1).is_success:
                    break
            except httpx.TransportError:
                pass
            assert process.poll() is None, log.read_text()
            assert time.monotonic() < deadline, "the gateway did not start"
            time.sleep(0.05)
        yield port
    finally:
        process.terminate()
        process.wait(timeout=30)


def exchange(port: int, head: bytes, *, more: bytes = b"", chunks: int = 0) -> tuple[bytes, int]:
    """Send `head`, then `chunks` times `more` while the server reads; return what it answered
    (until it closed) and how many bytes it took."""
    sent = 0
    with socket.create_connection(("127.0.0.1", port), timeout=DEADLINE_SECONDS) as conn:
        try:
            conn.sendall(head)
            sent += len(head)
            for _ in range(chunks):
                conn.sendall(more)
                sent += len(more)
        except (BrokenPipeError, ConnectionResetError):
            pass  # refused: the server closed its end
        answer = b""
        try:
            while chunk := conn.recv(65536):
                answer += chunk
        except ConnectionResetError:
            pass
    return answer, sent


def envelope(answer: bytes) -> tuple[int, dict[str, Any]]:
    head, _, body = answer.partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    assert b"connection: close" in head.lower()
    return status, json.loads(body)["error"]


def test_headers_too_large_are_refused_with_431(served: int) -> None:
    big = b"GET /payments HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 100_000 + b"\r\n\r\n"
    status, error = envelope(exchange(served, big)[0])
    assert status == 431 and error["errorId"] == "RequestHeaderFieldsTooLarge"
    assert error["diagnosticsId"]


def test_a_head_that_never_ends_is_cut_off_early(served: int) -> None:
    # 8 MB of one header value, never finished: the server stops reading long before.
    start = b"GET /payments HTTP/1.1\r\nHost: x\r\nX-Big: "
    answer, sent = exchange(served, start, more=b"a" * 65536, chunks=128)
    assert envelope(answer)[0] == 431
    assert sent < 8 * 1024 * 1024  # it was refused, not read to the end


def test_too_many_header_fields_are_refused_with_431(served: int) -> None:
    fields = b"".join(b"X-F%d: v\r\n" % n for n in range(150))
    status, error = envelope(exchange(served, b"GET /payments HTTP/1.1\r\nHost: x\r\n" + fields)[0])
    assert status == 431 and "header fields" in error["description"]


def test_an_ordinary_request_with_some_headers_is_served(served: int) -> None:
    fields = {f"X-F{n}": "v" * 100 for n in range(50)}
    assert httpx.get(f"http://127.0.0.1:{served}/health/live", headers=fields).is_success


def test_a_head_sent_too_slowly_gets_408(monkeypatch: pytest.MonkeyPatch) -> None:
    """In this process (its limit shortened): a head trickling in is cut off by its deadline,
    not by the keep-alive timer that every byte resets."""
    monkeypatch.setattr(protocol, "HEAD_SECONDS", 0.3)

    async def app(scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})

    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(
            app, port=port, http=protocol.BoundedHttpToolsProtocol, log_config=None, lifespan="off"
        )
    )
    thread = threading.Thread(target=lambda: asyncio.run(server.serve()), daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + DEADLINE_SECONDS
        while not server.started:
            assert time.monotonic() < deadline
            time.sleep(0.01)
        with socket.create_connection(("127.0.0.1", port), timeout=DEADLINE_SECONDS) as conn:
            conn.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n")
            answer = b""
            while True:
                try:
                    conn.sendall(b"X")  # a byte now and then
                except OSError:
                    break
                time.sleep(0.05)
            while chunk := conn.recv(65536):
                answer += chunk
        status, error = envelope(answer)
        assert status == 408 and error["errorId"] == "RequestTimeout"
        # A prompt request on a new connection is served as ever.
        assert httpx.get(f"http://127.0.0.1:{port}/").text == "ok"
    finally:
        server.should_exit = True
        thread.join(timeout=DEADLINE_SECONDS)


def test_the_protocol_is_the_one_serve_uses() -> None:
    source = Path(__file__).parents[2] / "gateway" / "cli" / "serve.py"
    assert "http=BoundedHttpToolsProtocol" in source.read_text()
