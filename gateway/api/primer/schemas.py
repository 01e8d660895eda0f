"""Primer's Payments API v2.4 bodies, in and out, as msgspec Structs named as Primer names them.

Requests are decoded strictly (unknown fields refused); responses omit what is absent, as Primer
does. Field names are Primer's own (camelCase), so these classes are the wire format itself.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any, Literal

import msgspec
from msgspec import Meta

from gateway.api.primer.countries import CountryCode
from gateway.api.primer.currencies import Currency

# ------------------------------------------------------------------ requests

Text255 = Annotated[str, Meta(max_length=255)]
Amount = Annotated[int, Meta(ge=0, le=9_007_199_254_740_991)]
Expand = list[Literal["transactions.events"]]
CardNetwork = Literal[
    "AMEX",
    "DANKORT",
    "DINERS_CLUB",
    "DISCOVER",
    "EFTPOS",
    "ENROUTE",
    "ELO",
    "HIPER",
    "INTERAC",
    "JCB",
    "MAESTRO",
    "MASTERCARD",
    "MIR",
    "PRIVATE_LABEL",
    "UNIONPAY",
    "VISA",
    "CARTES_BANCAIRES",
    "OTHER",
]
# A query parameter that reaches PostgreSQL: bounded, and never a NUL (text cannot hold one).
QueryText = Annotated[str, Meta(max_length=255, pattern="^[^\x00]*$")]


class Address(
    msgspec.Struct, forbid_unknown_fields=True, kw_only=True, frozen=True, omit_defaults=True
):
    firstName: Text255 | None = None
    lastName: Text255 | None = None
    addressLine1: Text255 | None = None
    addressLine2: Text255 | None = None
    city: Text255 | None = None
    state: Text255 | None = None
    countryCode: CountryCode | None = None
    postalCode: Text255 | None = None


class CustomerDetails(
    msgspec.Struct, forbid_unknown_fields=True, kw_only=True, frozen=True, omit_defaults=True
):
    emailAddress: Annotated[str, Meta(pattern=r"^[^@\s]+@[^@\s]+$", max_length=255)] | None = None
    mobileNumber: Text255 | None = None
    firstName: Text255 | None = None
    lastName: Text255 | None = None
    billingAddress: Address | None = None
    shippingAddress: Address | None = None
    taxId: Text255 | None = None
    nationalDocumentId: Text255 | None = None


class PaymentMethodOptions(
    msgspec.Struct, forbid_unknown_fields=True, kw_only=True, frozen=True, omit_defaults=True
):
    vaultOnSuccess: bool | None = None
    vaultOn3DS: bool | None = None
    vaultOnAgreement: bool | None = None
    descriptor: Text255 | None = None
    paymentType: Literal["FIRST_PAYMENT", "ECOMMERCE", "SUBSCRIPTION", "UNSCHEDULED"] | None = None
    authorizationType: Literal["ESTIMATED", "FINAL"] | None = None
    firstPaymentReason: Literal["CardOnFile", "Recurring", "Unscheduled"] | None = None


class PaymentCreationAPIRequest(
    msgspec.Struct, forbid_unknown_fields=True, kw_only=True, frozen=True
):
    # Taken from the card's client session when absent; one or the other must give them.
    orderId: Annotated[str, Meta(min_length=1, max_length=255)] | None = None
    currencyCode: Currency | None = None
    amount: Amount | None = None
    paymentMethodToken: Annotated[str, Meta(min_length=1, max_length=255)]
    customerId: Text255 | None = None
    customer: CustomerDetails | None = None
    order: dict[str, Any] | None = None
    metadata: dict[str, Any] | None = None
    paymentMethod: PaymentMethodOptions | None = None
    expand: Expand | None = None


class PaymentCaptureAPIRequest(
    msgspec.Struct, forbid_unknown_fields=True, kw_only=True, frozen=True
):
    amount: Amount | None = None
    final: bool = True
    order: dict[str, Any] | None = None
    metadata: dict[str, Any] | None = None
    expand: Expand | None = None


class PaymentAdjustAuthorizationAPIRequest(
    msgspec.Struct, forbid_unknown_fields=True, kw_only=True, frozen=True
):
    amount: Amount  # the final amount the customer will be charged, in minor units
    expand: Expand | None = None


class PaymentResumeAPIRequest(
    msgspec.Struct, forbid_unknown_fields=True, kw_only=True, frozen=True
):
    resumeToken: Annotated[str, Meta(min_length=1, max_length=4096, pattern="^[^\x00]*$")]
    expand: Expand | None = None


class AuthorizationProcessor(msgspec.Struct, forbid_unknown_fields=True, kw_only=True, frozen=True):
    """PaymentAuthorizationRequestProcessorAPISchema."""

    processorMerchantId: Text255
    name: Text255 | None = None


class PaymentAuthorizationAPIRequest(
    msgspec.Struct, forbid_unknown_fields=True, kw_only=True, frozen=True
):
    processor: AuthorizationProcessor
    expand: Expand | None = None


class PaymentCancelAPIRequest(
    msgspec.Struct, forbid_unknown_fields=True, kw_only=True, frozen=True
):
    reason: Text255 | None = None
    expand: Expand | None = None


class PaymentRefundAPIRequest(
    msgspec.Struct, forbid_unknown_fields=True, kw_only=True, frozen=True
):
    amount: Amount | None = None
    orderId: Text255 | None = None
    reason: Text255 | None = None
    transactionEventId: uuid.UUID | None = None
    expand: Expand | None = None


class CardDetails(msgspec.Struct, forbid_unknown_fields=True, kw_only=True, frozen=True):
    number: Annotated[str, Meta(pattern="^[0-9]{12,19}$")]
    expirationMonth: Annotated[str, Meta(pattern="^(0[1-9]|1[0-2])$")]
    expirationYear: Annotated[str, Meta(pattern="^[0-9]{4}$")]
    cvv: Annotated[str, Meta(pattern="^[0-9]{3,4}$")]
    cardholderName: Annotated[str, Meta(min_length=1, max_length=255)] | None = None
    # The client session the card is entered in (its client token): a payment with the card
    # takes the session's order details.
    clientToken: Annotated[str, Meta(max_length=255)] | None = None


class CheckoutPaymentMethodOptions(PaymentMethodOptions, kw_only=True, frozen=True):
    """CheckoutPaymentMethodOptionsAPISchema: a payment's options, and the checkout's own."""

    orderedAllowedCardNetworks: list[CardNetwork] | None = None
    options: dict[str, Any] | None = None


class ClientSessionAPIRequest(
    msgspec.Struct, forbid_unknown_fields=True, kw_only=True, frozen=True
):
    orderId: Text255 | None = None
    currencyCode: Currency | None = None
    amount: Amount | None = None
    order: dict[str, Any] | None = None
    customerId: Text255 | None = None
    customer: CustomerDetails | None = None
    metadata: dict[str, Any] | None = None
    paymentMethod: CheckoutPaymentMethodOptions | None = None


Unset = msgspec.UnsetType
UNSET = msgspec.UNSET


class ClientSessionUpdateAPIRequest(
    msgspec.Struct, forbid_unknown_fields=True, kw_only=True, frozen=True
):
    """Only the fields given change; null clears one; a customer given merges into the one kept;
    arrays are replaced whole."""

    clientToken: Annotated[str, Meta(min_length=1, max_length=255)]
    orderId: Text255 | Unset | None = UNSET
    currencyCode: Currency | Unset | None = UNSET
    amount: Amount | Unset | None = UNSET
    order: dict[str, Any] | Unset | None = UNSET
    customerId: Text255 | Unset | None = UNSET
    customer: CustomerDetails | Unset | None = UNSET
    metadata: dict[str, Any] | Unset | None = UNSET
    paymentMethod: CheckoutPaymentMethodOptions | Unset | None = UNSET


class PaymentListQuery(msgspec.Struct, kw_only=True, frozen=True):
    """GET /payments: Primer's filters, each a query parameter; a list takes every value of a
    repeated parameter."""

    status: (
        list[
            Literal[
                "PENDING",
                "FAILED",
                "AUTHORIZED",
                "SETTLING",
                "PARTIALLY_SETTLED",
                "SETTLED",
                "DECLINED",
                "CANCELLED",
            ]
        ]
        | None
    ) = None
    currency_code: list[Currency] | None = None
    order_id: QueryText | None = None
    customer_id: list[QueryText] | None = None
    from_date: datetime | None = None
    to_date: datetime | None = None
    min_amount: Annotated[int, Meta(ge=0, le=2**63 - 1)] | None = None
    max_amount: Annotated[int, Meta(ge=0, le=2**63 - 1)] | None = None
    processor: list[QueryText] | None = None
    last_4_digits: list[Annotated[str, Meta(pattern="^[0-9]{4}$")]] | None = None
    limit: Annotated[int, Meta(ge=1, le=100)] = 100
    cursor: Annotated[str, Meta(max_length=512)] | None = None


class PaymentQuery(msgspec.Struct, kw_only=True, frozen=True):
    """GET /payments/{id}."""

    expand: Expand | None = None


class ClientSessionQuery(msgspec.Struct, kw_only=True, frozen=True):
    """GET /client-session (a missing token names no session, as Primer answers it)."""

    clientToken: str | None = None


class PaymentMethodsQuery(msgspec.Struct, kw_only=True, frozen=True):
    """GET /payment-instruments: a customer's saved payment methods."""

    customer_id: Annotated[str, Meta(min_length=1, max_length=255)]


