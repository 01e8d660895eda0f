"""Stripe, through its PaymentIntents and Refunds APIs.

Wire format: form-encoded POSTs with nested keys (`metadata[payment_id]=...`), `Authorization:
Bearer <secret key>`, a pinned `Stripe-Version`, and `Idempotency-Key` = the engine's processor
key on every POST, so a retry or a recovery can never make Stripe act twice.

Answers map to the canonical outcomes of `processors.base`: `requires_capture` is AUTHORIZED,
`requires_action` is PENDING (3-D Secure), a 402 `card_error` is a DECLINED value with Primer's
decline code, any other 4xx is FAILED. Only connection errors, 409, 429 and 5xx are retried
(`Stripe-Should-Retry` overrides). `payment_intent_unexpected_state` on a capture or cancel means
"ask Stripe what happened": the PaymentIntent is fetched and its state answers (for a capture,
only a definite "nothing more was captured" is taken at once; recovery asks the rest).

Status questions (`status`, per verb) read Stripe's objects, never a repeat of the request, since
Stripe honours an Idempotency-Key for 24 hours only: an authorization is the PaymentIntent (by
its id, or by our payment id and key in its metadata, through search); a capture is read from the
intent's `amount_received` against what the gateway recorded before it (`requires_capture` with
nothing more received is no capture; any other amount was captured outside the gateway and is a
MISMATCH for an operator); a refund is found by our key in its metadata.

Multicapture (several partial captures of one authorization) is Stripe's gated feature: an
account set up with it requests it at authorization and sends `final_capture=false` on non-final
captures. Without it a partial capture would release the rest at Stripe, so a non-final capture
is refused before any call.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from datetime import timedelta
from typing import Any, TypeVar

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
from processors.errors import OutcomeUnknown
from processors.stripe import wire
from processors.stripe.client import API_BASE, TIMEOUT, Answer, Client

T = TypeVar("T")
# Stripe keeps an Idempotency-Key for at least 24 hours; after that a repeat may act again.
KEY_LIFETIME = timedelta(hours=24)
# Search is eventually consistent: "occasionally ... up to an hour behind during outages".
SEARCH_LAG = timedelta(hours=1)

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
            # Both, so that a lost answer can be found again by search (status).
            "metadata": {"payment_id": call.reference, "processor_key": call.processor_key},
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
            return await self._not_capturable(call)
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
            return await self._settled_state(replace(call, verb="cancel"), Outcome.CANCELLED)
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

    def key_lifetime(self, call: Call) -> timedelta:
        return KEY_LIFETIME

    async def adjust(self, call: Call) -> Result:
        # Never called: the gateway does not request incremental authorization at Stripe, so
        # its capabilities say no and an adjustment is refused before anything is sent.
        raise NotImplementedError("incremental authorization is not requested at Stripe")

    async def resume(self, call: Call, resume_token: str) -> Result:
        """The customer confirmed the PaymentIntent in the browser (Stripe.js handles 3-D
        Secure): Stripe's answer is the intent's status now."""
        return await self.status(replace(call, verb="authorize"))

    async def status(self, call: Call) -> Result:
        """What Stripe says now about the operation `call.verb` made with this processor key:
        read from Stripe's objects, never from a repeat of the request (Stripe forgets keys)."""
        if call.verb == "refund":
            return await self._refund_status(call)
        intent = await self._intent_of(call)
        if intent is None:
            return Result(Outcome.NOT_FOUND)
        if intent.status == "processing":
            raise OutcomeUnknown("stripe: the PaymentIntent is still processing")
        if call.verb == "authorize":
            return self._authorization_status(intent)
        if call.verb == "capture":
            return self._capture_status(call, intent)
        if intent.status == "canceled":
            return Result(Outcome.CANCELLED, intent.id)
        return Result(Outcome.NOT_FOUND)  # a cancel that did not happen

    async def _intent_of(self, call: Call) -> wire.PaymentIntent | None:
        """The PaymentIntent of the payment: by its id, or (an authorization whose answer was
        lost) by our payment id and processor key in its metadata."""
        if call.processor_transaction_id is not None:
            answer = await self._stripe.get(
                f"/v1/payment_intents/{call.processor_transaction_id}", {}
            )
            if answer.status == 404:
                return None
            return _readable(answer, wire.PaymentIntent)
        if call.verb != "authorize":
            return None  # a follow-up of an authorization Stripe never gave an id for
        query = f"metadata['payment_id']:'{_quoted(call.reference)}'"
        params: dict[str, Any] = {"query": query, "limit": 100}
        found: list[wire.PaymentIntent] = []
        while True:
            page = _readable(
                await self._stripe.get("/v1/payment_intents/search", params), wire.SearchResult
            )
            for intent in page.data:
                if intent.metadata.get("processor_key") == call.processor_key:
                    return intent
                found.append(intent)
            if not page.has_more or not page.next_page:
                break
            params["page"] = page.next_page
        unkeyed = [intent for intent in found if "processor_key" not in intent.metadata]
        if len(found) == 1 and unkeyed:
            return unkeyed[0]  # authorized before our key went into the metadata too
        if call.key_age < SEARCH_LAG:
            raise OutcomeUnknown("stripe: not found by search, which can lag up to an hour")
        return None

    @staticmethod
    def _authorization_status(intent: wire.PaymentIntent) -> Result:
        if intent.status == "succeeded":
            return Result(
                Outcome.MISMATCH,
                intent.id,
                _rejected(f"Stripe shows {intent.amount_received} captured: outside the gateway"),
            )
        if intent.status == "canceled":
            return Result(Outcome.FAILED, intent.id, _rejected("canceled at Stripe"))
        return StripeProcessor._intent_result(intent)

    @staticmethod
    def _capture_status(call: Call, intent: wire.PaymentIntent) -> Result:
        """A capture is read from the intent's amounts against the gateway's figures: what it
        recorded before, and what other captures of the payment have in flight. requires_capture
        with nothing more received is no capture; more than every capture could have taken was
        captured outside the gateway; anything between cannot tell which capture happened."""
        received, before, others = (
            intent.amount_received,
            call.captured_before,
            call.captures_in_flight,
        )
        if received == before:
            return Result(Outcome.NOT_FOUND)
        if received == before + call.amount + others:
            return Result(Outcome.CAPTURED, intent.id)  # this one, and every other in flight
        if others and before < received < before + call.amount + others:
            raise OutcomeUnknown("stripe: other captures are in flight; the amounts cannot tell")
        return Result(
            Outcome.MISMATCH,
            intent.id,
            _rejected(
                f"Stripe shows {received} captured on {intent.id}; the gateway recorded {before} "
                f"before this capture of {call.amount}: captured outside the gateway?"
            ),
        )

    async def _refund_status(self, call: Call) -> Result:
        """A refund is found by our processor key in its metadata. Every refund the gateway makes
        carries its key there, so a refund without one was made outside the gateway (the
        dashboard): then "ours is not there" is not taken as "it did not happen" (re-sending it
        would refund twice), and an operator reconciles."""
        params: dict[str, Any] = {"payment_intent": call.processor_transaction_id, "limit": 100}
        outside = 0
        while True:
            page = _readable(await self._stripe.get("/v1/refunds", params), wire.RefundList)
            for refund in page.data:
                key = refund.metadata.get("processor_key")
                if key == call.processor_key:
                    return self._refund_result(refund)
                if key is None and refund.status in ("succeeded", "pending", "requires_action"):
                    outside += refund.amount
            if not page.has_more or not page.data or page.data[-1].id is None:
                break
            params["starting_after"] = page.data[-1].id
        if not outside:
            return Result(Outcome.NOT_FOUND)
        return Result(
            Outcome.MISMATCH,
            call.processor_transaction_id,
            _rejected(
                f"Stripe shows {outside} refunded on {call.processor_transaction_id} by refunds "
                "the gateway did not make: refunded outside the gateway?"
            ),
        )

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

    async def _not_capturable(self, call: Call) -> Result:
        """After `payment_intent_unexpected_state` on a capture: did an earlier attempt capture?
        This call's figures may be older than other captures of the payment, so only "nothing
        was captured beyond them" is taken (amounts only grow): a definite no. Anything else is
        asked again by recovery, against the figures as they are then."""
        current = await self.status(replace(call, verb="capture"))
        if current.outcome is Outcome.NOT_FOUND:
            reason = _rejected("the PaymentIntent's state at Stripe does not allow a capture")
            return Result(Outcome.FAILED, call.processor_transaction_id, reason)
        raise OutcomeUnknown("stripe: the PaymentIntent cannot be captured now", retryable=False)

    async def _settled_state(self, call: Call, wanted: Outcome) -> Result:
        """After `payment_intent_unexpected_state`: did the earlier attempt already do it?"""
        current = await self.status(call)
        if current.outcome in (wanted, Outcome.MISMATCH):
            return current
        reason = _rejected(f"the PaymentIntent's state at Stripe does not allow a {call.verb}")
        return Result(Outcome.FAILED, call.processor_transaction_id, reason)


def _unexpected_state(answer: Answer) -> bool:
    return answer.status == 400 and answer.error().code == "payment_intent_unexpected_state"


def _readable(answer: Answer, kind: type[T]) -> T:
    """A status question's answer: an error is no answer about the operation (the key may have
    been revoked), so the outcome stays unknown."""
    if answer.status >= 400:
        raise OutcomeUnknown(f"stripe: {answer.status} to a status question", retryable=False)
    return answer.read(kind)


def _quoted(value: str) -> str:
    """A value inside a search query's single quotes."""
    return value.replace("\\", "\\\\").replace("'", "\\'")
