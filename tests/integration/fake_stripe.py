"""A fake of Stripe at the HTTP boundary (respx), stateful enough to test the connector end to end.

It behaves as Stripe documents: a POST with an `Idempotency-Key` seen before gets the first
answer again without acting twice; PaymentIntents move through requires_capture /
requires_action / succeeded / canceled; Stripe's test PaymentMethods decide authorizations.
Faults are injected per operation (and "status" for every GET): error statuses, timeouts after
acting, a held request. `forget_keys()` forgets every Idempotency-Key, as Stripe does after 24 h.
Every request it receives is checked against Stripe's spec (the subset vendored in
contracts/stripe/).
"""

from __future__ import annotations

import asyncio
import itertools
import json
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

import httpx
import respx

from tests.stripe_contract import stripe_contract

BASE = "https://api.stripe.test"

# Stripe's test PaymentMethods -> (status after confirm, decline_code)
TEST_METHODS = {
    "pm_card_visa": ("requires_capture", None),
    "pm_card_mastercard": ("requires_capture", None),
    "pm_card_threeDSecure2Required": ("requires_action", None),
    "pm_card_chargeDeclined": ("declined", "generic_decline"),
    "pm_card_chargeDeclinedInsufficientFunds": ("declined", "insufficient_funds"),
    "pm_card_chargeDeclinedExpiredCard": ("declined", "expired_card"),
    "pm_card_chargeDeclinedFraudulent": ("declined", "fraudulent"),
    "pm_card_chargeDeclinedLostCard": ("declined", "lost_card"),
}


@dataclass
class Fault:
    status: int | None = None  # answer with this status...
    headers: dict[str, str] = field(default_factory=dict)
    timeout_after_acting: bool = False  # ...or act, then let the answer be lost
    hold: asyncio.Event | None = None  # ...or act, then never answer until released
    arrive: asyncio.Event | None = None  # (the request reaches Stripe only once this is set)


