"""Merchants' webhook endpoints and their deliveries, for operators (what `gateway webhooks`
does): add, list, disable/enable, rotate a secret; list deliveries, show attempts, redeliver."""

from __future__ import annotations

import uuid

from starlette.requests import Request
from starlette.responses import Response

from gateway import accounts
from gateway.api.operator.endpoint import operator_endpoint
from gateway.api.operator.routing import MerchantNotFound
from gateway.api.operator.schemas import (
    Delivery,
    DeliveryAttempt,
    DeliveryAttemptList,
    DeliveryList,
    DeliveryQuery,
    NewEndpoint,
    Redelivered,
    Redelivery,
    RotatedSecret,
    WebhookEndpoint,
    WebhookEndpointList,
)
from gateway.http.bodies import read_body, read_query
from gateway.http.errors import ApiError, validation_error
from gateway.http.responses import JSONResponse
from gateway.services import Services
from gateway.webhooks.delivery import UnsafeEndpoint, check_destination
from workflows import merchants, notifications
from workflows.credentials import MissingMasterKey
from workflows.db import Connection


class EndpointNotFound(ApiError):
    status = 404
    error_id = "WebhookEndpointNotFound"


class SecretKeyNotConfigured(ApiError):
    """GATEWAY_SECRET_KEY is not set: webhook signing secrets cannot be stored sealed. Generate
    one with `gateway secret-key` and restart the gateway with it."""

    status = 503
    error_id = "SecretKeyNotConfigured"


_NO_SECRET_KEY = " ".join((SecretKeyNotConfigured.__doc__ or "").split())


class EndpointRefused(ApiError):
    """The endpoint cannot be added: its URL is not one the gateway sends to."""

    status = 422
    error_id = "WebhookEndpointRefused"


async def _merchant(conn: Connection, name: str) -> merchants.Merchant:
    try:
        return await merchants.find_merchant(conn, name)
    except merchants.UnknownMerchant:
        raise MerchantNotFound(f"no merchant named {name[:64]!r}") from None


def _uuid(value: str, what: str) -> uuid.UUID:
    try:
        return uuid.UUID(value)
    except ValueError:
        raise EndpointNotFound(f"no {what} {value[:64]!r}") from None


@operator_endpoint
async def add_endpoint(request: Request, principal: accounts.Principal) -> Response:
    """The endpoint, and its signing secret: in this answer only (it is stored sealed)."""
    services: Services = request.app.state.services
    body = await read_body(request, NewEndpoint)
    try:
        await check_destination(body.url, body.mode)
    except UnsafeEndpoint as refused:
        raise EndpointRefused(str(refused)) from None
    async with services.engine.db.connection() as conn:
        merchant = await _merchant(conn, request.path_params["merchant"])
        try:
            endpoint, secret = await notifications.add_endpoint(
                conn,
                services.box,
                merchant_id=merchant.id,
                mode=body.mode,
                url=body.url,
                description=body.description,
            )
        except MissingMasterKey:
            raise SecretKeyNotConfigured(_NO_SECRET_KEY) from None
    return JSONResponse(WebhookEndpoint.of(endpoint, secret), status_code=201)


@operator_endpoint
async def list_endpoints(request: Request, principal: accounts.Principal) -> Response:
    services: Services = request.app.state.services
    async with services.engine.db.connection() as conn:
        merchant = await _merchant(conn, request.path_params["merchant"])
        found = await notifications.list_endpoints(conn, merchant.id)
    return JSONResponse(WebhookEndpointList([WebhookEndpoint.of(e) for e in found]))


async def _change(request: Request, state: str) -> Response:
    services: Services = request.app.state.services
    endpoint_id = _uuid(request.path_params["endpoint"], "webhook endpoint")
    async with services.engine.db.connection() as conn:
        merchant = await _merchant(conn, request.path_params["merchant"])
        try:
            changed = await notifications.set_endpoint_state(conn, merchant.id, endpoint_id, state)
        except notifications.EndpointError as error:
            raise EndpointNotFound(str(error)) from None
    return JSONResponse(WebhookEndpoint.of(changed))


@operator_endpoint
async def disable_endpoint(request: Request, principal: accounts.Principal) -> Response:
    return await _change(request, "disabled")


@operator_endpoint
async def enable_endpoint(request: Request, principal: accounts.Principal) -> Response:
    return await _change(request, "active")


@operator_endpoint
async def rotate_secret(request: Request, principal: accounts.Principal) -> Response:
    services: Services = request.app.state.services
    endpoint_id = _uuid(request.path_params["endpoint"], "webhook endpoint")
    async with services.engine.db.connection() as conn:
        merchant = await _merchant(conn, request.path_params["merchant"])
        try:
            secret = await notifications.rotate_endpoint_secret(
                conn, services.box, merchant.id, endpoint_id
            )
        except notifications.EndpointError as error:
            raise EndpointNotFound(str(error)) from None
        except MissingMasterKey:
            raise SecretKeyNotConfigured(_NO_SECRET_KEY) from None
    return JSONResponse(RotatedSecret(str(endpoint_id), secret))


@operator_endpoint
async def list_deliveries(request: Request, principal: accounts.Principal) -> Response:
    services: Services = request.app.state.services
    query = read_query(request, DeliveryQuery)
    async with services.engine.db.connection() as conn:
        merchant = await _merchant(conn, request.path_params["merchant"])
        rows = await notifications.list_deliveries(
            conn,
            merchant_id=merchant.id,
            endpoint_id=query.endpoint,
            payment_id=query.payment,
            state=query.state,
            limit=query.limit,
        )
    return JSONResponse(DeliveryList([Delivery.of(r) for r in rows]))


@operator_endpoint
async def delivery_attempts(request: Request, principal: accounts.Principal) -> Response:
    services: Services = request.app.state.services
    event_id = _uuid(request.path_params["event"], "event")
    endpoint_id = _uuid(request.path_params["endpoint"], "webhook endpoint")
    async with services.engine.db.connection() as conn:
        merchant = await _merchant(conn, request.path_params["merchant"])
        found = await notifications.attempts_of(conn, merchant.id, event_id, endpoint_id)
    return JSONResponse(DeliveryAttemptList([DeliveryAttempt.of(a) for a in found]))


@operator_endpoint
async def redeliver(request: Request, principal: accounts.Principal) -> Response:
    """One event again (`eventId`), or every dead-lettered delivery since `failedSince`."""
    services: Services = request.app.state.services
    body = await read_body(request, Redelivery)
    if (body.eventId is None) == (body.failedSince is None):
        raise validation_error("Redelivery", "give eventId or failedSince")
    async with services.engine.db.connection() as conn:
        merchant = await _merchant(conn, request.path_params["merchant"])
        count = await notifications.redeliver(
            conn, event_id=body.eventId, failed_since=body.failedSince, merchant_id=merchant.id
        )
    return JSONResponse(Redelivered(count))
