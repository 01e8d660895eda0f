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
from urllib.parse import urlencode

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
from processors.errors import OutcomeUnknown, TransientError

API_BASE = "https://api.stripe.com"
API_VERSION = "2023-08-16"  # the version of the spec the requests are checked against
TIMEOUT = httpx.Timeout(connect=5.0, read=30.0, write=10.0, pool=5.0)

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


def form_encode(params: Mapping[str, Any], prefix: str = "") -> list[tuple[str, str]]:
    """Stripe's nested form encoding: {"a": {"b": 1}, "l": ["x"]} -> a[b]=1&l[0]=x."""
    pairs: list[tuple[str, str]] = []
    for key, value in params.items():
        name = f"{prefix}[{key}]" if prefix else str(key)
        if value is None:
            continue
        if isinstance(value, Mapping):
            pairs += form_encode(value, name)
        elif isinstance(value, list | tuple):
            pairs += form_encode({str(i): item for i, item in enumerate(value)}, name)
        elif isinstance(value, bool):
            pairs.append((name, "true" if value else "false"))
        else:
            pairs.append((name, str(value)))
    return pairs


def decline_reason(error: Mapping[str, Any]) -> StatusReason:
    code = error.get("decline_code") or error.get("code") or "generic_decline"
    primer_code, decline_type = DECLINES.get(code, (DeclineCode.UNKNOWN, SOFT))
    return StatusReason(
        StatusReasonType.ISSUER_DECLINED, decline_type, primer_code, error.get("message")
    )


