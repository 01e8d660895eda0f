"""The operator API, mounted at /admin: operator keys only; workflow runs to inspect,
replay and resolve; merchants' routing rules; their webhook endpoints and deliveries."""

from __future__ import annotations

from collections.abc import Sequence

from starlette.routing import BaseRoute
from starlette.types import ASGIApp

from gateway.api.operator import routing, runs, schemas, webhooks
from gateway.http.errors import ErrorEnvelope
from gateway.http.handlers import surface
from gateway.http.openapi import Surface, operation
from workflows.rules import RuleSet

ROUTES: list[BaseRoute] = [
    operation(
        "/workflows",
        runs.list_runs,
        "GET",
        "list_workflow_runs",
        "List workflow runs (by state, or a payment's)",
        query=schemas.WorkflowRunQuery,
        response=schemas.WorkflowRunList,
    ),
    operation(
        "/workflows/{id}",
        runs.show_run,
        "GET",
        "get_workflow_run",
        "A workflow run with its history",
        response=schemas.WorkflowRun,
    ),
    operation(
        "/workflows/{id}/replay",
        runs.replay_run,
        "POST",
        "replay_workflow_run",
        "Replay a stuck run (it asks the processor before acting)",
        response=schemas.WorkflowRun,
    ),
    operation(
        "/workflows/{id}/resolve",
        runs.resolve_run,
        "POST",
        "resolve_workflow_run",
        "Resolve a run whose processor cannot say what happened",
        request=schemas.ResolveRun,
        response=schemas.WorkflowRun,
    ),
    operation(
        "/routing/{merchant}",
        routing.show_rules,
        "GET",
        "get_routing_rules",
        "A merchant's routing rules in force",
        response=schemas.MerchantRules,
    ),
    operation(
        "/routing/{merchant}",
        routing.replace_rules,
        "PUT",
        "replace_routing_rules",
        "Replace a merchant's routing rules (a new version)",
        request=RuleSet,
        response=schemas.MerchantRules,
    ),
    operation(
        "/routing/{merchant}/history",
        routing.rules_history,
        "GET",
        "list_routing_rule_versions",
        "Every version of a merchant's routing rules",
        response=schemas.RulesHistory,
    ),
    operation(
        "/routing/{merchant}/explain",
        routing.explain_payment,
        "POST",
        "explain_routing",
        "Which rule and accounts a payment would get",
        request=schemas.PaymentToExplain,
        response=schemas.Explanation,
    ),
    operation(
        "/webhooks/{merchant}/endpoints",
        webhooks.list_endpoints,
        "GET",
        "list_webhook_endpoints",
        "A merchant's webhook endpoints",
        response=schemas.WebhookEndpointList,
    ),
    operation(
        "/webhooks/{merchant}/endpoints",
        webhooks.add_endpoint,
        "POST",
        "add_webhook_endpoint",
        "Add a webhook endpoint",
        request=schemas.NewEndpoint,
        response=schemas.WebhookEndpoint,
        status=201,
    ),
    operation(
        "/webhooks/{merchant}/endpoints/{endpoint}/disable",
        webhooks.disable_endpoint,
        "POST",
        "disable_webhook_endpoint",
        "Disable a webhook endpoint (it is sent nothing)",
        response=schemas.WebhookEndpoint,
    ),
    operation(
        "/webhooks/{merchant}/endpoints/{endpoint}/enable",
        webhooks.enable_endpoint,
        "POST",
        "enable_webhook_endpoint",
        "Enable a webhook endpoint",
        response=schemas.WebhookEndpoint,
    ),
    operation(
        "/webhooks/{merchant}/endpoints/{endpoint}/rotate-secret",
        webhooks.rotate_secret,
        "POST",
        "rotate_webhook_secret",
        "Rotate an endpoint's signing secret",
        response=schemas.RotatedSecret,
    ),
    operation(
        "/webhooks/{merchant}/deliveries",
        webhooks.list_deliveries,
        "GET",
        "list_webhook_deliveries",
        "A merchant's webhook deliveries",
        query=schemas.DeliveryQuery,
        response=schemas.DeliveryList,
    ),
    operation(
        "/webhooks/{merchant}/deliveries/{event}/{endpoint}",
        webhooks.delivery_attempts,
        "GET",
        "list_webhook_delivery_attempts",
        "The attempts of one delivery",
        response=schemas.DeliveryAttemptList,
    ),
    operation(
        "/webhooks/{merchant}/redeliver",
        webhooks.redeliver,
        "POST",
        "redeliver_webhooks",
        "Deliver an event again, or every dead letter since a time",
        request=schemas.Redelivery,
        response=schemas.Redelivered,
    ),
]

SURFACE = Surface(
    name="Operator API",
    description="Workflow runs, routing rules and webhooks, with operator keys (X-API-KEY).",
    prefix="/admin",
    routes=ROUTES,
    security={"OperatorApiKey": {"type": "apiKey", "in": "header", "name": "X-API-KEY"}},
    error=ErrorEnvelope,
)


def app(extra_routes: Sequence[BaseRoute] = ()) -> ASGIApp:
    return surface([*extra_routes, *ROUTES], {})
