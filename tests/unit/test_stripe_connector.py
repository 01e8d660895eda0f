"""The Stripe connector alone, with Stripe faked by respx: encoding, answers, transport faults."""

from __future__ import annotations

from datetime import timedelta
from typing import Any
from urllib.parse import parse_qsl

import httpx
import pytest
import respx
import structlog

from processors.base import Call, DeclineCode, DeclineType, Outcome
from processors.errors import OutcomeUnknown, TransientError
from processors.stripe import API_VERSION, DECLINES, StripeProcessor, form_encode
from tests.integration.fake_stripe import check

BASE = "https://api.stripe.test"
SECRET = "sk_test_" + "s" * 24


@pytest.fixture
def stripe() -> StripeProcessor:
    return StripeProcessor(SECRET, api_base=BASE, multicapture=True)


def call(**fields: Any) -> Call:
    base: dict[str, Any] = dict(
        processor_key="mer_1:authorize:key1",
        reference="pay_1",
        amount=1234,
        currency_code="EUR",
        payment_method_token="pm_card_visa",
        processor_transaction_id="pi_1",
    )
    return Call(**{**base, **fields})


def sent(route: respx.Route) -> dict[str, str]:
    request = route.calls.last.request
    check(request)
    return dict(parse_qsl(request.read().decode()))


def test_form_encoding_nests_maps_and_lists() -> None:
    assert form_encode({"a": 1, "m": {"k": "v", "n": {"x": True}}, "l": ["c", "d"], "z": None}) == [
        ("a", "1"),
        ("m[k]", "v"),
        ("m[n][x]", "true"),
        ("l[0]", "c"),
        ("l[1]", "d"),
    ]


@respx.mock
async def test_an_authorization_sends_what_stripe_needs(stripe: StripeProcessor) -> None:
    route = respx.post(f"{BASE}/v1/payment_intents").respond(
        200, json={"id": "pi_9", "status": "requires_capture"}
    )
    result = await stripe.authorize(call())
    assert (result.outcome, result.processor_transaction_id) == (Outcome.AUTHORIZED, "pi_9")
    request = route.calls.last.request
    assert request.headers["Authorization"] == f"Bearer {SECRET}"
    assert request.headers["Stripe-Version"] == API_VERSION
    assert request.headers["Idempotency-Key"] == "mer_1:authorize:key1"
    assert sent(route) == {
        "amount": "1234",
        "currency": "eur",
        "payment_method": "pm_card_visa",
        "payment_method_types[0]": "card",
        "capture_method": "manual",
        "confirm": "true",
        "metadata[payment_id]": "pay_1",
        "metadata[processor_key]": "mer_1:authorize:key1",
        "payment_method_options[card][request_multicapture]": "if_available",
    }


@pytest.mark.parametrize(("decline_code", "expected"), sorted(DECLINES.items()))
@respx.mock
async def test_every_known_decline_code_maps_to_primers_vocabulary(
    stripe: StripeProcessor, decline_code: str, expected: tuple[DeclineCode, DeclineType]
) -> None:
    respx.post(f"{BASE}/v1/payment_intents").respond(
        402,
        json={
            "error": {
                "type": "card_error",
                "code": "card_declined",
                "decline_code": decline_code,
                "message": "declined",
                "payment_intent": {"id": "pi_d", "status": "requires_payment_method"},
            }
        },
    )
    result = await stripe.authorize(call())
    assert result.outcome is Outcome.DECLINED
    assert result.reason is not None
    assert (result.reason.code, result.reason.decline_type) == expected
    assert result.processor_transaction_id == "pi_d"


@respx.mock
async def test_an_unknown_decline_code_is_unknown_and_soft(stripe: StripeProcessor) -> None:
    respx.post(f"{BASE}/v1/payment_intents").respond(
        402, json={"error": {"type": "card_error", "decline_code": "brand_new_code"}}
    )
    reason = (await stripe.authorize(call())).reason
    assert reason is not None and reason.code is DeclineCode.UNKNOWN
    assert reason.decline_type is DeclineType.SOFT_DECLINE


