"""Payments as Primer's API v2.4 shows them (PaymentAPIResponse, PaymentSummaryAPISchema).

Primer's TransactionOverviewAPISchema requires `type`, `processor` and `status` while its
properties spell them `transactionType`, `processorName` and `processorStatus`: both spellings are
sent, with the same values (see the reference README).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import msgspec

from workflows.model import (
    Card,
    Event,
    Payment,
    PaymentView,
    RequiredAction,
    StatusReason,
    Transaction,
)


def _date(value: datetime) -> str:
    return value.isoformat()


def card_data(card: Card) -> dict[str, Any]:
    """Primer's PaymentCardTokenAPISchema from what the gateway kept of a card."""
    data: dict[str, Any] = {
        "first6Digits": card.first6,
        "last4Digits": card.last4,
        "expirationMonth": card.expiration_month,
        "expirationYear": card.expiration_year,
        "network": card.network,
        "isNetworkTokenized": False,
    }
    if card.cardholder_name:
        data["cardholderName"] = card.cardholder_name
    return data


def status_reason(reason: StatusReason) -> dict[str, Any]:
    """Primer's StatusReasonAPISchema."""
    body: dict[str, Any] = {"type": reason.type.value}
    if reason.decline_type is not None:
        body["declineType"] = reason.decline_type.value
    if reason.code is not None:
        body["code"] = reason.code.value
    if reason.message:
        body["message"] = reason.message
    return body


def required_action(action: RequiredAction) -> dict[str, Any]:
    """Primer's PaymentRequiredActionAPISchema."""
    return {"name": action.name, "description": action.description}


def card_token_type(p: Payment) -> str:
    # No card of ours: the payment took the processor's own token.
    return "PROCESSOR_TOKEN" if p.card is None else "CARD_PAN"


def payment(view: PaymentView, *, expand_events: bool = False) -> dict[str, Any]:
    p = view.payment
    body: dict[str, Any] = {
        "id": p.id,
        "date": _date(p.created_at),
        "dateUpdated": _date(p.updated_at),
        "status": p.status,
        "cardTokenType": card_token_type(p),
        "orderId": p.order_id,
        "currencyCode": p.currency_code,
        "amount": p.amount,
    }
    for name, value in (
        ("customerId", p.customer_id),
        ("customer", msgspec.to_builtins(p.customer) if p.customer else None),
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
    options = p.payment_options
    if options is not None:
        for name, value in (
            ("descriptor", options.descriptor),
            ("paymentType", options.payment_type),
            ("authorizationType", options.authorization_type),
        ):
            if value is not None:
                method[name] = value
    body["paymentMethod"] = method
    body["processor"] = {
        "name": view.processor_name,
        "processorMerchantId": p.processor_merchant_id,
        "amountCaptured": p.amount_captured,
        "amountRefunded": p.amount_refunded,
    }
    if p.status_reason:
        body["statusReason"] = status_reason(p.status_reason)
    if p.required_action:
        body["requiredAction"] = required_action(p.required_action)
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
        "cardTokenType": card_token_type(p),
    }
    if t.order_id is not None:
        body["orderId"] = t.order_id
    if t.processor_transaction_id is not None:
        body["processorTransactionId"] = t.processor_transaction_id
    if t.status_reason:
        body["processorStatusReason"] = status_reason(t.status_reason)
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
