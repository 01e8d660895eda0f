"""The vendored contracts are there, and the gateway's own copy of Primer's lists agrees."""

from __future__ import annotations

from gateway.api.primer.countries import CountryCode
from gateway.api.primer.currencies import Currency
from tests.contract import primer_spec
from tests.stripe_contract import STRIPE_SPEC, stripe_contract


def test_the_currencies_accepted_are_exactly_primers() -> None:
    assert [c.value for c in Currency] == primer_spec()["components"]["schemas"]["Currency"]["enum"]


def test_the_countries_accepted_are_exactly_primers() -> None:
    countries = primer_spec()["components"]["schemas"]["CountryCodeEnum"]["enum"]
    assert [c.value for c in CountryCode] == countries


def test_the_stripe_subset_has_every_operation_the_connector_calls() -> None:
    assert STRIPE_SPEC.exists()
    paths = stripe_contract()._spec["paths"]
    for path in (
        "/v1/payment_intents",
        "/v1/payment_intents/{intent}",
        "/v1/payment_intents/{intent}/capture",
        "/v1/payment_intents/{intent}/cancel",
        "/v1/refunds",
    ):
        assert path in paths
