"""A merchant's routing rules for operators: read, replace (a new version), history, explain."""

from __future__ import annotations

import msgspec
from starlette.requests import Request
from starlette.responses import Response

from gateway import accounts
from gateway.api.operator.endpoint import operator_endpoint
from gateway.api.operator.schemas import (
    Branch,
    Explanation,
    MerchantRules,
    PaymentToExplain,
    RulesHistory,
    RulesVersion,
)
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


async def _merchant(conn: Connection, request: Request) -> merchants.Merchant:
    name: str = request.path_params["merchant"]
    try:
        return await merchants.find_merchant(conn, name)
    except merchants.UnknownMerchant:
        raise MerchantNotFound(f"no merchant named {name[:64]!r}") from None


async def _versions(request: Request) -> tuple[merchants.Merchant, list[routing.RulesVersion]]:
    """The merchant the path names, and every version of its rules, the latest first."""
    services: Services = request.app.state.services
    async with services.engine.db.connection() as conn:
        merchant = await _merchant(conn, request)
        return merchant, await routing.history(conn, merchant.id)


@operator_endpoint
async def show_rules(request: Request, principal: accounts.Principal) -> Response:
    merchant, found = await _versions(request)
    return JSONResponse(MerchantRules.of(merchant.name, found[0] if found else None))


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
    return JSONResponse(MerchantRules.of(merchant.name, saved))


@operator_endpoint
async def rules_history(request: Request, principal: accounts.Principal) -> Response:
    merchant, found = await _versions(request)
    return JSONResponse(RulesHistory(merchant.name, [RulesVersion.of(v) for v in found]))


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
        Explanation(
            merchant=merchant.name,
            version=explained.version,
            rule=explained.rule,
            branches=[Branch(weight, list(names)) for weight, names in explained.branches],
        )
    )
