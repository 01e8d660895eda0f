"""Merchants' webhook endpoints and their deliveries, for operators (what `gateway webhooks`
does): add, list, disable/enable, rotate a secret; list deliveries, show attempts, redeliver."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any, Literal

import msgspec
from starlette.requests import Request
from starlette.responses import Response

from gateway import accounts
from gateway.api.operator.endpoint import operator_endpoint
from gateway.api.operator.routing import MerchantNotFound
from gateway.http.bodies import read_body
from gateway.http.errors import ApiError, validation_error
from gateway.http.responses import JSONResponse
from gateway.services import Services
from gateway.webhooks.delivery import UnsafeEndpoint, check_destination
from workflows import merchants, notifications
from workflows.db import Connection


class EndpointNotFound(ApiError):
    status = 404
    error_id = "WebhookEndpointNotFound"


class EndpointRefused(ApiError):
    """The endpoint cannot be added: its URL is not one the gateway sends to."""

    status = 422
    error_id = "WebhookEndpointRefused"


class NewEndpoint(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    url: Annotated[str, msgspec.Meta(pattern=r"^https?://\S+$", max_length=2048)]
    mode: Literal["sandbox", "live"] = "sandbox"
    description: Annotated[str, msgspec.Meta(max_length=255)] | None = None


class Redelivery(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    eventId: uuid.UUID | None = None
    failedSince: datetime | None = None


def _endpoint_json(e: notifications.Endpoint) -> dict[str, Any]:
    return {
        "id": str(e.id),
        "merchantId": e.merchant_id,
        "mode": e.mode,
        "url": e.url,
        "description": e.description,
        "state": e.state,
        "rotatedAt": e.rotated_at.isoformat() if e.rotated_at else None,
        "createdAt": e.created_at.isoformat(),
    }


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
        endpoint, secret = await notifications.add_endpoint(
            conn,
            services.box,
            merchant_id=merchant.id,
            mode=body.mode,
            url=body.url,
            description=body.description,
        )
    return JSONResponse({**_endpoint_json(endpoint), "secret": secret}, status_code=201)


@operator_endpoint
async def list_endpoints(request: Request, principal: accounts.Principal) -> Response:
    services: Services = request.app.state.services
    async with services.engine.db.connection() as conn:
        merchant = await _merchant(conn, request.path_params["merchant"])
        found = await notifications.list_endpoints(conn, merchant.id)
    return JSONResponse({"data": [_endpoint_json(e) for e in found]})


async def _change(request: Request, state: str) -> Response:
    services: Services = request.app.state.services
    endpoint_id = _uuid(request.path_params["endpoint"], "webhook endpoint")
    async with services.engine.db.connection() as conn:
        merchant = await _merchant(conn, request.path_params["merchant"])
        try:
            changed = await notifications.set_endpoint_state(conn, merchant.id, endpoint_id, state)
        except notifications.EndpointError as error:
            raise EndpointNotFound(str(error)) from None
    return JSONResponse(_endpoint_json(changed))


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
    return JSONResponse({"id": str(endpoint_id), "secret": secret})


@operator_endpoint
async def list_deliveries(request: Request, principal: accounts.Principal) -> Response:
    services: Services = request.app.state.services
    query = request.query_params
    state = query.get("state")
    if state not in (None, "pending", "delivered", "dead"):
        raise validation_error("DeliveryQuery", "state is pending, delivered or dead")
    limit = query.get("limit", "50")
    if not (limit.isascii() and limit.isdigit()) or not 1 <= int(limit) <= 500:
        raise validation_error("DeliveryQuery", "limit is a number from 1 to 500")
    endpoint = query.get("endpoint")
    async with services.engine.db.connection() as conn:
        merchant = await _merchant(conn, request.path_params["merchant"])
        rows = await notifications.list_deliveries(
            conn,
            merchant_id=merchant.id,
            endpoint_id=_uuid(endpoint, "webhook endpoint") if endpoint else None,
            payment_id=query.get("payment"),
            state=state,
            limit=int(limit),
        )
    return JSONResponse(
        {
            "data": [
                {
                    "eventId": str(r.event_id),
                    "endpointId": str(r.endpoint_id),
                    "paymentId": r.payment_id,
                    "sequence": r.sequence,
                    "type": r.type,
                    "state": r.state,
                    "attempts": r.attempts,
                    "nextAttemptAt": r.next_attempt_at.isoformat() if r.next_attempt_at else None,
                    "createdAt": r.created_at.isoformat(),
                    "finishedAt": r.finished_at.isoformat() if r.finished_at else None,
                }
                for r in rows
            ]
        }
    )


@operator_endpoint
async def delivery_attempts(request: Request, principal: accounts.Principal) -> Response:
    services: Services = request.app.state.services
    event_id = _uuid(request.path_params["event"], "event")
    endpoint_id = _uuid(request.path_params["endpoint"], "webhook endpoint")
    async with services.engine.db.connection() as conn:
        merchant = await _merchant(conn, request.path_params["merchant"])
        found = await notifications.attempts_of(conn, merchant.id, event_id, endpoint_id)
    return JSONResponse(
        {
            "data": [
                {
                    "number": a.number,
                    "at": a.at.isoformat(),
                    "statusCode": a.status_code,
                    "latencyMs": a.latency_ms,
                    "error": a.error,
                    "answer": a.answer,
                }
                for a in found
            ]
        }
    )


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
    return JSONResponse({"redelivered": count})