# ------------------------------------------------------------------ responses


def _enum(*values: str) -> Meta:
    """For text the gateway sends, one of `values`: the enum is in the OpenAPI document (as
    Primer's spec has it) while the field stays `str` for the code that fills it."""
    return Meta(extra_json_schema={"enum": list(values)})


PaymentStatusText = Annotated[
    str,
    _enum(
        "PENDING",
        "FAILED",
        "AUTHORIZED",
        "SETTLING",
        "PARTIALLY_SETTLED",
        "SETTLED",
        "DECLINED",
        "CANCELLED",
    ),
]
CurrencyText = Annotated[str, _enum(*Currency)]
CardTokenTypeText = Annotated[str, _enum("CARD_PAN", "NETWORK_TOKEN", "PROCESSOR_TOKEN")]
# The only payment method the gateway takes (Primer lists ~100).
PaymentMethodTypeText = Annotated[str, _enum("PAYMENT_CARD")]
TokenTypeText = Annotated[str, _enum("MULTI_USE", "SINGLE_USE")]
TransactionTypeText = Annotated[str, _enum("SALE", "REFUND")]
TransactionEventTypeText = Annotated[
    str,
    _enum(
        "AUTHORIZATION_SUCCEEDED",
        "AUTHORIZATION_ADJUSTMENT_SUCCEEDED",
        "CAPTURE_SUCCEEDED",
        "CANCELLATION_SUCCEEDED",
    ),
]
StatusReasonTypeText = Annotated[
    str, _enum("APPLICATION_ERROR", "GATEWAY_REJECTED", "GATEWAY_TIMEOUT", "ISSUER_DECLINED")
]
DeclineTypeText = Annotated[str, _enum("SOFT_DECLINE", "HARD_DECLINE")]
DeclineReasonText = Annotated[
    str,
    _enum(
        "ERROR",
        "INVALID_CARD_NUMBER",
        "EXPIRED_CARD",
        "LOST_OR_STOLEN_CARD",
        "SUSPECTED_FRAUD",
        "UNKNOWN",
        "DECLINED",
        "REFER_TO_CARD_ISSUER",
        "DO_NOT_HONOR",
        "INSUFFICIENT_FUNDS",
        "WITHDRAWAL_LIMIT_EXCEEDED",
        "ISSUER_TEMPORARILY_UNAVAILABLE",
        "AUTHENTICATION_REQUIRED",
    ),
]
RequiredActionText = Annotated[
    str, _enum("3DS_AUTHENTICATION", "USE_PRIMER_SDK", "PAYMENT_METHOD_VOUCHER", "PROCESSOR_3DS")
]
PaymentTypeText = Annotated[str, _enum("FIRST_PAYMENT", "ECOMMERCE", "SUBSCRIPTION", "UNSCHEDULED")]
AuthorizationTypeText = Annotated[str, _enum("ESTIMATED", "FINAL")]


