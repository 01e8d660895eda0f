"""Primer's Payments API v2.4: its routes and its answers to the domain's refusals.

Mounted at the root (Primer's paths have no prefix). Handlers live in payments.py and
instruments.py; render.py builds Primer's JSON from the domain's records; errors.py maps each
domain refusal to Primer's errorId.
"""

from __future__ import annotations

from collections.abc import Sequence

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route
from starlette.types import ASGIApp

from gateway.api.primer import instruments, payments, sessions
from gateway.api.primer.errors import from_payment_error
from gateway.http.handlers import api_error, surface
from workflows.errors import PaymentError

ROUTES: list[BaseRoute] = [
    Route("/payment-instruments", instruments.create_instrument, methods=["POST"]),
    Route("/payment-instruments", instruments.list_instruments, methods=["GET"]),
    Route(
        "/payment-instruments/{paymentMethodToken}/vault",
        instruments.vault_instrument,
        methods=["POST"],
    ),
    Route(
        "/payment-instruments/{paymentMethodToken}/default",
        instruments.default_instrument,
        methods=["POST"],
    ),
    Route(
        "/payment-instruments/{paymentMethodToken}",
        instruments.delete_instrument,
        methods=["DELETE"],
    ),
    Route("/client-session", sessions.create_session, methods=["POST"]),
    Route("/client-session", sessions.get_session, methods=["GET"]),
    Route("/client-session", sessions.update_session, methods=["PATCH"]),
    Route("/payments", payments.create_payment, methods=["POST"]),
    Route("/payments", payments.list_payments, methods=["GET"]),
    Route("/payments/{id}", payments.get_payment, methods=["GET"]),
    Route("/payments/{id}/authorize", payments.authorize_payment, methods=["POST"]),
    Route("/payments/{id}/resume", payments.resume_payment, methods=["POST"]),
    Route("/payments/{id}/adjust-authorization", payments.adjust_authorization, methods=["POST"]),
    Route("/payments/{id}/capture", payments.capture_payment, methods=["POST"]),
    Route("/payments/{id}/cancel", payments.cancel_payment, methods=["POST"]),
    Route("/payments/{id}/refund", payments.refund_payment, methods=["POST"]),
]


async def payment_error(request: Request, error: Exception) -> Response:
    assert isinstance(error, PaymentError)
    return await api_error(request, from_payment_error(error))


def app(extra_routes: Sequence[BaseRoute] = ()) -> ASGIApp:
    return surface([*extra_routes, *ROUTES], {PaymentError: payment_error})