@dataclass
class FakeStripe:
    intents: dict[str, dict[str, Any]] = field(default_factory=dict)
    refunds: dict[str, dict[str, Any]] = field(default_factory=dict)
    answers: dict[str, httpx.Response] = field(default_factory=dict)  # by Idempotency-Key
    effects: Counter[str] = field(default_factory=Counter)  # operations actually done
    keys: defaultdict[str, list[str]] = field(default_factory=lambda: defaultdict(list))
    faults: defaultdict[str, list[Fault]] = field(default_factory=lambda: defaultdict(list))
    received: asyncio.Event = field(default_factory=asyncio.Event)
    unexpected_state_on_repeat: bool = False  # as after the idempotency key was forgotten
    asked: int = 0  # status questions (GETs) received
    _ids: itertools.count[int] = field(default_factory=itertools.count)

    def fail(self, operation: str, *faults: Fault) -> None:
        self.faults[operation].extend(faults)

    def forget_keys(self) -> None:
        self.answers.clear()

    def install(self, router: respx.MockRouter) -> None:
        router.post(f"{BASE}/v1/payment_intents").mock(side_effect=self._post("authorize"))
        router.post(url__regex=rf"{BASE}/v1/payment_intents/(?P<intent>pi_\w+)/capture").mock(
            side_effect=self._post("capture")
        )
        router.post(url__regex=rf"{BASE}/v1/payment_intents/(?P<intent>pi_\w+)/cancel").mock(
            side_effect=self._post("cancel")
        )
        router.post(f"{BASE}/v1/refunds").mock(side_effect=self._post("refund"))
        router.get(f"{BASE}/v1/payment_intents/search").mock(side_effect=self._search)
        router.get(url__regex=rf"{BASE}/v1/payment_intents/(?P<intent>pi_\w+)$").mock(
            side_effect=self._get_intent
        )
        router.get(f"{BASE}/v1/refunds").mock(side_effect=self._list_refunds)

    # ---------------------------------------------------------------- behaviour

    def _post(self, operation: str):  # type: ignore[no-untyped-def]
        async def handle(request: httpx.Request, intent: str | None = None) -> httpx.Response:
            check(request)
            key = request.headers["Idempotency-Key"]
            fault = self.faults[operation].pop(0) if self.faults[operation] else None
            if fault and fault.arrive is not None:
                await fault.arrive.wait()  # slow on the network: Stripe has not seen it yet
            self.keys[operation].append(key)
            self.received.set()
            if fault and fault.status:
                return _answer(fault.status, _error("api_error", "fake failure"), fault.headers)
            if key in self.answers:
                answer = self.answers[key]
            elif self.unexpected_state_on_repeat and intent and self.effects[operation]:
                answer = _answer(
                    400,
                    _error(
                        "invalid_request_error",
                        "unexpected state",
                        code="payment_intent_unexpected_state",
                    ),
                )
            else:
                params = dict(parse_qsl(request.read().decode()))
                answer = getattr(self, f"_{operation}")(params, intent)
                self.answers[key] = answer
            if fault and fault.hold is not None:
                await fault.hold.wait()
            if fault and fault.timeout_after_acting:
                raise httpx.ReadTimeout("fake: the answer was lost", request=request)
            return answer

        return handle

    def _authorize(self, params: dict[str, str], _: str | None) -> httpx.Response:
        method = params["payment_method"]
        outcome, decline = TEST_METHODS.get(method, ("declined", "generic_decline"))
        intent = {
            "id": f"pi_{next(self._ids)}",
            "object": "payment_intent",
            "amount": int(params["amount"]),
            "amount_received": 0,
            "currency": params["currency"],
            "capture_method": params["capture_method"],
            "metadata": {k[9:-1]: v for k, v in params.items() if k.startswith("metadata[")},
            "status": outcome if outcome != "declined" else "requires_payment_method",
        }
        self.intents[intent["id"]] = intent
        if outcome == "declined":
            intent["last_payment_error"] = {"code": "card_declined", "decline_code": decline}
            return _answer(
                402,
                _error(
                    "card_error",
                    "Your card was declined.",
                    code="card_declined",
                    decline_code=decline,
                    payment_intent=intent,
                ),
            )
        self.effects["authorize"] += 1
        return _answer(200, intent)

    def _capture(self, params: dict[str, str], intent_id: str | None) -> httpx.Response:
        intent = self.intents[intent_id or ""]
        if intent["status"] != "requires_capture":
            return _answer(
                400,
                _error(
                    "invalid_request_error",
                    "unexpected state",
                    code="payment_intent_unexpected_state",
                ),
            )
        intent["amount_received"] += int(params.get("amount_to_capture", intent["amount"]))
        if params.get("final_capture") != "false":
            intent["status"] = "succeeded"
        self.effects["capture"] += 1
        return _answer(200, intent)

    def _cancel(self, params: dict[str, str], intent_id: str | None) -> httpx.Response:
        intent = self.intents[intent_id or ""]
        intent["status"] = "canceled"
        self.effects["cancel"] += 1
        return _answer(200, intent)

    def _refund(self, params: dict[str, str], _: str | None) -> httpx.Response:
        refund = {
            "id": f"re_{next(self._ids)}",
            "object": "refund",
            "amount": int(params["amount"]),
            "payment_intent": params["payment_intent"],
            "status": "succeeded",
            "metadata": {k[9:-1]: v for k, v in params.items() if k.startswith("metadata[")},
        }
        self.refunds[refund["id"]] = refund
        self.effects["refund"] += 1
        return _answer(200, refund)

    async def _status_fault(self, request: httpx.Request) -> httpx.Response | None:
        """Faults of status questions (operation "status"): every GET."""
        check(request)
        self.asked += 1
        self.received.set()
        fault = self.faults["status"].pop(0) if self.faults["status"] else None
        if fault and fault.hold is not None:
            await fault.hold.wait()
        if fault and fault.status:
            return _answer(fault.status, _error("api_error", "fake failure"), fault.headers)
        if fault and fault.timeout_after_acting:
            raise httpx.ReadTimeout("fake: the answer was lost", request=request)
        return None

    async def _search(self, request: httpx.Request) -> httpx.Response:
        if failed := await self._status_fault(request):
            return failed
        # Stripe's query language, as far as the connector uses it: metadata['k']:'v'.
        query = request.url.params["query"]
        field, _, value = query.partition(":")
        key = field.removeprefix("metadata['").removesuffix("']")
        wanted = value.strip("'")
        data = [i for i in self.intents.values() if i["metadata"].get(key) == wanted]
        return _answer(200, {"object": "search_result", "data": data, "has_more": False})

    async def _get_intent(self, request: httpx.Request, intent: str) -> httpx.Response:
        if failed := await self._status_fault(request):
            return failed
        if intent not in self.intents:
            return _answer(404, _error("invalid_request_error", "No such payment_intent"))
        return _answer(200, self.intents[intent])

    async def _list_refunds(self, request: httpx.Request) -> httpx.Response:
        if failed := await self._status_fault(request):
            return failed
        wanted = request.url.params.get("payment_intent")
        data = [r for r in self.refunds.values() if r["payment_intent"] == wanted]
        return _answer(200, {"object": "list", "data": data, "has_more": False})


def check(request: httpx.Request) -> None:
    stripe_contract().check(request)


def _error(kind: str, message: str, **fields: Any) -> dict[str, Any]:
    return {"error": {"type": kind, "message": message, **fields}}


def _answer(
    status: int, body: dict[str, Any], headers: dict[str, str] | None = None
) -> httpx.Response:
    return httpx.Response(
        status,
        content=json.dumps(body).encode(),
        headers={"Content-Type": "application/json", "Request-Id": "req_fake", **(headers or {})},
    )
