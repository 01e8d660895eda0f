"""Drift between the gateway's generated OpenAPI document and Primer's spec, for the operations
the gateway serves: same paths and methods, same operation ids, same required fields, enums that
agree, no field Primer does not have. `drift()` lists every difference it finds as one line.

The rules, per place:
- request bodies and query parameters: the required fields are Primer's; every field the gateway
  takes is one of Primer's; where Primer gives an enum, the gateway's is the same;
- answers: every field Primer requires is always sent (the gateway may promise more); every field
  sent is one of Primer's; where Primer gives an enum, the gateway sends values from it (a subset:
  it sends only card payments, for example, of Primer's ~100 payment method types).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

Schema = Mapping[str, Any]


class _Side:
    def __init__(self, document: Mapping[str, Any]) -> None:
        self.document = document

    def resolve(self, schema: Schema) -> Schema:
        while "$ref" in schema:
            name = str(schema["$ref"]).rsplit("/", 1)[-1]
            schema = self.document["components"]["schemas"][name]
        return schema

    def shape(self, schema: Schema) -> tuple[str, Any]:
        """("object", (properties, required)), ("enum", values), ("array", items), (type, None)"""
        schema = self.resolve(schema)
        for key in ("anyOf", "oneOf", "allOf"):
            if key in schema:
                options = [self.shape(o) for o in schema[key]]
                options = [o for o in options if o[0] != "null"]
                if key == "allOf":
                    properties: dict[str, Any] = {}
                    required: set[str] = set()
                    for kind, value in options:
                        if kind == "object":
                            properties.update(value[0])
                            required |= value[1]
                    if properties:
                        return "object", (properties, required)
                return options[0] if len(options) == 1 else ("union", options)
        if "enum" in schema:
            return "enum", frozenset(v for v in schema["enum"] if v is not None)
        if schema.get("type") == "object" or "properties" in schema:
            return "object", (dict(schema.get("properties", {})), set(schema.get("required", ())))
        if schema.get("type") == "array":
            return "array", schema.get("items", {})
        return str(schema.get("type")), None


def _compare(
    where: str, ours: _Side, a: Schema, primer: _Side, b: Schema, answer: bool, out: list[str]
) -> None:
    (kind_a, value_a), (kind_b, value_b) = ours.shape(a), primer.shape(b)
    if kind_a == "object" and kind_b == "object":
        (props_a, required_a), (props_b, required_b) = value_a, value_b
        # A name Primer's `required` lists is Primer's, even where its properties spell it
        # otherwise (TransactionOverviewAPISchema: `type`, `processor`, `status`).
        extra = sorted(set(props_a) - set(props_b) - required_b)
        if extra:
            out.append(f"{where}: fields Primer does not have: {extra}")
        if answer:
            missing = sorted(required_b - required_a)
            if missing:
                out.append(f"{where}: Primer requires {missing}; the gateway may leave them out")
        elif required_a != required_b:
            ours_only, primers_only = (
                sorted(required_a - required_b),
                sorted(required_b - required_a),
            )
            out.append(
                f"{where}: required fields differ: the gateway's only {ours_only}"
                f", Primer's only {primers_only}"
            )
        for name in sorted(set(props_a) & set(props_b)):
            _compare(f"{where}.{name}", ours, props_a[name], primer, props_b[name], answer, out)
    elif kind_a == "array" and kind_b == "array":
        _compare(f"{where}[]", ours, value_a, primer, value_b, answer, out)
    elif kind_b == "enum":
        if kind_a != "enum":
            out.append(f"{where}: Primer's enum ({len(value_b)} values), the gateway's {kind_a}")
        elif answer and not value_a <= value_b:
            out.append(
                f"{where}: the gateway sends values Primer lacks: {sorted(value_a - value_b)}"
            )
        elif not answer and value_a != value_b:
            out.append(
                f"{where}: enums differ: the gateway's only {sorted(value_a - value_b)}, "
                f"Primer's only {sorted(value_b - value_a)}"
            )


def _body(operation: Mapping[str, Any]) -> Schema | None:
    content = operation.get("requestBody", {}).get("content", {})
    return content.get("application/json", {}).get("schema")


def _answer(operation: Mapping[str, Any], status: str = "200") -> Schema | None:
    content = operation.get("responses", {}).get(status, {}).get("content", {})
    return content.get("application/json", {}).get("schema")


def _query(document: Mapping[str, Any], operation: Mapping[str, Any]) -> dict[str, Any]:
    found = {}
    for parameter in operation.get("parameters", ()):
        if "$ref" in parameter:
            name = str(parameter["$ref"]).rsplit("/", 1)[-1]
            parameter = document["components"]["parameters"][name]
        if parameter["in"] == "query":
            found[parameter["name"]] = parameter
    return found


def drift(
    document: Mapping[str, Any], spec: Mapping[str, Any], surface: str
) -> tuple[list[str], int]:
    """Every difference between `surface`'s operations in `document` and `spec`, and how many
    operations were compared."""
    ours, primer = _Side(document), _Side(spec)
    out: list[str] = []
    compared = 0
    served = set()
    for path, methods in document["paths"].items():
        for method, operation in methods.items():
            if operation["tags"] != [surface]:
                continue
            where = f"{method.upper()} {path}"
            served.add((path, method))
            theirs = spec["paths"].get(path, {}).get(method)
            if theirs is None:
                if not operation.get("x-gateway-extension"):
                    out.append(f"{where}: not in Primer's spec")
                continue
            compared += 1
            if operation["operationId"] != theirs.get("operationId"):
                out.append(f"{where}: operationId {operation['operationId']!r}")
            body_a, body_b = _body(operation), _body(theirs)
            if (body_a is None) != (body_b is None):
                out.append(f"{where}: a body on one side only")
            elif body_a is not None and body_b is not None:
                _compare(f"{where} body", ours, body_a, primer, body_b, False, out)
            answer_a, answer_b = _answer(operation), _answer(theirs)
            if answer_a is None or answer_b is None:
                out.append(f"{where}: no 200 answer on one side")
            else:
                _compare(f"{where} 200", ours, answer_a, primer, answer_b, True, out)
            query_a, query_b = _query(document, operation), _query(spec, theirs)
            for name, parameter in query_a.items():
                if name not in query_b:
                    out.append(f"{where}: query parameter {name} is not Primer's")
                    continue
                if parameter.get("required", False) != query_b[name].get("required", False):
                    out.append(f"{where}: query parameter {name}: required differs")
                _compare(
                    f"{where} ?{name}",
                    ours,
                    parameter["schema"],
                    primer,
                    query_b[name]["schema"],
                    False,
                    out,
                )
    for path, methods in spec["paths"].items():
        for method in methods:
            if method in ("get", "post", "put", "patch", "delete") and (path, method) not in served:
                out.append(f"{method.upper()} {path}: in Primer's spec, not served")
    return out, compared
