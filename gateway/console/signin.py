"""Signing in and out of the console, and what every console page does first.

Sign-in takes an operator key through the API's own authentication (`gateway.http.auth`), so a
wrong key counts against the same per-address throttle as a wrong X-API-KEY, and a merchant key
is refused. The key itself is never kept: the session (session.py) records its id only, and each
request checks that the key is still an active operator key.
"""

from __future__ import annotations

import functools
import hmac
import secrets
import urllib.parse
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass

import structlog
from redis.exceptions import RedisError
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from gateway import accounts
from gateway.console import session as sessions
from gateway.console.errors import BadForm, FormRefused, SessionsUnavailable
from gateway.console.render import page
from gateway.http.auth import authenticate
from gateway.http.errors import (
    ApiError,
    TooManyFailedAuthentications,
    TooManyRequests,
    Unauthorized,
)
from gateway.services import Services

HOME = "/console/"
LOGIN = "/console/login"


@dataclass(frozen=True)
class Console:
    """What a page handler gets: the services, the operator's session, and the POSTed form."""

    services: Services
    session: sessions.Session
    form: Mapping[str, str]

    @property
    def by(self) -> str:
        """Who did it, in a run's history: as the operator API names its callers."""
        return f"operator key {self.session.key_id}"


Page = Callable[[Request, Console], Awaitable[Response]]


async def read_form(request: Request) -> dict[str, str]:
    """An urlencoded form's fields (the first value of each); anything else is no form."""
    if not request.headers.get("content-type", "").startswith("application/x-www-form-urlencoded"):
        return {}
    try:
        text = (await request.body()).decode("utf-8")
        pairs = urllib.parse.parse_qsl(text, keep_blank_values=True, max_num_fields=100)
    except (UnicodeDecodeError, ValueError):
        raise BadForm() from None
    fields: dict[str, str] = {}
    for name, value in pairs:
        if "\x00" in value:
            raise BadForm("A form field holds a NUL character.")
        fields.setdefault(name, value)
    return fields


def _same_origin(request: Request) -> bool:
    """Whether a POST comes from the console's own pages, as the browser tells: a form posted
    from another site is refused, the sign-in form's included (it has no session yet to bind a
    token to). Browsers send Sec-Fetch-Site; the Origin is only a fallback, since under the
    console's `Referrer-Policy: no-referrer` a browser may send `Origin: null`."""
    site = request.headers.get("sec-fetch-site")
    if site is not None:
        return site in ("same-origin", "none")
    origin = request.headers.get("origin")
    if origin is None or origin == "null":
        return True
    return origin == f"{request.url.scheme}://{request.headers.get('host', '')}"


def _next_page(value: str | None) -> str:
    """Where to go after signing in: a console page only (never another site)."""
    if value and value.startswith(HOME) and not value.startswith("//") and "\\" not in value:
        return value
    return HOME


# Why the sign-in page is shown, by a code in its address (never text from the address).
MESSAGES = {
    "signed-out": "You are signed out.",
    "revoked": "Your operator key was revoked: you are signed out.",
}


def _to_login(request: Request, reason: str = "") -> RedirectResponse:
    query = {"next": request.url.path} if request.method == "GET" else {}
    if reason:
        query["reason"] = reason
    suffix = f"?{urllib.parse.urlencode(query)}" if query else ""
    return RedirectResponse(LOGIN + suffix, status_code=303)


def operator_page(handler: Page) -> Callable[[Request], Awaitable[Response]]:
    """A page for signed-in operators: no session (or an expired one, or a revoked key) goes to
    the sign-in page; a POST must carry the session's CSRF token (403 otherwise)."""

    @functools.wraps(handler)
    async def endpoint(request: Request) -> Response:
        services: Services = request.app.state.services
        cookie = request.cookies.get(sessions.COOKIE)
        try:
            found = await sessions.find(services.redis, cookie)
        except (RedisError, OSError):
            raise SessionsUnavailable() from None
        if found is None:
            response = _to_login(request)
            if cookie:
                sessions.clear_cookie(response, request)
            return response
        async with services.engine.db.connection() as conn:
            active = await accounts.operator_key_active(conn, found.key_id)
        if not active:
            try:
                await sessions.end(services.redis, found.id)
            except (RedisError, OSError):
                raise SessionsUnavailable() from None
            response = _to_login(request, "revoked")
            sessions.clear_cookie(response, request)
            return response
        form: dict[str, str] = {}
        if request.method == "POST":
            if not _same_origin(request):
                raise FormRefused()
            form = await read_form(request)
            if not found.csrf_matches(form.get("csrf")):
                raise FormRefused()
        structlog.contextvars.bind_contextvars(operator_key_id=found.key_id)
        return await handler(request, Console(services, found, form))

    return endpoint


