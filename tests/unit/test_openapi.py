"""The OpenAPI document: generated from every surface's routes, and in step with Primer's spec."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from jsonschema import Draft202012Validator

from gateway.api import reference
from gateway.http.openapi import undocumented
from tests.contract import primer_spec
from tests.openapi_drift import drift

PRIMER = "Primer Payments API v2.4"

# Where the gateway knowingly differs from Primer's spec, and why. Anything else is drift.
DEVIATIONS = {
    # Primer's prose: "The only required field for the request is `clientToken`"; its schema
    # does not list it. A session cannot be changed without its token.
    "PATCH /client-session body: required fields differ: the gateway's only ['clientToken'], "
    "Primer's only []": "prose",
    # `expand` is taken by every other payment operation of Primer's; resume answers with the
    # same payment, so it takes it too.
    "POST /payments/{id}/resume body: fields Primer does not have: ['expand']": "extension",
}


def test_every_route_of_every_surface_is_in_the_document() -> None:
    for surface in reference.SURFACES:
        assert undocumented(surface) == [], surface.name
    document = reference.openapi()
    operations = [op for methods in document["paths"].values() for op in methods.values()]
    ids = [op["operationId"] for op in operations]
    assert len(ids) == len(set(ids)) == 36
    assert {tag["name"] for tag in document["tags"]} == {s.name for s in reference.SURFACES}


def test_the_primer_part_is_primers_spec_for_every_operation_served() -> None:
    found, compared = drift(reference.openapi(), primer_spec(), PRIMER)
    assert compared == 16  # all of Primer's operations; the tokenization is the gateway's own
    assert sorted(set(found) - set(DEVIATIONS)) == []
    assert sorted(set(DEVIATIONS) - set(found)) == [], "a deviation is gone: drop it from the list"


def _drifted(change: Any) -> list[str]:
    spec = copy.deepcopy(primer_spec())
    change(spec["components"]["schemas"], spec["paths"])
    found, _ = drift(reference.openapi(), spec, PRIMER)
    return sorted(set(found) - set(DEVIATIONS))


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (
            lambda schemas, paths: (
                schemas["PaymentCaptureAPIRequest"].setdefault("required", []).append("amount")
            ),
            "POST /payments/{id}/capture body: required fields differ",
        ),
        (
            lambda schemas, paths: schemas["PaymentStatus"]["enum"].remove("SETTLING"),
            "200.status: the gateway sends values Primer lacks: ['SETTLING']",
        ),
        (
            lambda schemas, paths: schemas["PaymentRefundAPIRequest"]["properties"].pop("reason"),
            "POST /payments/{id}/refund body: fields Primer does not have: ['reason']",
        ),
        (
            lambda schemas, paths: schemas["PaymentSummaryAPISchema"]["required"].append(
                "metadata"
            ),
            "GET /payments 200.data[]: Primer requires ['metadata']",
        ),
        (
            lambda schemas, paths: paths.update({"/payments/{id}/void": {"post": {}}}),
            "POST /payments/{id}/void: in Primer's spec, not served",
        ),
        (
            lambda schemas, paths: paths["/payments"]["post"].update(operationId="renamed"),
            "POST /payments: operationId 'create_payment_payments_post'",
        ),
    ],
)
def test_the_drift_check_fails_on_drift(change: Any, expected: str) -> None:
    """The check is only worth something if it fails: each change to Primer's spec is found."""
    assert any(expected in line for line in _drifted(change)), _drifted(change)


def test_every_schema_in_the_document_is_valid_json_schema() -> None:
    document = reference.openapi()
    assert document["openapi"] == "3.1.0"
    for name, schema in document["components"]["schemas"].items():
        Draft202012Validator.check_schema(schema)
        assert "." not in name, f"two Structs share the name {name}: rename one"
