"""Exception handlers every API surface starts from: its errors rendered in the shared envelope,
Starlette's own 404/405 as errors of ours, and a database out of reach as a 503."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence

from starlette.exceptions import HTTPException
from starlette.middleware.exceptions import ExceptionMiddleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Router
from starlette.types import ASGIApp

from gateway.http.errors import ApiError, MethodNotAllowed, RouteNotFound, ServiceUnavailable
from gateway.http.middleware import request_id
from workflows.errors import StorageUnavailable

Handler = Callable[[Request, Exception], Awaitable[Response]]


async def api_error(request: Request, error: Exception) -> Response:
    assert isinstance(error, ApiError)
    return Response(
        error.body(request_id(request.scope)),
        status_code=error.status,
        headers=error.headers,
        media_type="application/json",
    )


async def http_error(request: Request, error: Exception) -> Response:
    assert isinstance(error, HTTPException)
    if error.status_code == 405:
        return await api_error(request, MethodNotAllowed())
    if error.status_code == 404:
        return await api_error(request, RouteNotFound())
    return await api_error(request, ApiError(str(error.detail), status=error.status_code))


async def storage_unavailable(request: Request, error: Exception) -> Response:
    return await api_error(request, ServiceUnavailable())


COMMON: Mapping[type[Exception], Handler] = {
    ApiError: api_error,
    HTTPException: http_error,
    StorageUnavailable: storage_unavailable,
}


def surface(routes: Sequence[BaseRoute], handlers: Mapping[type[Exception], Handler]) -> ASGIApp:
    """One API surface: its routes, and its own handlers for what they raise."""
    return ExceptionMiddleware(
        Router(routes=list(routes)),
        handlers={**COMMON, **handlers},
    )
