"""The operator console, mounted at /console: server-rendered pages for operators.

Signed in with an operator key (signin.py; the session lives in Redis, session.py), an operator
searches payments with Primer's filters, reads a payment's timeline (transactions, events,
workflow runs with their history, webhook deliveries), replays or resolves stuck runs, delivers
dead webhooks again, watches processor accounts' circuit breakers and explains routing rules.
Pages read and act through the same domain functions as the operator API (pages.py,
operations.py); nothing here is a second copy of the domain's logic.

Every page works without JavaScript, and there is none: confirmations are pages of their own.
Answers carry a Content-Security-Policy that allows only the console's own stylesheet, refuse
to be framed, send no Referer, and (the gateway's middleware) `Cache-Control: no-store`.
"""

from __future__ import annotations

from pathlib import Path

from starlette.exceptions import HTTPException
from starlette.middleware.exceptions import ExceptionMiddleware
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Mount, Route, Router
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gateway.console import operations, pages, signin
from gateway.console.errors import DatabaseUnavailable, NotFound, PageError
from gateway.console.render import page
from gateway.http.errors import ApiError
from gateway.logging import get_logger
from workflows.errors import StorageUnavailable

log = get_logger(__name__)

SECURITY_HEADERS = [
    (b"content-security-policy", b"default-src 'self'; frame-ancestors 'none'; form-action 'self'"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
    (b"x-content-type-options", b"nosniff"),
]


async def to_console(request: Request) -> Response:
    """`/console` as typed: its pages are under `/console/`."""
    headers = {name.decode(): value.decode() for name, value in SECURITY_HEADERS}
    return RedirectResponse("/console/", status_code=308, headers=headers)


ROUTES = [
    Route("/", pages.overview, methods=["GET"]),
    Route("/login", signin.login_form, methods=["GET"]),
    Route("/login", signin.login, methods=["POST"]),
    Route("/logout", signin.logout, methods=["POST"]),
    Route("/payments", pages.payments, methods=["GET"]),
    Route("/payments/{merchant}/{payment}", pages.timeline, methods=["GET"]),
    Route("/runs", operations.runs, methods=["GET"]),
    Route("/runs/{id}", operations.run, methods=["GET"]),
    Route("/runs/{id}/{action}", operations.confirm, methods=["GET"]),
    Route("/runs/{id}/{action}", operations.act, methods=["POST"]),
    Route("/deliveries", operations.deliveries, methods=["GET"]),
    Route("/deliveries/redeliver", operations.redeliver, methods=["POST"]),
    Route("/processors", operations.processors, methods=["GET"]),
    Route("/routing", operations.rules, methods=["GET"]),
    Mount("/static", app=StaticFiles(directory=Path(__file__).with_name("static"))),
]


async def _page_error(request: Request, error: Exception) -> Response:
    assert isinstance(error, PageError)
    return page(request, "error.html", status=error.status, error=error)


async def _http_error(request: Request, error: Exception) -> Response:
    assert isinstance(error, HTTPException)
    if error.status_code == 404:
        return await _page_error(request, NotFound())
    title = "Not allowed" if error.status_code == 405 else "Error"  # e.g. 405 from the router
    return await _page_error(
        request, PageError(str(error.detail), status=error.status_code, title=title)
    )


async def _api_error(request: Request, error: Exception) -> Response:
    """What the gateway's edge refuses on the way (a body past its limit, read as it streams)."""
    assert isinstance(error, ApiError)
    return await _page_error(request, PageError(error.description, status=error.status))


async def _storage_unavailable(request: Request, error: Exception) -> Response:
    return await _page_error(request, DatabaseUnavailable())


async def _unexpected(request: Request, error: Exception) -> Response:
    """An HTML 500 that names the request's id (also in the log line with the traceback), and
    nothing of what went wrong."""
    log.exception("console_error", path=request.url.path, exc_info=error)
    failed = PageError(
        "Something went wrong on the gateway's side. Quote the diagnostics id below when "
        "reporting it.",
        status=500,
        title="Internal error",
    )
    return await _page_error(request, failed)


class _SecurityHeaders:
    """Adds the console's security headers to every answer of the mount."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), *SECURITY_HEADERS]
            await send(message)

        await self.app(scope, receive, send_with_headers)


def app() -> ASGIApp:
    """The console's app, for `Mount("/console", ...)`."""
    router = Router(routes=ROUTES)
    handled = ExceptionMiddleware(
        router,
        handlers={
            PageError: _page_error,
            HTTPException: _http_error,
            StorageUnavailable: _storage_unavailable,
            ApiError: _api_error,
            Exception: _unexpected,
        },
    )
    return _SecurityHeaders(handled)
