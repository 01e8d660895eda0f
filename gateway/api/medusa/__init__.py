"""Medusa's v1 admin Payments API, for Medusa stores: mounted at /admin/payments, beside the
operator API at /admin (the /admin/payments mount comes first and takes its paths).

Authentication as Medusa's clients send it (`x-medusa-access-token`, or `Authorization: Bearer`)
with a gateway merchant key; errors in Medusa's shape (errors.py); the operations (payments.py)
over the same engine, idempotency and figures as the Primer surface.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute
from starlette.types import ASGIApp

from gateway.api.medusa import errors, payments
from gateway.http.handlers import api_error, surface
from gateway.http.openapi import Surface, operation
from workflows.errors import PaymentError

KEYED = ("Idempotency-Key",)

ROUTES: list[BaseRoute] = [
    operation(
        "/{id}",
        payments.get_payment,
        "GET",
        "GetPaymentsPayment",
        "Get a payment",
        response=payments.PaymentResponse,
    ),
    operation(
        "/{id}/capture",
        payments.capture_payment,
        "POST",
        "PostPaymentsPaymentCapture",
        "Capture a payment",
        response=payments.PaymentResponse,
        headers=KEYED,
    ),
    operation(
        "/{id}/refund",
        payments.refund_payment,
        "POST",
        "PostPaymentsPaymentRefunds",
        "Refund a payment",
        request=payments.AdminPostPaymentRefundsReq,
        response=payments.RefundResponse,
        headers=KEYED,
    ),
]
PREFIX = "/admin/payments"

SURFACE = Surface(
    name="Medusa admin Payments API",
    description="Medusa's v1 admin Payments API, for Medusa stores, with merchant keys.",
    prefix=PREFIX,
    routes=ROUTES,
    security={
        "MedusaAccessToken": {"type": "apiKey", "in": "header", "name": "x-medusa-access-token"},
        "MedusaBearer": {"type": "http", "scheme": "bearer"},
    },
    error=errors.ErrorBody,
    headers={
        "Idempotency-Key": {
            "name": "Idempotency-Key",
            "required": False,
            "description": "1-255 visible ASCII characters: the request is done once per key.",
            "schema": {"type": "string", "minLength": 1, "maxLength": 255},
        }
    },
)


async def payment_error(request: Request, error: Exception) -> Response:
    assert isinstance(error, PaymentError)
    return await api_error(request, errors.from_domain(error))


def app() -> ASGIApp:
    return surface(ROUTES, {PaymentError: payment_error}, errors.shape)
