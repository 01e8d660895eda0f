"""Medusa's v1 admin Payments API, for Medusa stores: mounted at /admin/payments, beside the
operator API at /admin (the /admin/payments mount comes first and takes its paths).

Authentication as Medusa's clients send it (`x-medusa-access-token`, or `Authorization: Bearer`)
with a gateway merchant key; errors in Medusa's shape (errors.py); the operations (payments.py)
over the same engine, idempotency and figures as the Primer surface.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route
from starlette.types import ASGIApp

from gateway.api.medusa import errors, payments
from gateway.http.handlers import api_error, surface
from workflows.errors import PaymentError

ROUTES: list[BaseRoute] = [
    Route("/{id}", payments.get_payment, methods=["GET"]),
    Route("/{id}/capture", payments.capture_payment, methods=["POST"]),
    Route("/{id}/refund", payments.refund_payment, methods=["POST"]),
]
PREFIX = "/admin/payments"


async def payment_error(request: Request, error: Exception) -> Response:
    assert isinstance(error, PaymentError)
    return await api_error(request, errors.from_domain(error))


def app() -> ASGIApp:
    return surface(ROUTES, {PaymentError: payment_error}, errors.shape)
