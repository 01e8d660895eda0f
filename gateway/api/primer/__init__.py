"""Primer's Payments API v2.4: its routes and its answers to the domain's refusals.

Mounted at the root (Primer's paths have no prefix). Handlers live in payments.py and
instruments.py; render.py builds Primer's JSON from the domain's records; errors.py maps each
domain refusal to Primer's errorId.
"""

from __future__ import annotations

from collections.abc import Sequence

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute
from starlette.types import ASGIApp

from gateway.api.primer import instruments, payments, schemas, sessions
from gateway.api.primer.endpoint import SUPPORTED_API_VERSIONS
from gateway.api.primer.errors import from_payment_error
from gateway.http.errors import ErrorEnvelope
from gateway.http.handlers import api_error, surface
from gateway.http.openapi import Surface, operation
from workflows.errors import PaymentError

VERSION = ("X-API-VERSION",)
KEYED = ("X-Idempotency-Key", "X-API-VERSION")  # operations that move money or save a card

ROUTES: list[BaseRoute] = [
    operation(
        "/payment-instruments",
        instruments.create_instrument,
        "POST",
        "tokenize_card_payment_instruments_post",
        "Tokenize a card (the gateway's own; Primer tokenizes in its client SDK)",
        request=schemas.CardDetails,
        response=schemas.PaymentInstrument,
        headers=VERSION,
        extension=True,
    ),
    operation(
        "/payment-instruments",
        instruments.list_instruments,
        "GET",
        "get_payment_methods_payment_methods_get",
        "List a customer's saved payment methods",
        query=schemas.PaymentMethodsQuery,
        response=schemas.PaymentInstrumentList,
        headers=VERSION,
    ),
    operation(
        "/payment-instruments/{paymentMethodToken}/vault",
        instruments.vault_instrument,
        "POST",
        "vault_payment_method_payment_methods__token__vault_post",
        "Save a payment method",
        request=schemas.VaultPaymentMethodAPIRequest,
        response=schemas.PaymentInstrument,
        headers=VERSION,
    ),
    operation(
        "/payment-instruments/{paymentMethodToken}/default",
        instruments.default_instrument,
        "POST",
        "set_payment_method_default_payment_methods__token__default_post",
        "Make a saved payment method the customer's default",
        response=schemas.PaymentInstrument,
        headers=VERSION,
    ),
    operation(
        "/payment-instruments/{paymentMethodToken}",
        instruments.delete_instrument,
        "DELETE",
        "delete_payment_method_payment_methods__token__delete",
        "Delete a saved payment method",
        response=schemas.PaymentInstrument,
        headers=VERSION,
    ),
    operation(
        "/client-session",
        sessions.create_session,
        "POST",
        "create_client_side_token_client_session_post",
        "Create a client session",
        request=schemas.ClientSessionAPIRequest,
        response=schemas.ClientSessionWithTokenAPIResponse,
        headers=VERSION,
    ),
    operation(
        "/client-session",
        sessions.get_session,
        "GET",
        "retrieve_client_side_token_client_session_get",
        "Retrieve a client session",
        query=schemas.ClientSessionQuery,
        response=schemas.ClientSessionAPIResponse,
        headers=VERSION,
    ),
    operation(
        "/client-session",
        sessions.update_session,
        "PATCH",
        "update_client_side_token_client_session_patch",
        "Update a client session",
        request=schemas.ClientSessionUpdateAPIRequest,
        response=schemas.ClientSessionAPIResponse,
        headers=VERSION,
    ),
    operation(
        "/payments",
        payments.create_payment,
        "POST",
        "create_payment_payments_post",
        "Create a payment",
        request=schemas.PaymentCreationAPIRequest,
        response=schemas.PaymentAPIResponse,
        headers=KEYED,
    ),
    operation(
        "/payments",
        payments.list_payments,
        "GET",
        "list_payments_payments_get",
        "Search payments",
        query=schemas.PaymentListQuery,
        response=schemas.PaymentList,
        headers=VERSION,
    ),
    operation(
        "/payments/{id}",
        payments.get_payment,
        "GET",
        "get_payment_by_id_payments__id__get",
        "Get a payment",
        query=schemas.PaymentQuery,
        response=schemas.PaymentAPIResponse,
        headers=VERSION,
    ),
    operation(
        "/payments/{id}/authorize",
        payments.authorize_payment,
        "POST",
        "authorize_payment_payments__id__authorize_post",
        "Authorize a held payment",
        request=schemas.PaymentAuthorizationAPIRequest,
        response=schemas.PaymentAPIResponse,
        headers=KEYED,
    ),
    operation(
        "/payments/{id}/resume",
        payments.resume_payment,
        "POST",
        "resume_payment_payments__id__resume_post",
        "Resume a payment",
        request=schemas.PaymentResumeAPIRequest,
        response=schemas.PaymentAPIResponse,
        headers=VERSION,
        also={202: ErrorEnvelope},  # NoActionsToHandle: nothing to resume
    ),
    operation(
        "/payments/{id}/adjust-authorization",
        payments.adjust_authorization,
        "POST",
        "adjust_authorization_payments__id__adjust_authorization_post",
        "Adjust an authorized amount",
        request=schemas.PaymentAdjustAuthorizationAPIRequest,
        response=schemas.PaymentAPIResponse,
        headers=KEYED,
    ),
    operation(
        "/payments/{id}/capture",
        payments.capture_payment,
        "POST",
        "capture_payment_payments__id__capture_post",
        "Capture a payment",
        request=schemas.PaymentCaptureAPIRequest,
        response=schemas.PaymentAPIResponse,
        headers=KEYED,
    ),
    operation(
        "/payments/{id}/cancel",
        payments.cancel_payment,
        "POST",
        "cancel_payment_payments__id__cancel_post",
        "Cancel a payment",
        request=schemas.PaymentCancelAPIRequest,
        response=schemas.PaymentAPIResponse,
        headers=KEYED,
    ),
    operation(
        "/payments/{id}/refund",
        payments.refund_payment,
        "POST",
        "refund_payment_payments__id__refund_post",
        "Refund a payment",
        request=schemas.PaymentRefundAPIRequest,
        response=schemas.PaymentAPIResponse,
        headers=KEYED,
    ),
]

SURFACE = Surface(
    name="Primer Payments API v2.4",
    description="Primer's Payments API, with merchant keys (X-API-KEY). Paths have no prefix.",
    prefix="",
    routes=ROUTES,
    security={"MerchantApiKey": {"type": "apiKey", "in": "header", "name": "X-API-KEY"}},
    error=ErrorEnvelope,
    headers={
        "X-API-VERSION": {
            "name": "X-API-VERSION",
            "required": False,
            "description": "2.4 (the default when absent).",
            "schema": {"type": "string", "enum": list(SUPPORTED_API_VERSIONS)},
        },
        "X-Idempotency-Key": {
            "name": "X-Idempotency-Key",
            "required": False,
            "description": "1-255 visible ASCII characters: the request is done once per key.",
            "schema": {"type": "string", "minLength": 1, "maxLength": 255},
        },
    },
)


async def payment_error(request: Request, error: Exception) -> Response:
    assert isinstance(error, PaymentError)
    return await api_error(request, from_payment_error(error))


def app(extra_routes: Sequence[BaseRoute] = ()) -> ASGIApp:
    return surface([*extra_routes, *ROUTES], {PaymentError: payment_error})
