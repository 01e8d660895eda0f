"""The operator API, mounted at /admin: operator keys only; workflow runs to inspect,
replay and resolve; merchants' routing rules."""

from __future__ import annotations

from collections.abc import Sequence

from starlette.routing import BaseRoute, Route
from starlette.types import ASGIApp

from gateway.api.operator import routing, runs
from gateway.http.handlers import surface

ROUTES: list[BaseRoute] = [
    Route("/workflows", runs.list_runs, methods=["GET"]),
    Route("/workflows/{id}", runs.show_run, methods=["GET"]),
    Route("/workflows/{id}/replay", runs.replay_run, methods=["POST"]),
    Route("/workflows/{id}/resolve", runs.resolve_run, methods=["POST"]),
    Route("/routing/{merchant}", routing.show_rules, methods=["GET"]),
    Route("/routing/{merchant}", routing.replace_rules, methods=["PUT"]),
    Route("/routing/{merchant}/history", routing.rules_history, methods=["GET"]),
    Route("/routing/{merchant}/explain", routing.explain_payment, methods=["POST"]),
]


def app(extra_routes: Sequence[BaseRoute] = ()) -> ASGIApp:
    return surface([*extra_routes, *ROUTES], {})
