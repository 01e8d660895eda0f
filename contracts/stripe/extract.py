"""Extract from Stripe's OpenAPI spec (spec3.json) the part the Stripe connector uses.

    python contracts/stripe/extract.py PATH/TO/spec3.json > contracts/stripe/spec3.subset.json

Keeps the operations below and every component schema they reference (transitively), so that
tests/stripe_contract.py checks each request the connector sends against Stripe's own words.
Add an operation here when the connector starts calling it.
"""

from __future__ import annotations

import json
import sys
from typing import Any

OPERATIONS = {
    "/v1/payment_intents": ("post",),
    "/v1/payment_intents/search": ("get",),
    "/v1/payment_intents/{intent}": ("get",),
    "/v1/payment_intents/{intent}/capture": ("post",),
    "/v1/payment_intents/{intent}/cancel": ("post",),
    "/v1/refunds": ("get", "post"),
}
ALWAYS = ("error",)  # Stripe's error body


def _refs(node: Any, found: set[str]) -> None:
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith("#/components/schemas/"):
            found.add(ref.rsplit("/", 1)[1])
        for value in node.values():
            _refs(value, found)
    elif isinstance(node, list):
        for value in node:
            _refs(value, found)


def extract(spec: dict[str, Any]) -> dict[str, Any]:
    paths = {
        path: {verb: spec["paths"][path][verb] for verb in verbs}
        for path, verbs in OPERATIONS.items()
    }
    schemas = spec["components"]["schemas"]
    wanted: set[str] = set(ALWAYS)
    _refs(paths, wanted)
    done: set[str] = set()
    while wanted - done:
        name = sorted(wanted - done)[0]
        done.add(name)
        _refs(schemas[name], wanted)
    return {
        "openapi": spec["openapi"],
        "info": {**spec["info"], "description": "Subset: see contracts/stripe/extract.py"},
        "paths": paths,
        "components": {"schemas": {name: schemas[name] for name in sorted(done)}},
    }


if __name__ == "__main__":
    with open(sys.argv[1], encoding="utf-8") as source:
        json.dump(extract(json.load(source)), sys.stdout, indent=1, sort_keys=True)
        sys.stdout.write("\n")