@respx.mock
async def test_3ds_is_pending_with_a_required_action(stripe: StripeProcessor) -> None:
    respx.post(f"{BASE}/v1/payment_intents").respond(
        200, json={"id": "pi_3", "status": "requires_action"}
    )
    result = await stripe.authorize(call())
    assert (result.outcome, result.required_action) == (Outcome.PENDING, "3DS_AUTHENTICATION")


@pytest.mark.parametrize(
    ("status", "kind"),
    [
        (400, "invalid_request_error"),
        (401, "invalid_request_error"),
        (404, "invalid_request_error"),
    ],
)
@respx.mock
async def test_other_4xx_are_failures_not_retried(
    stripe: StripeProcessor, status: int, kind: str
) -> None:
    route = respx.post(f"{BASE}/v1/payment_intents").respond(
        status,
        json={"error": {"type": kind, "message": f"Invalid API Key provided: {SECRET[:10]}***"}},
    )
    result = await stripe.authorize(call())
    assert result.outcome is Outcome.FAILED and route.call_count == 1
    assert result.reason is not None and SECRET not in str(result.reason)


@respx.mock
async def test_captures_final_and_non_final(stripe: StripeProcessor) -> None:
    route = respx.post(f"{BASE}/v1/payment_intents/pi_1/capture").respond(
        200, json={"id": "pi_1", "status": "requires_capture"}
    )
    assert (await stripe.capture(call(amount=300, final=False))).outcome is Outcome.CAPTURED
    assert sent(route) == {"amount_to_capture": "300", "final_capture": "false"}
    await stripe.capture(call(amount=700, final=True))
    assert sent(route) == {"amount_to_capture": "700"}


async def test_a_non_final_capture_without_multicapture_is_refused_before_any_call() -> None:
    plain = StripeProcessor(SECRET, api_base=BASE)
    with respx.mock(assert_all_called=False) as router:
        route = router.post(f"{BASE}/v1/payment_intents/pi_1/capture")
        result = await plain.capture(call(amount=300, final=False))
    assert result.outcome is Outcome.FAILED and route.call_count == 0


@respx.mock
async def test_unexpected_state_on_a_retried_capture_asks_for_the_intent(
    stripe: StripeProcessor,
) -> None:
    respx.post(f"{BASE}/v1/payment_intents/pi_1/capture").respond(
        400,
        json={
            "error": {"type": "invalid_request_error", "code": "payment_intent_unexpected_state"}
        },
    )
    asked = respx.get(f"{BASE}/v1/payment_intents/pi_1").mock(
        side_effect=[
            httpx.Response(200, json={"id": "pi_1", "status": "canceled", "amount_received": 0}),
            httpx.Response(
                200, json={"id": "pi_1", "status": "succeeded", "amount_received": 1234}
            ),
        ]
    )
    # Nothing was captured: a definite no, at once.
    assert (await stripe.capture(call())).outcome is Outcome.FAILED
    check(asked.calls.last.request)
    # Something was: this call's figures may be stale, so recovery asks against fresh ones.
    with pytest.raises(OutcomeUnknown) as unknown:
        await stripe.capture(call())
    assert unknown.value.retryable is False
    assert asked.call_count == 2


def intent(status: str, received: int = 0, **fields: Any) -> dict[str, Any]:
    return {"id": "pi_1", "status": status, "amount": 1234, "amount_received": received, **fields}


@respx.mock
async def test_the_status_of_a_capture_with_others_in_flight_is_told_only_when_the_amounts_can(
    stripe: StripeProcessor,
) -> None:
    respx.get(f"{BASE}/v1/payment_intents/pi_1").respond(200, json=intent("requires_capture", 500))
    # 500 received, this capture 500, another of 500 in flight: which one was it?
    with pytest.raises(OutcomeUnknown):
        await stripe.status(call(verb="capture", amount=500, captures_in_flight=500))
    every = await stripe.status(call(verb="capture", amount=250, captures_in_flight=250))
    assert every.outcome is Outcome.CAPTURED  # 500 = 250 + 250: both happened


