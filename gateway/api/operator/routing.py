"""A merchant's routing rules for operators: read, replace (a new version), history, explain."""

from __future__ import annotations

from typing import Annotated, Any

import msgspec
from starlette.requests import Request
from starlette.responses import Response

from gateway import accounts
from gateway.api.operator.endpoint import operator_endpoint
from gateway.http.bodies import read_body
from gateway.http.errors import ApiError
from gateway.http.responses import JSONResponse
from gateway.services import Services
from workflows import merchants, routing
from workflows.db import Connection
from workflows.rules import RulesError, RuleSet


class MerchantNotFound(ApiError):
    """No merchant has this name."""

    status = 404
    error_id = "MerchantNotFound"


class RoutingRulesInvalid(ApiError):
    """The routing rules were not saved: they are not valid."""

    status = 422
    error_id = "RoutingRulesInvalid"


class PaymentToExplain(msgspec.Struct, frozen=True):
    """What `explain` reads of a POST /payments body."""

    currencyCode: Annotated[str, msgspec.Meta(pattern=r"^[A-Z]{3}$")]
    amount: Annotated[int, msgspec.Meta(ge=0, le=2**63 - 1)]
    paymentMethodToken: Annotated[str, msgspec.Meta(max_length=255)] = ""
    customerId: Annotated[str, msgspec.Meta(max_length=255)] | None = None
    metadata: dict[str, Any] | None = None
    order: dict[str, Any] | None = None  # its countryCode, for order_country


async def _merchant(conn: Connection, request: Request) -> merchants.Merchant:
    name: str = request.path_params["merchant"]
    try:
        return await merchants.find_merchant(conn, name)
    except merchants.UnknownMerchant:
        raise MerchantNotFound(f"no merchant named {name[:64]!r}") from None


def _version(version: routing.RulesVersion) -> dict[str, Any]:
    return {
        "version": version.version,
        "createdBy": version.created_by,
        "createdAt": version.created_at.isoformat(),
        "rules": msgspec.to_builtins(routing.rules_of(version.rules)),
    }


async def _versions(request: Request) -> tuple[merchants.Merchant, list[routing.RulesVersion]]:
    """The merchant the path names, and every version of its rules, the latest first."""
    services: Services = request.app.state.services
    async with services.engine.db.connection() as conn:
        merchant = await _merchant(conn, request)
        return merchant, await routing.history(conn, merchant.id)


@operator_endpoint
async def show_rules(request: Request, principal: accounts.Principal) -> Response:
    merchant, found = await _versions(request)
    body = {"merchant": merchant.name, **(_version(found[0]) if found else {"rules": None})}
    return JSONResponse(body)


@operator_endpoint
async def replace_rules(request: Request, principal: accounts.Principal) -> Response:
    """The body is the rule set; it becomes the merchant's next version, by this key."""
    services: Services = request.app.state.services
    ruleset = await read_body(request, RuleSet)
    async with services.engine.db.connection() as conn:
        merchant = await _merchant(conn, request)
        try:
            saved = await routing.save_rules(
                conn, merchant.id, msgspec.to_builtins(ruleset), f"operator key {principal.key_id}"
            )
        except RulesError as error:
            raise RoutingRulesInvalid(str(error)) from None
    return JSONResponse({"merchant": merchant.name, **_version(saved)})


@operator_endpoint
async def rules_history(request: Request, principal: accounts.Principal) -> Response:
    merchant, found = await _versions(request)
    return JSONResponse({"merchant": merchant.name, "data": [_version(v) for v in found]})


@operator_endpoint
async def explain_payment(request: Request, principal: accounts.Principal) -> Response:
    services: Services = request.app.state.services
    payment = await read_body(request, PaymentToExplain)
    async with services.engine.db.connection() as conn:
        merchant = await _merchant(conn, request)
        explained = await routing.explain(
            conn,
            merchant.id,
            currency=payment.currencyCode,
            amount=payment.amount,
            token=payment.paymentMethodToken,
            customer_id=payment.customerId,
            metadata=payment.metadata,
            order=payment.order,
        )
    return JSONResponse(
        {
            "merchant": merchant.name,
            "version": explained.version,
            "rule": explained.rule,
            "branches": [
                {"percent": weight, "accounts": list(accounts_)}
                for weight, accounts_ in explained.branches
            ],
        }
    )