def rejected_reason(status: int, error: Mapping[str, Any]) -> StatusReason:
    message = error.get("message") or f"Stripe answered {status}"
    if status == 401:
        message = "Stripe refused the API key of this processor account"
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
        self._secret_key = secret_key
        self._base = api_base.rstrip("/")
        self._multicapture = multicapture
        self.capabilities = Capabilities(multicapture=multicapture)
        self._client = client or httpx.AsyncClient(
            timeout=TIMEOUT, limits=httpx.Limits(max_connections=100, max_keepalive_connections=20)
        )

    def __repr__(self) -> str:  # never the secret
        return f"StripeProcessor(api_base={self._base!r}, multicapture={self._multicapture})"

    async def aclose(self) -> None:
        await self._client.aclose()

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
        status, body = await self._post("/v1/payment_intents", params, call.processor_key)
        if status == 402:
            return self._declined(body)
        if status >= 400:
            return self._failed(status, body)
        return self._intent_result(body)

    async def capture(self, call: Call) -> Result:
        if not call.final and not self._multicapture:
            return Result(
                Outcome.FAILED,
                call.processor_transaction_id,
                StatusReason(
                    StatusReasonType.GATEWAY_REJECTED,
                    None,
                    DeclineCode.ERROR,
                    "A non-final capture needs multicapture on this Stripe account",
                ),
            )
        params: dict[str, Any] = {"amount_to_capture": call.amount}
        if not call.final:
            params["final_capture"] = False
        intent = call.processor_transaction_id
        status, body = await self._post(
            f"/v1/payment_intents/{intent}/capture", params, call.processor_key
        )
        if _unexpected_state(status, body):
            return await self._settled_state(call, wanted=Outcome.CAPTURED)
        if status >= 400:
            return self._declined(body) if status == 402 else self._failed(status, body)
        return Result(Outcome.CAPTURED, intent)

    async def cancel(self, call: Call) -> Result:
        intent = call.processor_transaction_id
        status, body = await self._post(
            f"/v1/payment_intents/{intent}/cancel", {}, call.processor_key
        )
        if _unexpected_state(status, body):
            return await self._settled_state(call, wanted=Outcome.CANCELLED)
        if status >= 400:
            return self._failed(status, body)
        return Result(Outcome.CANCELLED, intent)

    async def refund(self, call: Call) -> Result:
        params = {
            "payment_intent": call.processor_transaction_id,
            "amount": call.amount,
            "metadata": {"payment_id": call.reference, "processor_key": call.processor_key},
        }
        status, body = await self._post("/v1/refunds", params, call.processor_key)
        if status >= 400:
            return self._declined(body) if status == 402 else self._failed(status, body)
        return self._refund_result(body)

    async def status(self, call: Call) -> Result:
        """What Stripe says now about the operation `call.verb` made with this processor key."""
        if call.verb == "refund":
            status, body = await self._get(
                "/v1/refunds", {"payment_intent": call.processor_transaction_id, "limit": 100}
            )
            if status >= 400:
                return self._failed(status, body)
            for refund in body.get("data", []):
                if refund.get("metadata", {}).get("processor_key") == call.processor_key:
                    return self._refund_result(refund)
            return Result(Outcome.NOT_FOUND)
        if call.processor_transaction_id is None:
            return Result(Outcome.NOT_FOUND)  # the authorization never got an answer with an id
        status, body = await self._get(f"/v1/payment_intents/{call.processor_transaction_id}", {})
        if status == 404:
            return Result(Outcome.NOT_FOUND)
        if status >= 400:
            return self._failed(status, body)
        return self._intent_result(body)

    # ---------------------------------------------------------------- answers

    def _intent_result(self, intent: Mapping[str, Any]) -> Result:
        outcome = _INTENT_OUTCOMES.get(intent.get("status", ""), Outcome.FAILED)
        reason = None
        action = None
        if outcome is Outcome.PENDING and intent.get("status") == "requires_action":
            action = "3DS_AUTHENTICATION"
        if outcome is Outcome.DECLINED:
            reason = decline_reason(intent.get("last_payment_error") or {})
        return Result(outcome, intent.get("id"), reason, action)

    @staticmethod
    def _refund_result(refund: Mapping[str, Any]) -> Result:
        state = refund.get("status")
        if state in ("succeeded", "pending", "requires_action"):
            return Result(Outcome.REFUNDED, refund.get("id"))
        reason = StatusReason(
            StatusReasonType.GATEWAY_REJECTED,
            None,
            DeclineCode.ERROR,
            f"Stripe refund {state}: {refund.get('failure_reason') or 'no reason given'}",
        )
        return Result(Outcome.FAILED, refund.get("id"), reason)

    @staticmethod
    def _declined(body: Mapping[str, Any]) -> Result:
        error = body.get("error", {})
        intent = error.get("payment_intent", {}) or {}
        return Result(Outcome.DECLINED, intent.get("id"), decline_reason(error))

    @staticmethod
    def _failed(status: int, body: Mapping[str, Any]) -> Result:
        return Result(Outcome.FAILED, None, rejected_reason(status, body.get("error", {})))

    async def _settled_state(self, call: Call, *, wanted: Outcome) -> Result:
        """After `payment_intent_unexpected_state`: did the earlier attempt already do it?"""
        current = await self.status(call)
        if current.outcome is wanted:
            return current
        if wanted is Outcome.CAPTURED and current.outcome is Outcome.CANCELLED:
            # A partial capture without multicapture leaves a succeeded intent; a cancelled one
            # was never captured.
            return Result(Outcome.FAILED, current.processor_transaction_id, current.reason)
        reason = StatusReason(
            StatusReasonType.GATEWAY_REJECTED,
            None,
            DeclineCode.ERROR,
            f"the PaymentIntent is {current.outcome.value.lower()}",
        )
        return Result(Outcome.FAILED, current.processor_transaction_id, reason)

    # ---------------------------------------------------------------- transport

    def _headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self._secret_key}", "Stripe-Version": API_VERSION}

    async def _post(
        self, path: str, params: Mapping[str, Any], idempotency_key: str
    ) -> tuple[int, dict[str, Any]]:
        headers = {
            **self._headers(),
            "Idempotency-Key": idempotency_key,
            "Content-Type": "application/x-www-form-urlencoded",
        }
        body = urlencode(form_encode(params))
        return await self._send("POST", path, headers=headers, content=body.encode())

    async def _get(self, path: str, params: Mapping[str, Any]) -> tuple[int, dict[str, Any]]:
        return await self._send("GET", path, headers=self._headers(), params=form_encode(params))

    async def _send(self, method: str, path: str, **kwargs: Any) -> tuple[int, dict[str, Any]]:
        try:
            response = await self._client.request(method, self._base + path, **kwargs)
        except (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout) as error:
            raise TransientError(f"stripe: {type(error).__name__}") from None  # never sent
        except httpx.TransportError as error:
            # Sent, perhaps received: a read timeout, a reset. Only the key makes a retry safe.
            raise OutcomeUnknown(f"stripe: {type(error).__name__}") from None
        should_retry = response.headers.get("Stripe-Should-Retry")
        status = response.status_code
        retryable = status in (409, 429) or status >= 500
        if should_retry is not None:
            retryable = should_retry == "true"
        if retryable:
            if status == 429 or (status == 409 and should_retry is None):
                raise TransientError(f"stripe: {status}")
            raise OutcomeUnknown(f"stripe: {status}")
        if status >= 500:
            # Stripe says a retry will not help: the outcome is not known, and not retried now.
            raise OutcomeUnknown(f"stripe: {status}, not to be retried", retryable=False)
        try:
            body = response.json()
        except ValueError:
            body = None
        if not isinstance(body, dict):
            if status < 400:
                # Stripe said yes to something, but what it did cannot be read: ask again with the
                # same key (Stripe answers a repeat with the first answer).
                raise OutcomeUnknown(f"stripe: {status} with an unreadable body")
            body = {}
        return status, body


def _unexpected_state(status: int, body: Mapping[str, Any]) -> bool:
    return status == 400 and body.get("error", {}).get("code") == "payment_intent_unexpected_state"
