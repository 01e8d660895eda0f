"""The operator API, mounted at /admin: operator keys only; workflow runs to inspect,
replay and resolve; merchants' routing rules; their webhook endpoints and deliveries."""

from __future__ import annotations

from collections.abc import Sequence

from starlette.routing import BaseRoute, Route
from starlette.types import ASGIApp

from gateway.api.operator import routing, runs, webhooks
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
    Route("/webhooks/{merchant}/endpoints", webhooks.list_endpoints, methods=["GET"]),
    Route("/webhooks/{merchant}/endpoints", webhooks.add_endpoint, methods=["POST"]),
    Route(
        "/webhooks/{merchant}/endpoints/{endpoint}/disable",
        webhooks.disable_endpoint,
        methods=["POST"],
    ),
    Route(
        "/webhooks/{merchant}/endpoints/{endpoint}/enable",
        webhooks.enable_endpoint,
        methods=["POST"],
    ),
    Route(
        "/webhooks/{merchant}/endpoints/{endpoint}/rotate-secret",
        webhooks.rotate_secret,
        methods=["POST"],
    ),
    Route("/webhooks/{merchant}/deliveries", webhooks.list_deliveries, methods=["GET"]),
    Route(
        "/webhooks/{merchant}/deliveries/{event}/{endpoint}",
        webhooks.delivery_attempts,
        methods=["GET"],
    ),
    Route("/webhooks/{merchant}/redeliver", webhooks.redeliver, methods=["POST"]),
]


def app(extra_routes: Sequence[BaseRoute] = ()) -> ASGIApp:
    return surface([*extra_routes, *ROUTES], {})