class _Out(msgspec.Struct, kw_only=True, omit_defaults=True):
    """A response body: fields whose value is None are left out."""


class PaymentCardData(_Out, kw_only=True, omit_defaults=True):
    """PaymentCardTokenAPISchema."""

    first6Digits: str
    last4Digits: str
    expirationMonth: str
    expirationYear: str
    network: str
    isNetworkTokenized: bool
    cardholderName: str | None = None


class StatusReason(_Out, kw_only=True, omit_defaults=True):
    """StatusReasonAPISchema."""

    type: StatusReasonTypeText
    declineType: DeclineTypeText | None = None
    code: DeclineReasonText | None = None
    message: str | None = None


class RequiredAction(_Out, kw_only=True, omit_defaults=True):
    name: RequiredActionText
    description: str


class PaymentMethod(_Out, kw_only=True, omit_defaults=True):
    paymentMethodToken: str
    paymentMethodType: PaymentMethodTypeText
    isVaulted: bool
    paymentMethodData: PaymentCardData | None = None
    descriptor: str | None = None
    paymentType: PaymentTypeText | None = None
    authorizationType: AuthorizationTypeText | None = None


class Processor(_Out, kw_only=True, omit_defaults=True):
    name: str
    processorMerchantId: str
    amountCaptured: int | None = None
    amountRefunded: int | None = None


