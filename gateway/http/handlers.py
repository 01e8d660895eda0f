"""Exception handlers every API surface starts from: its errors rendered in the shared envelope,
Starlette's own 404/405 as errors of ours, and a database out of reach as a 503."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence

from starlette.exceptions import HTTPException
from starlette.middleware.exceptions import ExceptionMiddleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Router
from starlette.types import ASGIApp, Receive, Scope, Send

from gateway.http.errors import ApiError, MethodNotAllowed, RouteNotFound, ServiceUnavailable
from gateway.http.middleware import request_id
from workflows.errors import StorageUnavailable

Handler = Callable[[Request, Exception], Awaitable[Response]]
# How a surface shapes an error: its status and body, given the error and the request's id.
Shape = Callable[[ApiError, str], tuple[int, bytes]]


def envelope(error: ApiError, diagnostics_id: str) -> tuple[int, bytes]:
    """Primer's error envelope (the default shape)."""
    return error.status, error.body(diagnostics_id)


async def api_error(request: Request, error: Exception) -> Response:
    assert isinstance(error, ApiError)
    shape: Shape = request.scope.get("error_shape", envelope)
    status, body = shape(error, request_id(request.scope))
    return Response(body, status_code=status, headers=error.headers, media_type="application/json")


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


def surface(
    routes: Sequence[BaseRoute],
    handlers: Mapping[type[Exception], Handler],
    shape: Shape = envelope,
) -> ASGIApp:
    """One API surface: its routes, its own handlers for what they raise, and the shape of its
    errors (also used by the outer middleware for what it answers itself: 413, 500)."""
    return _Shaped(
        ExceptionMiddleware(Router(routes=list(routes)), handlers={**COMMON, **handlers}), shape
    )


class _Shaped:
    """A surface's app, which sets the shape of its errors on the request's scope."""

    def __init__(self, app: ASGIApp, shape: Shape) -> None:
        self.app, self.shape = app, shape

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        scope["error_shape"] = self.shape
        state = scope.get("state")
        if isinstance(state, dict):
            state["error_shape"] = self.shape
        await self.app(scope, receive, send)
