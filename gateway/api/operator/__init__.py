"""The operator API, mounted at /admin: operator keys only; workflow runs to inspect,
replay and resolve."""

from __future__ import annotations

from collections.abc import Sequence

from starlette.routing import BaseRoute, Route
from starlette.types import ASGIApp

from gateway.api.operator import runs
from gateway.http.handlers import surface

ROUTES: list[BaseRoute] = [
    Route("/workflows", runs.list_runs, methods=["GET"]),
    Route("/workflows/{id}", runs.show_run, methods=["GET"]),
    Route("/workflows/{id}/replay", runs.replay_run, methods=["POST"]),
    Route("/workflows/{id}/resolve", runs.resolve_run, methods=["POST"]),
]


def app(extra_routes: Sequence[BaseRoute] = ()) -> ASGIApp:
    return surface([*extra_routes, *ROUTES], {})