@respx.mock
async def test_a_refund_made_in_the_dashboard_is_a_mismatch_not_a_missing_refund(
    stripe: StripeProcessor,
) -> None:
    theirs = {"id": "re_d", "amount": 300, "status": "succeeded", "metadata": {}}
    respx.get(f"{BASE}/v1/refunds").respond(200, json={"data": [theirs], "has_more": False})
    asked = call(verb="refund", processor_key="mine", amount=300)
    assert (await stripe.status(asked)).outcome is Outcome.MISMATCH
    # Even with other refunds of the gateway's in flight: theirs carry their keys, this one none.
    busy = call(verb="refund", processor_key="mine", amount=200, refunds_in_flight=300)
    assert (await stripe.status(busy)).outcome is Outcome.MISMATCH


@respx.mock
async def test_other_refunds_of_the_gateway_do_not_make_a_missing_refund_a_mismatch(
    stripe: StripeProcessor,
) -> None:
    ours = {"id": "re_o", "amount": 300, "status": "succeeded", "metadata": {"processor_key": "k"}}
    respx.get(f"{BASE}/v1/refunds").respond(200, json={"data": [ours], "has_more": False})
    missing = call(verb="refund", processor_key="mine", amount=100)
    assert (await stripe.status(missing)).outcome is Outcome.NOT_FOUND


@respx.mock
async def test_an_authorization_from_before_keys_went_into_metadata_is_still_found(
    stripe: StripeProcessor,
) -> None:
    legacy = intent("requires_capture", metadata={"payment_id": "pay_1"})
    respx.get(f"{BASE}/v1/payment_intents/search").respond(
        200, json={"data": [legacy], "has_more": False}
    )
    found = await stripe.status(call(verb="authorize", processor_transaction_id=None))
    assert (found.outcome, found.processor_transaction_id) == (Outcome.AUTHORIZED, "pi_1")


@pytest.mark.parametrize(
    ("answer", "before", "expected"),
    [
        # requires_capture never reads as captured: nothing more was received.
        (intent("requires_capture"), 0, Outcome.NOT_FOUND),
        (intent("succeeded", 1234), 0, Outcome.CAPTURED),
        # A non-final capture of a multicapture: still requires_capture, with more received.
        (intent("requires_capture", 1534), 300, Outcome.CAPTURED),
        (intent("requires_capture", 300), 300, Outcome.NOT_FOUND),
        # Captured in Stripe's dashboard, for another amount: not this capture.
        (intent("succeeded", 999), 0, Outcome.MISMATCH),
        (intent("succeeded", 1234), 300, Outcome.MISMATCH),
        (intent("canceled"), 0, Outcome.NOT_FOUND),
    ],
)
@respx.mock
async def test_the_status_of_a_capture_is_read_from_the_intents_amounts(
    stripe: StripeProcessor, answer: dict[str, Any], before: int, expected: Outcome
) -> None:
    asked = respx.get(f"{BASE}/v1/payment_intents/pi_1").respond(200, json=answer)
    result = await stripe.status(call(verb="capture", captured_before=before))
    assert result.outcome is expected
    check(asked.calls.last.request)
    if expected is Outcome.MISMATCH:
        assert result.reason is not None and "outside the gateway" in (result.reason.message or "")


@respx.mock
async def test_the_status_of_a_cancel(stripe: StripeProcessor) -> None:
    respx.get(f"{BASE}/v1/payment_intents/pi_1").mock(
        side_effect=[
            httpx.Response(200, json=intent("canceled")),
            httpx.Response(200, json=intent("requires_capture")),
            httpx.Response(200, json=intent("processing")),
        ]
    )
    assert (await stripe.status(call(verb="cancel"))).outcome is Outcome.CANCELLED
    assert (await stripe.status(call(verb="cancel"))).outcome is Outcome.NOT_FOUND
    with pytest.raises(OutcomeUnknown):
        await stripe.status(call(verb="cancel"))


