"""Every row of the lifecycle table, on the sandbox processor, over HTTP."""

from __future__ import annotations

from typing import Any

import pytest

from tests.integration.shop import (
    DECLINED_VISA,
    FAILED_VISA,
    MASTERCARD,
    VISA_CREDIT,
    Shop,
    assert_figures_add_up,
)


def error_of(response: Any, status: int, error_id: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert error["errorId"] == error_id, error
    return error  # type: ignore[no-any-return]


@pytest.mark.parametrize("card", ["4111111111111111", VISA_CREDIT, "5252525252525258", MASTERCARD])
async def test_a_test_card_that_authorizes_gives_an_authorized_payment(
    shop: Shop, card: str
) -> None:
    payment = await shop.create(1999, card=card, currency="USD")
    assert payment["status"] == "AUTHORIZED"
    assert payment["amount"] == 1999 and payment["currencyCode"] == "USD"
    [sale] = payment["transactions"]
    assert sale["type"] == sale["transactionType"] == "SALE"
    assert sale["status"] == sale["processorStatus"] == "AUTHORIZED"
    assert sale["processorTransactionId"]
    assert payment["processor"] == {
        "name": "SANDBOX",
        "processorMerchantId": payment["processor"]["processorMerchantId"],
        "amountCaptured": 0,
        "amountRefunded": 0,
    }
    assert payment["paymentMethod"]["paymentMethodData"]["last4Digits"] == card[-4:]
    assert "statusReason" not in payment


@pytest.mark.parametrize("card", [DECLINED_VISA, "5100000000000008"])
async def test_a_declined_card_is_a_200_with_status_declined_and_a_reason(
    shop: Shop, card: str
) -> None:
    payment = await shop.create(card=card)
    assert payment["status"] == "DECLINED"
    assert payment["statusReason"]["type"] == "ISSUER_DECLINED"
    assert payment["statusReason"]["declineType"] == "SOFT_DECLINE"
    [sale] = payment["transactions"]
    assert sale["status"] == "DECLINED"
    assert sale["processorStatusReason"]["type"] == "ISSUER_DECLINED"


@pytest.mark.parametrize("card", [FAILED_VISA, "5100000000000016"])
async def test_a_failing_card_is_a_200_with_status_failed(shop: Shop, card: str) -> None:
    payment = await shop.create(card=card)
    assert payment["status"] == "FAILED"
    assert payment["statusReason"]["type"] == "APPLICATION_ERROR"


async def test_a_full_capture_settles(shop: Shop) -> None:
    payment = await shop.create(1000)
    response = await shop.capture(payment["id"])
    assert response.status_code == 200
    settled = response.json()
    assert settled["status"] == "SETTLED"
    assert settled["processor"]["amountCaptured"] == 1000
    assert_figures_add_up(await shop.get(payment["id"]))


async def test_a_partial_final_capture_is_partially_settled_and_closes_captures(shop: Shop) -> None:
    payment = await shop.create(1000)
    captured = (await shop.capture(payment["id"], amount=400)).json()
    assert captured["status"] == "PARTIALLY_SETTLED"
    assert captured["processor"]["amountCaptured"] == 400
    again = await shop.capture(payment["id"], amount=100)
    error = error_of(again, 400, "InvalidPaymentStatus")
    assert error["paymentId"] == payment["id"] and error["paymentStatus"] == "PARTIALLY_SETTLED"


async def test_several_partial_captures_then_a_final_one_settle(shop: Shop) -> None:
    payment = await shop.create(1000)
    for amount, status in ((300, "PARTIALLY_SETTLED"), (200, "PARTIALLY_SETTLED")):
        response = await shop.capture(payment["id"], amount=amount, final=False)
        assert response.json()["status"] == status
    last = (await shop.capture(payment["id"])).json()  # the rest, final by default
    assert last["status"] == "SETTLED"
    assert last["processor"]["amountCaptured"] == 1000
    full = await shop.get(payment["id"])
    captures = [e for e in full["transactions"][0]["events"] if e["type"] == "CAPTURE_SUCCEEDED"]
    assert [(e["amount"], e["final"]) for e in captures] == [
        (300, False),
        (200, False),
        (500, True),
    ]
    assert full["transactions"][0]["events"][0]["type"] == "AUTHORIZATION_SUCCEEDED"
    assert_figures_add_up(full)


async def test_a_capture_above_what_is_capturable_is_422_and_changes_nothing(shop: Shop) -> None:
    payment = await shop.create(1000)
    await shop.capture(payment["id"], amount=600, final=False)
    too_much = await shop.capture(payment["id"], amount=401)
    error_of(too_much, 422, "UnprocessableCaptureAmount")
    after = await shop.get(payment["id"])
    assert after["processor"]["amountCaptured"] == 600
    assert after["status"] == "PARTIALLY_SETTLED"


@pytest.mark.parametrize("card", [DECLINED_VISA, FAILED_VISA])
async def test_capturing_a_payment_that_was_not_authorized_is_invalid_payment_status(
    shop: Shop, card: str
) -> None:
    payment = await shop.create(card=card)
    error = error_of(await shop.capture(payment["id"]), 400, "InvalidPaymentStatus")
    assert error["paymentStatus"] == payment["status"]


async def test_cancelling_an_authorized_payment_cancels_it(shop: Shop) -> None:
    payment = await shop.create()
    cancelled = (await shop.cancel(payment["id"], reason="customer changed their mind")).json()
    assert cancelled["status"] == "CANCELLED"
    events = (await shop.get(payment["id"]))["transactions"][0]["events"]
    assert events[-1]["type"] == "CANCELLATION_SUCCEEDED"
    error_of(await shop.capture(payment["id"]), 400, "InvalidPaymentStatus")
    error_of(await shop.refund(payment["id"]), 400, "InvalidPaymentStatus")


async def test_cancelling_after_a_non_final_capture_releases_the_rest_and_stays_partially_settled(
    shop: Shop,
) -> None:
    payment = await shop.create(1000)
    await shop.capture(payment["id"], amount=250, final=False)
    cancelled = (await shop.cancel(payment["id"])).json()
    assert cancelled["status"] == "PARTIALLY_SETTLED"
    assert cancelled["processor"]["amountCaptured"] == 250
    error_of(await shop.capture(payment["id"], amount=10), 400, "InvalidPaymentStatus")
    refunded = (await shop.refund(payment["id"])).json()
    assert refunded["processor"]["amountRefunded"] == 250


@pytest.mark.parametrize("how", ["settled", "final partial capture", "declined", "cancelled"])
async def test_cancel_is_refused_where_the_table_does_not_allow_it(shop: Shop, how: str) -> None:
    payment = await shop.create(1000, card=DECLINED_VISA if how == "declined" else VISA_CREDIT)
    if how == "settled":
        await shop.capture(payment["id"])
    elif how == "final partial capture":
        await shop.capture(payment["id"], amount=100)
    elif how == "cancelled":
        await shop.cancel(payment["id"])
    error_of(await shop.cancel(payment["id"]), 400, "InvalidPaymentStatus")


async def test_partial_and_multiple_refunds_leave_the_status_and_add_refund_transactions(
    shop: Shop,
) -> None:
    payment = await shop.create(1000)
    await shop.capture(payment["id"])
    first = (await shop.refund(payment["id"], amount=300, reason="damaged")).json()
    assert first["status"] == "SETTLED"
    assert first["processor"]["amountRefunded"] == 300
    second = (await shop.refund(payment["id"], amount=200, orderId="return-2")).json()
    assert second["processor"]["amountRefunded"] == 500
    refunds = [t for t in second["transactions"] if t["type"] == "REFUND"]
    assert [(t["amount"], t["status"], t.get("reason"), t["orderId"]) for t in refunds] == [
        (300, "SETTLED", "damaged", "order-1"),
        (200, "SETTLED", None, "return-2"),
    ]
    assert refunds[0]["processorTransactionId"] != refunds[1]["processorTransactionId"]
    rest = (await shop.refund(payment["id"])).json()  # default: what is left
    assert rest["processor"]["amountRefunded"] == 1000
    assert_figures_add_up(await shop.get(payment["id"]))


async def test_a_refund_above_the_refundable_amount_is_422_and_nothing_left_is_409(
    shop: Shop,
) -> None:
    payment = await shop.create(1000)
    await shop.capture(payment["id"], amount=600)
    error_of(await shop.refund(payment["id"], amount=601), 422, "UnprocessableRefundAmount")
    await shop.refund(payment["id"], amount=600)
    error = error_of(await shop.refund(payment["id"], amount=1), 409, "PaymentAlreadyRefunded")
    assert error["paymentId"] == payment["id"]
    error_of(await shop.refund(payment["id"]), 409, "PaymentAlreadyRefunded")


async def test_a_refund_can_target_one_capture_event(shop: Shop) -> None:
    payment = await shop.create(1000)
    await shop.capture(payment["id"], amount=300, final=False)
    await shop.capture(payment["id"], amount=700)
    events = (await shop.get(payment["id"]))["transactions"][0]["events"]
    first, second = [e for e in events if e["type"] == "CAPTURE_SUCCEEDED"]
    # Default amount: what is left of that capture.
    targeted = (await shop.refund(payment["id"], transactionEventId=first["id"])).json()
    assert targeted["processor"]["amountRefunded"] == 300
    error_of(
        await shop.refund(payment["id"], transactionEventId=first["id"]),
        409,
        "PaymentAlreadyRefunded",
    )
    error_of(
        await shop.refund(payment["id"], amount=701, transactionEventId=second["id"]),
        422,
        "UnprocessableRefundAmount",
    )
    assert (
        await shop.refund(payment["id"], amount=700, transactionEventId=second["id"])
    ).status_code == 200
    unknown = await shop.refund(
        payment["id"], amount=1, transactionEventId="00000000-0000-4000-8000-000000000000"
    )
    error_of(unknown, 400, "TransactionEventNotFound")


@pytest.mark.parametrize("card", [VISA_CREDIT, DECLINED_VISA])
async def test_refunding_a_payment_that_was_not_captured_is_invalid_payment_status(
    shop: Shop, card: str
) -> None:
    payment = await shop.create(card=card)
    error_of(await shop.refund(payment["id"]), 400, "InvalidPaymentStatus")


async def test_an_unknown_payment_and_another_merchants_payment_are_both_404(
    shop: Shop, client: Any, db: Any
) -> None:
    from tests.integration.conftest import new_merchant

    payment = await shop.create()
    stranger = Shop(client, (await new_merchant(db)).key)
    for who, payment_id in ((shop, "pay_nope"), (stranger, payment["id"])):
        for response in (
            await who.call("GET", f"/payments/{payment_id}"),
            await who.capture(payment_id),
            await who.cancel(payment_id),
            await who.refund(payment_id),
        ):
            error = error_of(response, 404, "PaymentNotFound")
            assert "paymentStatus" not in error


async def test_a_merchant_set_to_capture_on_create_gets_settled_payments(
    shop: Shop, merchant: Any, db: Any
) -> None:
    await db.execute("UPDATE merchants SET capture_on_create = true WHERE id = %s", (merchant.id,))
    payment = await shop.create(1500)
    assert payment["status"] == "SETTLED"
    assert payment["processor"]["amountCaptured"] == 1500
    declined = await shop.create(1500, card=DECLINED_VISA)
    assert declined["status"] == "DECLINED"


async def test_the_manual_processor_does_every_operation(
    shop: Shop, merchant: Any, db: Any
) -> None:
    await db.execute("UPDATE merchants SET processor = 'manual' WHERE id = %s", (merchant.id,))
    payment = await shop.create(800)
    assert payment["status"] == "AUTHORIZED"
    assert payment["processor"]["name"] == "MANUAL"
    assert (await shop.capture(payment["id"], amount=500, final=False)).json()[
        "status"
    ] == "PARTIALLY_SETTLED"
    assert (await shop.refund(payment["id"], amount=100)).json()["processor"][
        "amountRefunded"
    ] == 100
    assert (await shop.cancel(payment["id"])).json()["status"] == "PARTIALLY_SETTLED"


async def test_an_unknown_payment_method_token_is_refused(shop: Shop) -> None:
    response = await shop.call(
        "POST",
        "/payments",
        {"orderId": "o", "currencyCode": "EUR", "amount": 5, "paymentMethodToken": "tok_nope"},
    )
    error_of(response, 400, "PaymentMethodTokenNotFound")


@pytest.mark.parametrize(
    ("body", "path"),
    [
        # (no orderId, and no client session to give it)
        ({"currencyCode": "EUR", "amount": 5, "paymentMethodToken": "t"}, "$.orderId"),
        (
            {"orderId": "o", "currencyCode": "euro", "amount": 5, "paymentMethodToken": "t"},
            "$.currencyCode",
        ),
        (  # shaped like a currency, but not one of ISO 4217's (Primer's Currency enum)
            {"orderId": "o", "currencyCode": "XYZ", "amount": 5, "paymentMethodToken": "t"},
            "$.currencyCode",
        ),
        (
            {"orderId": "o", "currencyCode": "EUR", "amount": -5, "paymentMethodToken": "t"},
            "$.amount",
        ),
        (
            {"orderId": "o", "currencyCode": "EUR", "amount": 5.5, "paymentMethodToken": "t"},
            "$.amount",
        ),
        (
            {
                "orderId": "o",
                "currencyCode": "EUR",
                "amount": 5,
                "paymentMethodToken": "t",
                "customer": {"email": "a@b.c"},
            },
            "$.customer",
        ),
        (
            {
                "orderId": "o",
                "currencyCode": "EUR",
                "amount": 5,
                "paymentMethodToken": "t",
                "metadata": {"": 1},
            },
            "$.metadata",
        ),
    ],
)
async def test_a_malformed_create_is_422_and_creates_nothing(
    shop: Shop, body: dict[str, Any], path: str
) -> None:
    response = await shop.call("POST", "/payments", body)
    error = error_of(response, 422, "RequestValidationError")
    [model] = error["validationErrors"]
    assert model["model"] == "PaymentCreationAPIRequest"
    assert model["errors"][0]["path"] == path
    listing = (await shop.call("GET", "/payments")).json()
    assert listing["data"] == []


async def test_customer_order_metadata_and_options_are_kept_and_returned(shop: Shop) -> None:
    customer = {
        "emailAddress": "ada@example.com",
        "firstName": "Ada",
        "billingAddress": {"city": "London", "countryCode": "GB"},
    }
    payment = await shop.create(
        700,
        customerId="cus-1",
        customer=customer,
        order={"countryCode": "GB"},
        metadata={"cart": "c-9", "nested": {"a": 1}},
        paymentMethod={"descriptor": "SHOP*ADA", "paymentType": "ECOMMERCE"},
    )
    again = await shop.get(payment["id"])
    assert again["customer"] == customer and again["customerId"] == "cus-1"
    assert again["order"] == {"countryCode": "GB"}
    assert again["metadata"] == {"cart": "c-9", "nested": {"a": 1}}
    assert again["paymentMethod"]["descriptor"] == "SHOP*ADA"
    assert again["paymentMethod"]["paymentType"] == "ECOMMERCE"
