"""Pure ASGI middleware of the edge (not BaseHTTPMiddleware, which cuts contextvars).

`RequestContext` is the outermost layer: it gives every request an id (sent back as X-Request-Id
and used as the error envelope's diagnosticsId), binds it to every log line, writes one line per
request, enforces the body size limit, and turns an unexpected exception into a 500 envelope with
no internals.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Sequence

import structlog
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gateway.http import measure
from gateway.http.errors import ApiError, InternalError, PayloadTooLarge
from gateway.logging import get_logger

log = get_logger("gateway.request")


def request_id(scope: Scope) -> str:
    return scope.get("state", {}).get("request_id", "")  # type: ignore[no-any-return]


async def send_error(
    send: Send, error: ApiError, diagnostics_id: str, scope: Scope | None = None
) -> None:
    """An error answered here, outside any surface: in the shape of the surface the request
    reached (set on the scope's state), else in the default envelope."""
    shape = (scope or {}).get("state", {}).get("error_shape")
    status, body = (
        shape(error, diagnostics_id) if shape else (error.status, error.body(diagnostics_id))
    )
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        (b"x-request-id", diagnostics_id.encode()),
        _NO_STORE,
        *((name.lower().encode(), value.encode()) for name, value in error.headers.items()),
    ]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


_NO_STORE = (b"cache-control", b"no-store")


class RequestContext:
    def __init__(
        self,
        app: ASGIApp,
        *,
        max_body_bytes: int,
        shapes: Sequence[tuple[str, Callable[[ApiError, str], tuple[int, bytes]]]] = (),
    ) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes
        # Error shapes by path prefix, for what is answered before a surface is reached.
        self.shapes = shapes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        rid = uuid.uuid4().hex
        state = scope.setdefault("state", {})
        state["request_id"] = rid
        for prefix, shape in self.shapes:
            if scope["path"].startswith(prefix):
                state["error_shape"] = shape
        structlog.contextvars.clear_contextvars()
        structlog.contextvars.bind_contextvars(request_id=rid)
        started = time.perf_counter()
        status = 500
        response_started = False
        rid_header = (b"x-request-id", rid.encode())
        # Every answer may carry payment data: no cache along the way may keep it.
        extra_headers = [rid_header, _NO_STORE]

        async def send_with_id(message: Message) -> None:
            nonlocal status, response_started
            if message["type"] == "http.response.start":
                response_started = True
                status = message["status"]
                message["headers"] = [*message.get("headers", []), *extra_headers]
            await send(message)

        received = 0

        async def receive_limited() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_body_bytes:
                    raise PayloadTooLarge(_too_large(self.max_body_bytes))
            return message

        try:
            if _content_length(scope) > self.max_body_bytes:
                too_large = PayloadTooLarge(_too_large(self.max_body_bytes))
                await send_error(send, too_large, rid, scope)
                status, response_started = PayloadTooLarge.status, True
            else:
                await self.app(scope, receive_limited, send_with_id)
        except Exception:
            log.exception("unhandled_error", path=scope["path"])
            if not response_started:
                await send_error(send, InternalError(), rid, scope)
            status = 500
        finally:
            route = scope.get("route")
            template = getattr(route, "path", None)
            seconds = time.perf_counter() - started
            log.info(
                "request",
                method=scope["method"],
                route=template or scope["path"],
                status=status,
                duration_ms=round(seconds * 1000, 3),
            )
            # By the route's template (a Mount's prefix first): never the path itself, whose
            # ids would make a label per payment.
            label = scope.get("root_path", "") + template if template else "unmatched"
            measure.observe_request(label, scope["method"], status, seconds)
            structlog.contextvars.clear_contextvars()


def _content_length(scope: Scope) -> int:
    for name, value in scope["headers"]:
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return 0
    return 0


def _too_large(limit: int) -> str:
    return f"The request body is larger than {limit // 1024} KiB."