@respx.mock
async def test_a_lost_authorization_is_found_by_search_on_its_metadata(
    stripe: StripeProcessor,
) -> None:
    mine = intent("requires_capture", metadata={"payment_id": "pay_1", "processor_key": "k1"})
    other = {**mine, "id": "pi_0", "metadata": {"payment_id": "pay_1", "processor_key": "k0"}}
    search = respx.get(f"{BASE}/v1/payment_intents/search").mock(
        side_effect=[
            httpx.Response(200, json={"data": [other, mine], "has_more": False}),
            httpx.Response(200, json={"data": [other], "has_more": False}),
            httpx.Response(200, json={"data": [other], "has_more": False}),
        ]
    )
    lost = call(verb="authorize", processor_key="k1", processor_transaction_id=None)
    found = await stripe.status(lost)
    assert (found.outcome, found.processor_transaction_id) == (Outcome.AUTHORIZED, "pi_1")
    request = search.calls.last.request
    check(request)
    assert request.url.params["query"] == "metadata['payment_id']:'pay_1'"
    # Search can lag up to an hour: not finding it soon after is no answer...
    with pytest.raises(OutcomeUnknown):
        await stripe.status(lost)
    # ...but a day later, it is a definite "did not happen".
    later = call(
        verb="authorize", processor_key="k1", processor_transaction_id=None, key_age=timedelta(1)
    )
    assert (await stripe.status(later)).outcome is Outcome.NOT_FOUND


@respx.mock
async def test_an_error_to_a_status_question_is_no_answer(stripe: StripeProcessor) -> None:
    respx.get(f"{BASE}/v1/payment_intents/pi_1").respond(
        401, json={"error": {"type": "invalid_request_error", "message": "Invalid API Key"}}
    )
    respx.get(f"{BASE}/v1/refunds").respond(403, json={"error": {"type": "invalid_request_error"}})
    for verb in ("authorize", "capture", "cancel", "refund"):
        with pytest.raises(OutcomeUnknown):
            await stripe.status(call(verb=verb))


def test_stripe_honours_a_key_for_24_hours(stripe: StripeProcessor) -> None:
    assert stripe.key_lifetime(call()) == timedelta(hours=24)


@respx.mock
async def test_cancel_and_refunds(stripe: StripeProcessor) -> None:
    cancel = respx.post(f"{BASE}/v1/payment_intents/pi_1/cancel").respond(
        200, json={"id": "pi_1", "status": "canceled"}
    )
    assert (await stripe.cancel(call())).outcome is Outcome.CANCELLED
    check(cancel.calls.last.request)
    refund = respx.post(f"{BASE}/v1/refunds").respond(
        200, json={"id": "re_1", "status": "succeeded"}
    )
    result = await stripe.refund(call(amount=250, processor_key="k-refund"))
    assert (result.outcome, result.processor_transaction_id) == (Outcome.REFUNDED, "re_1")
    assert sent(refund) == {
        "payment_intent": "pi_1",
        "amount": "250",
        "metadata[payment_id]": "pay_1",
        "metadata[processor_key]": "k-refund",
    }


@respx.mock
async def test_the_status_of_a_refund_is_found_by_its_processor_key(
    stripe: StripeProcessor,
) -> None:
    listing = respx.get(f"{BASE}/v1/refunds").respond(
        200,
        json={
            "data": [
                {"id": "re_a", "status": "succeeded", "metadata": {"processor_key": "other"}},
                {"id": "re_b", "status": "succeeded", "metadata": {"processor_key": "mine"}},
            ]
        },
    )
    result = await stripe.status(call(verb="refund", processor_key="mine"))
    assert (result.outcome, result.processor_transaction_id) == (Outcome.REFUNDED, "re_b")
    check(listing.calls.last.request)
    assert (
        await stripe.status(call(verb="refund", processor_key="absent"))
    ).outcome is Outcome.NOT_FOUND


@respx.mock
async def test_the_status_of_a_refund_reads_every_page(stripe: StripeProcessor) -> None:
    first = [{"id": f"re_{n}", "status": "succeeded", "metadata": {}} for n in range(100)]
    listing = respx.get(f"{BASE}/v1/refunds").mock(
        side_effect=[
            httpx.Response(200, json={"data": first, "has_more": True}),
            httpx.Response(
                200,
                json={
                    "data": [
                        {"id": "re_x", "status": "pending", "metadata": {"processor_key": "k"}}
                    ],
                    "has_more": False,
                },
            ),
        ]
    )
    result = await stripe.status(call(verb="refund", processor_key="k"))
    assert (result.outcome, result.processor_transaction_id) == (Outcome.REFUNDED, "re_x")
    assert listing.calls.last.request.url.params["starting_after"] == "re_99"


