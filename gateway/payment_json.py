"""Payments as Primer's API v2.4 shows them (PaymentAPIResponse, PaymentSummaryAPISchema).

Primer's TransactionOverviewAPISchema requires `type`, `processor` and `status` while its
properties spell them `transactionType`, `processorName` and `processorStatus`: both spellings are
sent, with the same values (see the reference README).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from workflows.records import Event, Payment, PaymentView, Transaction

_OPTION_FIELDS = ("descriptor", "paymentType", "authorizationType")


def _date(value: datetime) -> str:
    return value.isoformat()


def card_data(card: dict[str, Any]) -> dict[str, Any]:
    """Primer's PaymentCardTokenAPISchema from what the gateway kept of a card."""
    data = {
        "first6Digits": card["first6"],
        "last4Digits": card["last4"],
        "expirationMonth": card["expirationMonth"],
        "expirationYear": card["expirationYear"],
        "network": card["network"],
        "isNetworkTokenized": False,
    }
    if card.get("holder"):
        data["cardholderName"] = card["holder"]
    return data


def payment(view: PaymentView, *, expand_events: bool = False) -> dict[str, Any]:
    p = view.payment
    body: dict[str, Any] = {
        "id": p.id,
        "date": _date(p.created_at),
        "dateUpdated": _date(p.updated_at),
        "status": p.status,
        "cardTokenType": p.card_token_type,
        "orderId": p.order_id,
        "currencyCode": p.currency_code,
        "amount": p.amount,
    }
    for name, value in (
        ("customerId", p.customer_id),
        ("customer", p.customer),
        ("order", p.order_details),
        ("metadata", p.metadata),
    ):
        if value is not None:
            body[name] = value
    method: dict[str, Any] = {
        "paymentMethodToken": p.payment_method_token,
        "paymentMethodType": "PAYMENT_CARD",
        "isVaulted": False,
    }
    if p.card is not None:  # none for a processor's own token: the gateway never saw the card
        method["paymentMethodData"] = card_data(p.card)
    for name in _OPTION_FIELDS:
        if p.payment_options and p.payment_options.get(name) is not None:
            method[name] = p.payment_options[name]
    body["paymentMethod"] = method
    body["processor"] = {
        "name": view.processor_name,
        "processorMerchantId": p.processor_merchant_id,
        "amountCaptured": p.amount_captured,
        "amountRefunded": p.amount_refunded,
    }
    if p.status_reason:
        body["statusReason"] = p.status_reason
    if p.required_action:
        body["requiredAction"] = p.required_action
    events_by_transaction: dict[str, list[Event]] = {}
    for event in view.events:
        events_by_transaction.setdefault(event.transaction_id, []).append(event)
    body["transactions"] = [
        transaction(view, t, events_by_transaction.get(t.id, []) if expand_events else None)
        for t in view.transactions
    ]
    return body


def transaction(view: PaymentView, t: Transaction, events: list[Event] | None) -> dict[str, Any]:
    p: Payment = view.payment
    body: dict[str, Any] = {
        "id": t.id,
        "date": _date(t.created_at),
        "amount": t.amount,
        "currencyCode": t.currency_code,
        "transactionType": t.type,
        "type": t.type,
        "processorName": view.processor_name,
        "processor": view.processor_name,
        "processorMerchantId": p.processor_merchant_id,
        "processorStatus": t.processor_status,
        "status": t.processor_status,
        "cardTokenType": p.card_token_type,
    }
    if t.order_id is not None:
        body["orderId"] = t.order_id
    if t.processor_transaction_id is not None:
        body["processorTransactionId"] = t.processor_transaction_id
    if t.status_reason:
        body["processorStatusReason"] = t.status_reason
    elif t.outcome_unknown:
        body["processorStatusReason"] = {"type": "GATEWAY_TIMEOUT"}
    if t.reason is not None:
        body["reason"] = t.reason
    if events is not None:
        body["events"] = [event(e) for e in events]
    return body


def event(e: Event) -> dict[str, Any]:
    body: dict[str, Any] = {"id": str(e.id), "date": _date(e.created_at), "type": e.type}
    if e.amount is not None:
        body["amount"] = e.amount
    if e.final is not None:
        body["final"] = e.final
    return body


def summary(p: Payment, processor_name: str) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": p.id,
        "date": _date(p.created_at),
        "dateUpdated": _date(p.updated_at),
        "status": p.status,
        "orderId": p.order_id,
        "processor": {"name": processor_name, "processorMerchantId": p.processor_merchant_id},
        "currencyCode": p.currency_code,
        "amount": p.amount,
    }
    if p.metadata is not None:
        body["metadata"] = p.metadata
    return body
