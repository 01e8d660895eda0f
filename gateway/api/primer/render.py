"""Payments as Primer's API v2.4 shows them, built from the domain's records.

The one place that knows how a domain record looks in Primer's JSON: the response Structs of
`schemas.py` filled from `workflows.model`.
"""

from __future__ import annotations

from datetime import UTC, datetime

import msgspec

from gateway.api.primer import schemas
from processors import registry
from workflows import model


def _date(value: datetime) -> str:
    """In UTC, whatever the database session's time zone: an answer rendered from a row that
    psycopg loaded and one from a statement's JSON (runner.record_outcome) read the same."""
    return value.astimezone(UTC).isoformat()


def card_data(card: model.Card) -> schemas.PaymentCardData:
    """Primer's PaymentCardTokenAPISchema from what the gateway kept of a card."""
    return schemas.PaymentCardData(
        first6Digits=card.first6,
        last4Digits=card.last4,
        expirationMonth=card.expiration_month,
        expirationYear=card.expiration_year,
        network=card.network,
        isNetworkTokenized=False,
        cardholderName=card.cardholder_name or None,
    )


def status_reason(reason: model.StatusReason) -> schemas.StatusReason:
    return schemas.StatusReason(
        type=reason.type.value,
        declineType=reason.decline_type.value if reason.decline_type else None,
        code=reason.code.value if reason.code else None,
        message=reason.message or None,
    )


def _card_token_type(p: model.Payment) -> str:
    # No card of ours: the payment took the processor's own token.
    return "PROCESSOR_TOKEN" if p.card is None else "CARD_PAN"


def _customer(customer: model.Customer | None) -> schemas.CustomerDetailsOut | None:
    if customer is None:
        return None
    # Both spell the fields the same in JSON: the domain's encoding is read as Primer's.
    return msgspec.convert(msgspec.to_builtins(customer), schemas.CustomerDetailsOut)


def payment(view: model.PaymentView, *, expand_events: bool = False) -> schemas.PaymentAPIResponse:
    p = view.payment
    options = p.payment_options
    events: dict[str, list[schemas.TransactionEvent]] = {}
    for e in view.events:
        events.setdefault(e.transaction_id, []).append(event(e))
    return schemas.PaymentAPIResponse(
        id=p.id,
        date=_date(p.created_at),
        dateUpdated=_date(p.updated_at),
        status=p.status.value,
        cardTokenType=_card_token_type(p),
        orderId=p.order_id,
        currencyCode=p.currency_code,
        amount=p.amount,
        customerId=p.customer_id,
        customer=_customer(p.customer),
        order=p.order_details,
        metadata=p.metadata,
        paymentMethod=schemas.PaymentMethod(
            paymentMethodToken=p.payment_method_token,
            paymentMethodType="PAYMENT_CARD",
            isVaulted=False,
            # None for a processor's own token: the gateway never saw the card.
            paymentMethodData=card_data(p.card) if p.card else None,
            descriptor=options.descriptor if options else None,
            paymentType=options.payment_type if options else None,
            authorizationType=options.authorization_type if options else None,
        ),
        processor=(
            schemas.Processor(
                name=view.processor_name,
                processorMerchantId=p.processor_merchant_id,
                amountCaptured=p.amount_captured,
                amountRefunded=p.amount_refunded,
            )
            if p.sale_id is not None  # none: held by its routing rule, sent to no processor yet
            else None
        ),
        statusReason=status_reason(p.status_reason) if p.status_reason else None,
        requiredAction=(
            schemas.RequiredAction(
                name=p.required_action.name, description=p.required_action.description
            )
            if p.required_action
            else None
        ),
        transactions=[
            transaction(view, t, events.get(t.id, []) if expand_events else None)
            for t in view.transactions
        ],
    )


def transaction(
    view: model.PaymentView,
    t: model.Transaction,
    events: list[schemas.TransactionEvent] | None,
) -> schemas.TransactionOverview:
    p = view.payment
    reason = None
    if t.status_reason:
        reason = status_reason(t.status_reason)
    elif t.outcome_unknown:
        reason = schemas.StatusReason(type="GATEWAY_TIMEOUT")
    # Each attempt of an authorization that fell back names the account that handled it.
    name, merchant_id = view.processor_name, p.processor_merchant_id
    if t.processor is not None:
        name = registry.display_name(t.processor)
        merchant_id = t.processor_account or p.merchant_id
    return schemas.TransactionOverview(
        id=t.id,
        date=_date(t.created_at),
        amount=t.amount,
        currencyCode=t.currency_code,
        transactionType=t.type.value,
        type=t.type.value,
        processorName=name,
        processor=name,
        processorMerchantId=merchant_id,
        processorStatus=t.processor_status.value,
        status=t.processor_status.value,
        cardTokenType=_card_token_type(p),
        orderId=t.order_id,
        processorTransactionId=t.processor_transaction_id,
        processorStatusReason=reason,
        reason=t.reason,
        events=events,
    )


def event(e: model.Event) -> schemas.TransactionEvent:
    return schemas.TransactionEvent(
        id=str(e.id), date=_date(e.created_at), type=e.type.value, amount=e.amount, final=e.final
    )


def summary(p: model.Payment, processor_name: str) -> schemas.PaymentSummary:
    return schemas.PaymentSummary(
        id=p.id,
        date=_date(p.created_at),
        dateUpdated=_date(p.updated_at),
        status=p.status.value,
        orderId=p.order_id,
        processor=(
            schemas.ProcessorSummary(
                name=processor_name, processorMerchantId=p.processor_merchant_id
            )
            if p.sale_id is not None  # none: held by its routing rule, sent nowhere yet
            else None
        ),
        currencyCode=p.currency_code,
        amount=p.amount,
        metadata=p.metadata,
    )