class AddressOut(_Out, kw_only=True, omit_defaults=True):
    """An address as stored: rendered as it is, never checked again (what was accepted when it
    was stored stays readable)."""

    firstName: str | None = None
    lastName: str | None = None
    addressLine1: str | None = None
    addressLine2: str | None = None
    city: str | None = None
    state: str | None = None
    countryCode: Annotated[str, _enum(*CountryCode)] | None = None
    postalCode: str | None = None


class CustomerDetailsOut(_Out, kw_only=True, omit_defaults=True):
    """CustomerDetailsAPISchema, as stored."""

    emailAddress: str | None = None
    mobileNumber: str | None = None
    firstName: str | None = None
    lastName: str | None = None
    billingAddress: AddressOut | None = None
    shippingAddress: AddressOut | None = None
    taxId: str | None = None
    nationalDocumentId: str | None = None


class ProcessorSummary(_Out, kw_only=True, omit_defaults=True):
    """PaymentSummaryProcessorAPISchema."""

    name: str
    processorMerchantId: str | None = None


class TransactionEvent(_Out, kw_only=True, omit_defaults=True):
    id: str
    date: str
    type: TransactionEventTypeText
    amount: int | None = None
    final: bool | None = None


class TransactionOverview(_Out, kw_only=True, omit_defaults=True):
    """TransactionOverviewAPISchema. Its `required` list names `type`, `processor` and `status`
    while its properties spell them `transactionType`, `processorName` and `processorStatus`:
    both spellings are sent, with the same values (see the reference README)."""

    id: str
    date: str
    amount: int
    currencyCode: CurrencyText
    transactionType: TransactionTypeText
    type: TransactionTypeText
    processorName: str
    processor: str
    processorMerchantId: str
    processorStatus: PaymentStatusText
    status: PaymentStatusText
    cardTokenType: CardTokenTypeText
    orderId: str | None = None
    processorTransactionId: str | None = None
    processorStatusReason: StatusReason | None = None
    reason: str | None = None
    events: list[TransactionEvent] | None = None


class ClientSessionAPIResponse(_Out, kw_only=True, omit_defaults=True):
    orderId: str | None = None
    currencyCode: CurrencyText | None = None
    amount: int | None = None
    order: dict[str, Any] | None = None
    customerId: str | None = None
    customer: CustomerDetailsOut | None = None
    metadata: dict[str, Any] | None = None
    paymentMethod: dict[str, Any] | None = None


class ClientSessionWithTokenAPIResponse(ClientSessionAPIResponse, kw_only=True, omit_defaults=True):
    clientToken: str
    clientTokenExpirationDate: str


class PaymentAPIResponse(_Out, kw_only=True, omit_defaults=True):
    id: str
    date: str
    dateUpdated: str
    status: PaymentStatusText
    cardTokenType: CardTokenTypeText
    orderId: str
    currencyCode: CurrencyText
    amount: int
    customerId: str | None = None
    customer: CustomerDetailsOut | None = None
    order: dict[str, Any] | None = None
    metadata: dict[str, Any] | None = None
    paymentMethod: PaymentMethod
    processor: Processor | None = None  # none yet: held by its routing rule, sent nowhere
    statusReason: StatusReason | None = None
    requiredAction: RequiredAction | None = None
    transactions: list[TransactionOverview]


class PaymentSummary(_Out, kw_only=True, omit_defaults=True):
    """PaymentSummaryAPISchema."""

    id: str
    date: str
    dateUpdated: str
    status: PaymentStatusText
    orderId: str
    processor: ProcessorSummary | None = None  # none yet: held by its routing rule
    currencyCode: str
    amount: int
    metadata: dict[str, Any] | None = None


class PaymentList(_Out, kw_only=True, omit_defaults=True):
    data: list[PaymentSummary]
    nextCursor: str | None = None
    prevCursor: str | None = None


class PaymentInstrument(_Out, kw_only=True, omit_defaults=True):
    """MerchantPaymentMethodTokenAPIResponse."""

    createdAt: str
    token: str
    tokenType: TokenTypeText
    paymentMethodType: PaymentMethodTypeText
    paymentMethodData: PaymentCardData
    deleted: bool
    default: bool
    customerId: str | None = None  # a saved (vaulted) payment method's customer
    deletedAt: str | None = None


class PaymentInstrumentList(_Out, kw_only=True, omit_defaults=True):
    data: list[PaymentInstrument]


class VaultPaymentMethodAPIRequest(
    msgspec.Struct, forbid_unknown_fields=True, kw_only=True, frozen=True
):
    customerId: Annotated[str, Meta(min_length=1, max_length=255, pattern="^[^\x00]*$")]
