"""Primer's published contract, for checking every 2xx body the gateway returns.

The spec is vendored in contracts/primer/ (copied from Primer's published v2.4 spec). A missing
spec is an error, never a silent pass.
"""

from __future__ import annotations

import functools
import re
from typing import Any

import yaml
from openapi_schema_validator import OAS30Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT4, DRAFT202012

from tests.conftest import REPO_ROOT

PRIMER_SPEC = REPO_ROOT / "contracts" / "primer" / "payments-api-v2.4.openapi.yml"

# (method, path template) -> response schema of its 2xx answer
RESPONSE_SCHEMAS = {
    ("POST", "/client-session"): "ClientSessionWithTokenAPIResponse",
    ("GET", "/client-session"): "ClientSessionAPIResponse",
    ("PATCH", "/client-session"): "ClientSessionAPIResponse",
    ("POST", "/payments"): "PaymentAPIResponse",
    ("GET", "/payments"): "PaymentListAPIResponse",
    ("GET", "/payments/{id}"): "PaymentAPIResponse",
    ("POST", "/payments/{id}/authorize"): "PaymentAPIResponse",
    ("POST", "/payments/{id}/capture"): "PaymentAPIResponse",
    ("POST", "/payments/{id}/resume"): "PaymentAPIResponse",
    ("POST", "/payments/{id}/adjust-authorization"): "PaymentAPIResponse",
    ("POST", "/payments/{id}/cancel"): "PaymentAPIResponse",
    ("POST", "/payments/{id}/refund"): "PaymentAPIResponse",
    # Primer tokenizes cards client-side; the gateway's tokenization answers with Primer's
    # payment-instrument object.
    ("POST", "/payment-instruments"): "MerchantPaymentMethodTokenAPIResponse",
    ("GET", "/payment-instruments"): "MerchantPaymentMethodTokenListAPIResponse",
    ("POST", "/payment-instruments/{token}/vault"): "MerchantPaymentMethodTokenAPIResponse",
    ("POST", "/payment-instruments/{token}/default"): "MerchantPaymentMethodTokenAPIResponse",
    ("DELETE", "/payment-instruments/{token}"): "MerchantPaymentMethodTokenAPIResponse",
}


class PrimerContract:
    """Validates bodies against an OpenAPI spec's schemas (Primer's, or `name`'s)."""

    def __init__(self, spec: dict[str, Any], name: str = "primer") -> None:
        self._name = name
        self._registry = Registry().with_resource(
            f"urn:{name}", Resource.from_contents(spec, default_specification=DRAFT4)
        )
        self._validators: dict[str, OAS30Validator] = {}
        self.checked = 0

    def validate(self, schema: str, body: Any) -> None:
        validator = self._validators.get(schema)
        if validator is None:
            validator = self._validators[schema] = OAS30Validator(
                {"$ref": f"urn:{self._name}#/components/schemas/{schema}"},
                registry=self._registry,
                format_checker=OAS30Validator.FORMAT_CHECKER,
            )
        errors = sorted(validator.iter_errors(body), key=lambda e: list(e.path))
        if errors:
            detail = "; ".join(f"{'/'.join(map(str, e.path))}: {e.message}" for e in errors[:5])
            raise AssertionError(f"body does not match {self._name}'s {schema}: {detail}")
        self.checked += 1


@functools.cache
def primer_spec() -> dict[str, Any]:
    if not PRIMER_SPEC.exists():
        raise FileNotFoundError(f"Primer's spec is missing from the repository: {PRIMER_SPEC}")
    return yaml.safe_load(PRIMER_SPEC.read_text())  # type: ignore[no-any-return]


@functools.cache
def primer_contract() -> PrimerContract:
    return PrimerContract(primer_spec())


MEDUSA_SPEC = REPO_ROOT / "contracts" / "medusa" / "admin-payments.openapi.yml"


@functools.cache
def medusa_contract() -> PrimerContract:
    return PrimerContract(yaml.safe_load(MEDUSA_SPEC.read_text()), name="medusa")


class OwnContract:
    """The gateway's own OpenAPI document (GET /openapi.json), for checking that what it says of
    each operation's answers is what the gateway sends: every answer the tests get, 2xx or
    error, is validated against the schema the document gives for its status."""

    def __init__(self, document: dict[str, Any]) -> None:
        from jsonschema import Draft202012Validator

        self._document = document
        self._registry = Registry().with_resource(
            "urn:gateway", Resource.from_contents(document, default_specification=DRAFT202012)
        )
        self._routes = [
            (re.compile("^" + re.sub(r"{[^}]+}", "[^/]+", path) + "$"), path)
            for path in document["paths"]
        ]
        self._validator = Draft202012Validator
        self.checked = 0

    def schema_of(self, method: str, path: str, status: int) -> dict[str, Any] | None:
        path = path.split("?", 1)[0]
        # The most specific template first: /payments/{id}/capture before /payments/{id}.
        for pattern, template in sorted(self._routes, key=lambda r: -len(r[1])):
            if pattern.match(path):
                operation = self._document["paths"][template].get(method.lower())
                if operation is None:
                    return None
                answers = operation["responses"]
                answer = answers.get(str(status), answers["default"] if status >= 400 else None)
                if answer is None:
                    return None
                return answer["content"]["application/json"]["schema"]  # type: ignore[no-any-return]
        return None

    def validate(self, method: str, path: str, status: int, body: Any) -> None:
        schema = self.schema_of(method, path, status)
        if schema is None:
            raise AssertionError(
                f"the gateway's document has no answer {status} for {method} {path}"
            )
        ref = {"$ref": "urn:gateway" + schema["$ref"]}
        validator = self._validator(ref, registry=self._registry)
        errors = sorted(validator.iter_errors(body), key=lambda e: list(e.path))
        if errors:
            detail = "; ".join(f"{'/'.join(map(str, e.path))}: {e.message}" for e in errors[:5])
            raise AssertionError(f"{method} {path} {status} does not match the document: {detail}")
        self.checked += 1


@functools.cache
def own_contract() -> OwnContract:
    from gateway.api import reference

    return OwnContract(reference.openapi())
