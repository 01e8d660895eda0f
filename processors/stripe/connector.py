"""Stripe, through its PaymentIntents and Refunds APIs.

Wire format: form-encoded POSTs with nested keys (`metadata[payment_id]=...`), `Authorization:
Bearer <secret key>`, a pinned `Stripe-Version`, and `Idempotency-Key` = the engine's processor
key on every POST, so a retry or a recovery can never make Stripe act twice.

Answers map to the canonical outcomes of `processors.base`: `requires_capture` is AUTHORIZED,
`requires_action` is PENDING (3-D Secure), a 402 `card_error` is a DECLINED value with Primer's
decline code, any other 4xx is FAILED. Only connection errors, 409, 429 and 5xx are retried
(`Stripe-Should-Retry` overrides). `payment_intent_unexpected_state` on a capture or cancel means
"ask Stripe what happened": the PaymentIntent is fetched and its state answers.

Multicapture (several partial captures of one authorization) is Stripe's gated feature: an
account set up with it requests it at authorization and sends `final_capture=false` on non-final
captures. Without it a partial capture would release the rest at Stripe, so a non-final capture
is refused before any call.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import httpx

from processors.base import (
    Call,
    Capabilities,
    DeclineCode,
    DeclineType,
    Outcome,
    Result,
    StatusReason,
    StatusReasonType,
)
from processors.stripe import wire
from processors.stripe.client import API_BASE, TIMEOUT, Answer, Client

SOFT, HARD = DeclineType.SOFT_DECLINE, DeclineType.HARD_DECLINE
# Stripe's decline_code -> Primer's code and whether retrying the card may help.
DECLINES: Mapping[str, tuple[DeclineCode, DeclineType]] = {
    "insufficient_funds": (DeclineCode.INSUFFICIENT_FUNDS, SOFT),
    "do_not_honor": (DeclineCode.DO_NOT_HONOR, SOFT),
    "do_not_try_again": (DeclineCode.DO_NOT_HONOR, HARD),
    "expired_card": (DeclineCode.EXPIRED_CARD, HARD),
    "lost_card": (DeclineCode.LOST_OR_STOLEN_CARD, HARD),
    "stolen_card": (DeclineCode.LOST_OR_STOLEN_CARD, HARD),
    "pickup_card": (DeclineCode.LOST_OR_STOLEN_CARD, HARD),
    "fraudulent": (DeclineCode.SUSPECTED_FRAUD, HARD),
    "merchant_blacklist": (DeclineCode.SUSPECTED_FRAUD, HARD),
    "security_violation": (DeclineCode.SUSPECTED_FRAUD, HARD),
    "incorrect_number": (DeclineCode.INVALID_CARD_NUMBER, HARD),
    "invalid_number": (DeclineCode.INVALID_CARD_NUMBER, HARD),
    "invalid_account": (DeclineCode.INVALID_CARD_NUMBER, HARD),
    "authentication_required": (DeclineCode.AUTHENTICATION_REQUIRED, SOFT),
    "card_velocity_exceeded": (DeclineCode.WITHDRAWAL_LIMIT_EXCEEDED, SOFT),
    "withdrawal_count_limit_exceeded": (DeclineCode.WITHDRAWAL_LIMIT_EXCEEDED, SOFT),
    "call_issuer": (DeclineCode.REFER_TO_CARD_ISSUER, SOFT),
    "issuer_not_available": (DeclineCode.ISSUER_TEMPORARILY_UNAVAILABLE, SOFT),
    "processing_error": (DeclineCode.ISSUER_TEMPORARILY_UNAVAILABLE, SOFT),
    "try_again_later": (DeclineCode.ISSUER_TEMPORARILY_UNAVAILABLE, SOFT),
    "reenter_transaction": (DeclineCode.ISSUER_TEMPORARILY_UNAVAILABLE, SOFT),
    "generic_decline": (DeclineCode.DECLINED, SOFT),
    "card_declined": (DeclineCode.DECLINED, SOFT),
    "card_not_supported": (DeclineCode.DECLINED, HARD),
    "currency_not_supported": (DeclineCode.DECLINED, HARD),
    "restricted_card": (DeclineCode.DECLINED, HARD),
    "not_permitted": (DeclineCode.DECLINED, HARD),
    "revocation_of_authorization": (DeclineCode.DECLINED, HARD),
    "stop_payment_order": (DeclineCode.DECLINED, HARD),
}
# PaymentIntent status -> our outcome, as the answer to an authorization (or a status query).
_INTENT_OUTCOMES = {
    "requires_capture": Outcome.AUTHORIZED,
    "requires_action": Outcome.PENDING,
    "processing": Outcome.PENDING,
    "requires_confirmation": Outcome.PENDING,
    "succeeded": Outcome.CAPTURED,
    "canceled": Outcome.CANCELLED,
    "requires_payment_method": Outcome.DECLINED,
}


def decline_reason(error: wire.Error) -> StatusReason:
    code = error.decline_code or error.code or "generic_decline"
    primer_code, decline_type = DECLINES.get(code, (DeclineCode.UNKNOWN, SOFT))
    return StatusReason(StatusReasonType.ISSUER_DECLINED, decline_type, primer_code, error.message)


def rejected_reason(status: int, error: wire.Error) -> StatusReason:
    message = error.message or f"Stripe answered {status}"
    if status == 401:
        message = "Stripe refused the API key of this processor account"
    return StatusReason(StatusReasonType.GATEWAY_REJECTED, None, DeclineCode.ERROR, message)


def _rejected(message: str) -> StatusReason:
    return StatusReason(StatusReasonType.GATEWAY_REJECTED, None, DeclineCode.ERROR, message)


class StripeProcessor:
    def __init__(
        self,
        secret_key: str,
        *,
        api_base: str = API_BASE,
        multicapture: bool = False,
        client: httpx.AsyncClient | None = None,
    ) -> None:
        self._http = client or httpx.AsyncClient(
            timeout=TIMEOUT, limits=httpx.Limits(max_connections=100, max_keepalive_connections=20)
        )
        self._stripe = Client(secret_key, api_base=api_base, http=self._http)
        self._base = api_base.rstrip("/")
        self._multicapture = multicapture
        self.capabilities = Capabilities(multicapture=multicapture)

    def __repr__(self) -> str:  # never the secret
        return f"StripeProcessor(api_base={self._base!r}, multicapture={self._multicapture})"

    async def aclose(self) -> None:
        await self._http.aclose()

    # ---------------------------------------------------------------- verbs

    async def authorize(self, call: Call) -> Result:
        params: dict[str, Any] = {
            "amount": call.amount,
            "currency": call.currency_code.lower(),
            "payment_method": call.payment_method_token,
            "payment_method_types": ["card"],
            "capture_method": "manual",
            "confirm": True,
            "metadata": {"payment_id": call.reference},
        }
        if self._multicapture:
            params["payment_method_options"] = {"card": {"request_multicapture": "if_available"}}
        answer = await self._stripe.post("/v1/payment_intents", params, call.processor_key)
        if answer.status == 402:
            return self._declined(answer)
        if answer.status >= 400:
            return self._failed(answer)
        return self._intent_result(answer.read(wire.PaymentIntent))

    async def capture(self, call: Call) -> Result:
        if not call.final and not self._multicapture:
            return Result(
                Outcome.FAILED,
                call.processor_transaction_id,
                _rejected("A non-final capture needs multicapture on this Stripe account"),
            )
        params: dict[str, Any] = {"amount_to_capture": call.amount}
        if not call.final:
            params["final_capture"] = False
        intent = call.processor_transaction_id
        answer = await self._stripe.post(
            f"/v1/payment_intents/{intent}/capture", params, call.processor_key
        )
        if _unexpected_state(answer):
            return await self._settled_state(call, wanted=Outcome.CAPTURED)
        if answer.status >= 400:
            return self._declined(answer) if answer.status == 402 else self._failed(answer)
        answer.read(wire.PaymentIntent)  # a success must be readable, or the outcome is unknown
        return Result(Outcome.CAPTURED, intent)

    async def cancel(self, call: Call) -> Result:
        intent = call.processor_transaction_id
        answer = await self._stripe.post(
            f"/v1/payment_intents/{intent}/cancel", {}, call.processor_key
        )
        if _unexpected_state(answer):
            return await self._settled_state(call, wanted=Outcome.CANCELLED)
        if answer.status >= 400:
            return self._failed(answer)
        answer.read(wire.PaymentIntent)
        return Result(Outcome.CANCELLED, intent)

    async def refund(self, call: Call) -> Result:
        params = {
            "payment_intent": call.processor_transaction_id,
            "amount": call.amount,
            "metadata": {"payment_id": call.reference, "processor_key": call.processor_key},
        }
        answer = await self._stripe.post("/v1/refunds", params, call.processor_key)
        if answer.status >= 400:
            return self._declined(answer) if answer.status == 402 else self._failed(answer)
        return self._refund_result(answer.read(wire.Refund))

    async def status(self, call: Call) -> Result:
        """What Stripe says now about the operation `call.verb` made with this processor key."""
        if call.verb == "refund":
            answer = await self._stripe.get(
                "/v1/refunds", {"payment_intent": call.processor_transaction_id, "limit": 100}
            )
            if answer.status >= 400:
                return self._failed(answer)
            for refund in answer.read(wire.RefundList).data:
                if refund.metadata.get("processor_key") == call.processor_key:
                    return self._refund_result(refund)
            return Result(Outcome.NOT_FOUND)
        if call.processor_transaction_id is None:
            return Result(Outcome.NOT_FOUND)  # the authorization never got an answer with an id
        answer = await self._stripe.get(f"/v1/payment_intents/{call.processor_transaction_id}", {})
        if answer.status == 404:
            return Result(Outcome.NOT_FOUND)
        if answer.status >= 400:
            return self._failed(answer)
        return self._intent_result(answer.read(wire.PaymentIntent))

    # ---------------------------------------------------------------- answers

    @staticmethod
    def _intent_result(intent: wire.PaymentIntent) -> Result:
        outcome = _INTENT_OUTCOMES.get(intent.status, Outcome.FAILED)
        reason = None
        action = None
        if outcome is Outcome.PENDING and intent.status == "requires_action":
            action = "3DS_AUTHENTICATION"
        if outcome is Outcome.DECLINED:
            reason = decline_reason(intent.last_payment_error or wire.Error())
        return Result(outcome, intent.id, reason, action)

    @staticmethod
    def _refund_result(refund: wire.Refund) -> Result:
        if refund.status in ("succeeded", "pending", "requires_action"):
            return Result(Outcome.REFUNDED, refund.id)
        reason = _rejected(
            f"Stripe refund {refund.status}: {refund.failure_reason or 'no reason given'}"
        )
        return Result(Outcome.FAILED, refund.id, reason)

    @staticmethod
    def _declined(answer: Answer) -> Result:
        error = answer.error()
        intent = error.payment_intent.id if error.payment_intent else None
        return Result(Outcome.DECLINED, intent, decline_reason(error))

    @staticmethod
    def _failed(answer: Answer) -> Result:
        return Result(Outcome.FAILED, None, rejected_reason(answer.status, answer.error()))

    async def _settled_state(self, call: Call, *, wanted: Outcome) -> Result:
        """After `payment_intent_unexpected_state`: did the earlier attempt already do it?"""
        current = await self.status(call)
        if current.outcome is wanted:
            return current
        if wanted is Outcome.CAPTURED and current.outcome is Outcome.CANCELLED:
            # A partial capture without multicapture leaves a succeeded intent; a cancelled one
            # was never captured.
            return Result(Outcome.FAILED, current.processor_transaction_id, current.reason)
        reason = _rejected(f"the PaymentIntent is {current.outcome.value.lower()}")
        return Result(Outcome.FAILED, current.processor_transaction_id, reason)


def _unexpected_state(answer: Answer) -> bool:
    return answer.status == 400 and answer.error().code == "payment_intent_unexpected_state"