# The sign-in form's own token (there is no session yet to bind one to): a random value set
# in a cookie of the sign-in page's path and in the form, which must match. Another site can
# neither read the cookie nor set it, so it cannot sign a browser in to its own session.
LOGIN_COOKIE = "gw_console_login"
LOGIN_TOKEN_SECONDS = 15 * 60


def _login_page(
    request: Request,
    *,
    next_page: str,
    message: str,
    error: str,
    status: int = 200,
    token: str | None = None,
) -> Response:
    """The sign-in page, with a new token (or, shown again after a refusal, the one given)."""
    fresh = token is None
    token = token or secrets.token_urlsafe(32)
    answer = page(
        request,
        "login.html",
        status=status,
        next=next_page,
        message=message,
        error=error,
        login_token=token,
    )
    if not fresh:
        return answer
    answer.set_cookie(
        LOGIN_COOKIE,
        token,
        max_age=LOGIN_TOKEN_SECONDS,
        path=LOGIN,
        secure=request.url.scheme == "https",
        httponly=True,
        samesite="strict",
    )
    return answer


def _login_token_matches(request: Request, form: Mapping[str, str]) -> bool:
    cookie, given = request.cookies.get(LOGIN_COOKIE, ""), form.get("login_token", "")
    return bool(cookie) and hmac.compare_digest(cookie.encode(), given.encode())


async def login_form(request: Request) -> Response:
    return _login_page(
        request,
        next_page=_next_page(request.query_params.get("next")),
        message=MESSAGES.get(request.query_params.get("reason", ""), ""),
        error="",
    )


async def login(request: Request) -> Response:
    services: Services = request.app.state.services
    if not _same_origin(request):
        raise FormRefused()
    form = await read_form(request)
    next_page = _next_page(form.get("next"))
    if not _login_token_matches(request, form):
        # Not this browser's sign-in page (another tab's, or one past its time): nobody is
        # signed in; the page is shown again, with a token of its own.
        return _login_page(
            request,
            next_page=next_page,
            message="",
            error="This sign-in page was out of date (another tab, or more than 15 minutes "
            "old): sign in again.",
            status=403,
        )

    def refused(error: str, status: int, headers: Mapping[str, str] | None = None) -> Response:
        answer = _login_page(
            request,
            next_page=next_page,
            message="",
            error=error,
            status=status,
            token=form["login_token"],
        )
        answer.headers.update(headers or {})
        return answer

    try:
        principal = await authenticate(
            request, services, form.get("key", "").strip() or None, header="key"
        )
    except (TooManyFailedAuthentications, TooManyRequests) as error:
        return refused(
            "Too many failed sign-ins from this address: wait a minute and try again.",
            429,
            error.headers,
        )
    except Unauthorized:
        return refused("That key is not valid (unknown, revoked or mistyped).", 401)
    except ApiError as error:
        return refused(error.description, error.status)
    if principal.kind != "operator":
        return refused("Merchant keys cannot sign in: use an operator key.", 403)
    # A session is hours long: its key is read from PostgreSQL, whatever a process kept of it.
    async with services.engine.db.connection() as conn:
        if not await accounts.operator_key_active(conn, principal.key_id):
            return refused("That key is not valid (unknown, revoked or mistyped).", 401)
    try:
        old = request.cookies.get(sessions.COOKIE)
        if old:
            await sessions.end(services.redis, old)
        started = await sessions.start(services.redis, principal.key_id)
    except (RedisError, OSError):
        raise SessionsUnavailable() from None
    response = RedirectResponse(next_page, status_code=303)
    sessions.set_cookie(response, request, started)
    return response


@operator_page
async def logout(request: Request, console: Console) -> Response:
    try:
        await sessions.end(console.services.redis, console.session.id)
    except (RedisError, OSError):
        raise SessionsUnavailable() from None
    response = RedirectResponse(LOGIN + "?reason=signed-out", status_code=303)
    sessions.clear_cookie(response, request)
    return response
