"""The gateway's API reference: `GET /openapi.json` (every surface: Primer's, the operator API,
Medusa's) and `GET /docs`, a page rendered from that same document by a template shipped in the
package (no CDN, no script: it reads offline and without JavaScript).

Both are public, as Primer's own reference is: they describe the API, not anyone's data.
"""

from __future__ import annotations

import functools
import importlib.metadata
import importlib.resources
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import jinja2
import msgspec
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Route

from gateway.api import medusa, operator, primer
from gateway.http.openapi import Surface, document

SURFACES: tuple[Surface, ...] = (primer.SURFACE, operator.SURFACE, medusa.SURFACE)
TITLE = "Payment gateway"


@functools.cache
def openapi() -> dict[str, Any]:
    try:
        version = importlib.metadata.version("payment-gateway")
    except importlib.metadata.PackageNotFoundError:  # run from a source tree, not installed
        version = "0"
    return document(SURFACES, title=TITLE, version=version)


@functools.cache
def _openapi_bytes() -> bytes:
    return msgspec.json.encode(openapi())


async def openapi_json(request: Request) -> Response:
    return Response(_openapi_bytes(), media_type="application/json")


# ------------------------------------------------------------------ the page


@dataclass(frozen=True)
class Field:
    name: str
    type: str
    link: str | None  # the schema it names, when it names one
    required: bool
    notes: str


def _type(schema: Mapping[str, Any]) -> tuple[str, str | None]:
    """A schema as a reader wants it: "string", "list of Address", "Currency or null"."""
    if "$ref" in schema:
        name = str(schema["$ref"]).rsplit("/", 1)[-1]
        return name, name
    for key in ("anyOf", "oneOf"):
        if key in schema:
            parts = [_type(option) for option in schema[key]]
            link = next((found for _, found in parts if found), None)
            return " or ".join(text for text, _ in parts), link
    kind = schema.get("type", "string" if "enum" in schema else "any")
    if kind == "array":
        text, link = _type(schema.get("items", {}))
        return f"list of {text}", link
    if isinstance(kind, list):
        return " or ".join(str(k) for k in kind), None
    if "format" in schema:
        return f"{kind} ({schema['format']})", None
    return str(kind), None


def _notes(schema: Mapping[str, Any]) -> str:
    notes = []
    options = [schema, *schema.get("anyOf", ())]
    options += [option["items"] for option in options if "items" in option]
    for option in options:
        if "enum" in option:
            values = [str(v) for v in option["enum"]]
            shown = ", ".join(values[:12])
            notes.append(
                f"one of {shown}" + (f" and {len(values) - 12} more" if len(values) > 12 else "")
            )
        for key, label in (
            ("minimum", ">="),
            ("maximum", "<="),
            ("exclusiveMinimum", ">"),
            ("minLength", "length >="),
            ("maxLength", "length <="),
            ("pattern", "matches"),
        ):
            if key in option:
                notes.append(f"{label} {option[key]}")
    if "default" in schema:
        notes.append(f"default {msgspec.json.encode(schema['default']).decode()}")
    if "description" in schema:
        notes.append(str(schema["description"]))
    return "; ".join(notes)


def _fields(schema: Mapping[str, Any]) -> list[Field]:
    required = set(schema.get("required", ()))
    return [
        Field(name, *_type(prop), required=name in required, notes=_notes(prop))
        for name, prop in schema.get("properties", {}).items()
    ]


def _page_model(doc: Mapping[str, Any]) -> dict[str, Any]:
    operations: dict[str, list[dict[str, Any]]] = {tag["name"]: [] for tag in doc["tags"]}
    for path, methods in doc["paths"].items():
        for method, op in methods.items():
            body = op.get("requestBody", {}).get("content", {}).get("application/json", {})
            operations[op["tags"][0]].append(
                {
                    "id": op["operationId"],
                    "method": method.upper(),
                    "path": path,
                    "summary": op["summary"],
                    "description": op.get("description", ""),
                    "security": [name for entry in op["security"] for name in entry],
                    "extension": op.get("x-gateway-extension", False),
                    "parameters": [
                        {
                            "name": p["name"],
                            "in": p["in"],
                            "required": p.get("required", False),
                            "type": _type(p["schema"])[0],
                            "notes": _notes({**p["schema"], **p}),
                        }
                        for p in op["parameters"]
                    ],
                    "request": _type(body["schema"])[1] if body else None,
                    "responses": [
                        (status, _type(answer["content"]["application/json"]["schema"])[1])
                        for status, answer in op["responses"].items()
                    ],
                }
            )
    schemas = [
        {
            "name": name,
            "description": schema.get("description", ""),
            "fields": _fields(schema),
            "notes": "" if "properties" in schema else _notes(schema),
            "type": "" if "properties" in schema else _type(schema)[0],
        }
        for name, schema in sorted(doc["components"]["schemas"].items())
    ]
    return {
        "title": doc["info"]["title"],
        "version": doc["info"]["version"],
        "tags": doc["tags"],
        "operations": operations,
        "schemes": doc["components"]["securitySchemes"],
        "schemas": schemas,
    }


_templates = jinja2.Environment(
    loader=jinja2.FunctionLoader(
        lambda name: importlib.resources.files("gateway.api").joinpath(name).read_text("utf-8")
    ),
    autoescape=True,
    undefined=jinja2.StrictUndefined,
)


@functools.cache
def _page() -> bytes:
    return _templates.get_template("reference.html").render(**_page_model(openapi())).encode()


async def docs(request: Request) -> Response:
    return HTMLResponse(
        _page(),
        headers={
            "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'",
            "X-Content-Type-Options": "nosniff",
        },
    )


ROUTES = [
    Route("/openapi.json", openapi_json, methods=["GET"]),
    Route("/docs", docs, methods=["GET"]),
]