@pytest.mark.parametrize(
    ("answer", "raised", "retryable"),
    [
        (httpx.Response(500), OutcomeUnknown, True),
        (httpx.Response(503, headers={"Stripe-Should-Retry": "false"}), OutcomeUnknown, False),
        (httpx.Response(429), TransientError, True),
        (httpx.Response(409), TransientError, True),
        (httpx.Response(400, headers={"Stripe-Should-Retry": "true"}), OutcomeUnknown, True),
        (httpx.ConnectError("refused"), TransientError, True),
        (httpx.ReadTimeout("slow"), OutcomeUnknown, True),
    ],
)
@respx.mock
async def test_transport_faults_are_exceptions_that_say_whether_to_retry(
    stripe: StripeProcessor, answer: Any, raised: type[Exception], retryable: bool
) -> None:
    respx.post(f"{BASE}/v1/payment_intents/pi_1/capture").mock(side_effect=[answer])
    with pytest.raises(raised) as caught:
        await stripe.capture(call())
    assert caught.value.retryable is retryable  # type: ignore[attr-defined]


@respx.mock
async def test_should_retry_false_on_a_409_is_a_definitive_failure(stripe: StripeProcessor) -> None:
    respx.post(f"{BASE}/v1/refunds").respond(
        409, headers={"Stripe-Should-Retry": "false"}, json={"error": {"type": "idempotency_error"}}
    )
    assert (await stripe.refund(call())).outcome is Outcome.FAILED


def test_the_secret_never_shows_in_the_processors_repr(stripe: StripeProcessor) -> None:
    assert SECRET not in repr(stripe)


@respx.mock
@pytest.mark.parametrize("verb", ["authorize", "capture", "cancel", "refund"])
async def test_a_success_whose_body_cannot_be_read_is_an_unknown_outcome(
    stripe: StripeProcessor, verb: str
) -> None:
    # Stripe said yes to something: calling it a failure would release money that may be held.
    for path in ("/v1/payment_intents", "/v1/payment_intents/pi_1/capture"):
        respx.post(f"{BASE}{path}").respond(200, content=b"<html>proxy says hi</html>")
    respx.post(f"{BASE}/v1/payment_intents/pi_1/cancel").respond(200, content=b"not json")
    respx.post(f"{BASE}/v1/refunds").respond(200, content=b"[]")
    with pytest.raises(OutcomeUnknown):
        await getattr(stripe, verb)(call())


@respx.mock
async def test_each_call_is_logged_without_the_secret_or_the_body(
    stripe: StripeProcessor,
) -> None:
    respx.post(f"{BASE}/v1/payment_intents").respond(
        200, json={"id": "pi_9", "status": "requires_capture"}, headers={"Request-Id": "req_7"}
    )
    with structlog.testing.capture_logs() as logs:
        await stripe.authorize(call(payment_method_token="pm_card_secretish"))
    [entry] = [e for e in logs if e["event"] == "stripe_call"]
    assert entry["status"] == 200 and entry["request_id"] == "req_7"
    assert entry["idempotency_key"] == "mer_1:authorize:key1"
    assert SECRET not in repr(logs) and "pm_card_secretish" not in repr(logs)


@respx.mock
async def test_a_key_stripe_holds_for_another_request_is_an_unknown_outcome_not_a_refusal(
    stripe: StripeProcessor,
) -> None:
    """Stripe answers 400 idempotency_error when a key comes back with other parameters: the
    first request under it may have been done, so this is no "failed" (which could let the
    payment go to another account, or be given up) but a question for status."""
    respx.post(f"{BASE}/v1/payment_intents").respond(
        400,
        json={
            "error": {
                "type": "idempotency_error",
                "message": "Keys for idempotent requests can only be used with the same parameters",
            }
        },
    )
    with pytest.raises(OutcomeUnknown) as unknown:
        await stripe.authorize(call())
    assert not unknown.value.retryable
