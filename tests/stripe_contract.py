"""Stripe's published contract (API version 2023-08-16; the part the connector uses, vendored in
contracts/stripe/ by contracts/stripe/extract.py), for checking every request the connector
sends: the path and method exist, every form parameter is a known parameter of that operation
(nested ones included), enum values are allowed ones."""

from __future__ import annotations

import functools
import json
import re
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import httpx

from tests.conftest import REPO_ROOT

STRIPE_SPEC = REPO_ROOT / "contracts" / "stripe" / "spec3.subset.json"

# Parameters of Stripe's multicapture, a gated feature whose parameters the public 2023-08-16 spec
# does not list. The connector sends them only for accounts set up with it (see
# processors/stripe/); everything else must be in the spec.
GATED = {
    ("/v1/payment_intents/{intent}/capture", "final_capture"),
    ("/v1/payment_intents", "payment_method_options[card][request_multicapture]"),
}
_SEGMENT = re.compile(r"\[([^\]]*)\]")


class StripeContract:
    def __init__(self, spec: dict[str, Any]) -> None:
        self._spec = spec
        self._routes = [
            (re.compile("^" + re.sub(r"\{[^}]+\}", "[^/]+", path) + "$"), path)
            for path in spec["paths"]
        ]
        self.checked = 0

    def check(self, request: httpx.Request) -> None:
        url = urlsplit(str(request.url))
        template = next((t for pattern, t in self._routes if pattern.match(url.path)), None)
        assert template is not None, f"{url.path} is not a Stripe API path"
        operation = self._spec["paths"][template].get(request.method.lower())
        assert operation is not None, f"{request.method} {template} is not a Stripe operation"
        if request.method == "GET":
            known = {p["name"] for p in operation.get("parameters", []) if p["in"] == "query"}
            for name, _ in parse_qsl(url.query):
                assert name.split("[")[0] in known, f"GET {template}: unknown parameter {name}"
        else:
            schema = (
                operation.get("requestBody", {})
                .get("content", {})
                .get("application/x-www-form-urlencoded", {})
                .get("schema", {})
            )
            for name, value in parse_qsl(request.read().decode(), keep_blank_values=True):
                if (template, name) in GATED:
                    continue
                head, rest = name.split("[", 1) if "[" in name else (name, "")
                segments = [head, *_SEGMENT.findall("[" + rest)] if rest else [head]
                self._check_value(template, name, schema, segments, value)
        self.checked += 1

    def _resolve(self, schema: dict[str, Any]) -> dict[str, Any]:
        while "$ref" in schema:
            node: Any = self._spec
            for part in schema["$ref"].lstrip("#/").split("/"):
                node = node[part]
            schema = node
        return schema

    def _check_value(
        self, template: str, name: str, schema: dict[str, Any], segments: list[str], value: str
    ) -> None:
        schema = self._resolve(schema)
        options = schema.get("anyOf") or schema.get("oneOf")
        if options:
            failures = []
            for option in options:
                try:
                    self._check_value(template, name, option, segments, value)
                    return
                except AssertionError as error:
                    failures.append(str(error))
            raise AssertionError(f"{template}: {name}={value!r} fits no variant: {failures}")
        if not segments:
            self._check_leaf(template, name, schema, value)
            return
        segment, rest = segments[0], segments[1:]
        kind = schema.get("type")
        if kind == "array":
            assert segment.isdigit(), f"{template}: {name}: {segment!r} is not an index"
            self._check_value(template, name, schema.get("items", {}), rest, value)
            return
        properties = schema.get("properties", {})
        if segment in properties:
            self._check_value(template, name, properties[segment], rest, value)
            return
        extra = schema.get("additionalProperties")
        assert isinstance(extra, dict), f"{template}: unknown parameter {name}"
        self._check_value(template, name, extra, rest, value)

    @staticmethod
    def _check_leaf(template: str, name: str, schema: dict[str, Any], value: str) -> None:
        if "enum" in schema:
            assert value in schema["enum"], f"{template}: {name}={value!r} not in {schema['enum']}"
        kind = schema.get("type")
        if kind == "integer":
            assert re.fullmatch(r"-?\d+", value), f"{template}: {name}={value!r} not an integer"
        elif kind == "boolean":
            assert value in ("true", "false"), f"{template}: {name}={value!r} not a boolean"
        elif kind == "object":
            raise AssertionError(f"{template}: {name} is an object, sent as a plain value")


@functools.cache
def stripe_contract() -> StripeContract:
    if not STRIPE_SPEC.exists():
        raise FileNotFoundError(f"Stripe's spec is missing from the repository: {STRIPE_SPEC}")
    return StripeContract(json.loads(STRIPE_SPEC.read_text()))
