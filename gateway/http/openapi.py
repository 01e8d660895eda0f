"""The gateway's OpenAPI document, generated from the routes and the msgspec Structs that decode
and encode their bodies, never written by hand.

A surface declares its routes with `operation(...)`: a Starlette Route that also names its
request, query and response Structs. `document()` walks every surface's routes and asks msgspec
for the JSON Schema of every Struct they name (`msgspec.json.schema_components`), so what the
document says is what the code decodes and encodes. A route declared with a plain `Route` is not
in the document, and a test says so.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import msgspec
from starlette.routing import BaseRoute, Route

_PATH_PARAMETER = re.compile(r"{([^}:]+)(?::[^}]+)?}")
_REF = "#/components/schemas/{name}"


@dataclass(frozen=True)
class Operation:
    """What the document says of one route: its id, its bodies and its parameters."""

    operation_id: str
    summary: str
    request: type[Any] | None = None
    # The answer's Struct, by status (most operations have one: 200).
    responses: Mapping[int, type[Any]] = field(default_factory=dict)
    query: type[Any] | None = None  # a Struct whose fields are the query parameters
    headers: tuple[str, ...] = ()  # names in the surface's `headers`
    description: str = ""
    extension: bool = False  # the gateway's own, not in the API it speaks (Primer's, Medusa's)


class DocumentedRoute(Route):
    """A Route with its Operation."""

    def __init__(
        self, path: str, endpoint: Callable[..., Any], method: str, doc: Operation
    ) -> None:
        super().__init__(path, endpoint, methods=[method])
        self.method, self.doc = method, doc


def operation(
    path: str,
    endpoint: Callable[..., Any],
    method: str,
    operation_id: str,
    summary: str,
    *,
    request: type[Any] | None = None,
    response: type[Any] | None = None,
    status: int = 200,
    query: type[Any] | None = None,
    headers: tuple[str, ...] = (),
    extension: bool = False,
    also: Mapping[int, type[Any]] | None = None,  # other answers that are not errors
) -> DocumentedRoute:
    responses = {**({} if response is None else {status: response}), **(also or {})}
    doc = Operation(
        operation_id,
        summary,
        request=request,
        responses=responses,
        query=query,
        headers=headers,
        description=(endpoint.__doc__ or "").strip(),
        extension=extension,
    )
    return DocumentedRoute(path, endpoint, method, doc)


@dataclass(frozen=True)
class Surface:
    """One API surface as the document shows it: its routes under `prefix`, its tag, how it is
    authenticated, the header parameters its operations may name, and its error body."""

    name: str  # the tag
    description: str
    prefix: str
    routes: Sequence[BaseRoute]
    security: Mapping[str, Mapping[str, Any]]  # scheme name -> OpenAPI security scheme
    error: type[Any]
    headers: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)


def document(surfaces: Sequence[Surface], *, title: str, version: str) -> dict[str, Any]:
    """The OpenAPI 3.1 document of `surfaces` (JSON Schema 2020-12, as msgspec writes it)."""
    types: list[type[Any]] = []
    for surface in surfaces:
        types.append(surface.error)
        for route in _documented(surface):
            doc = route.doc
            types.extend(t for t in (doc.request, doc.query) if t is not None)
            types.extend(doc.responses.values())
    _, components = msgspec.json.schema_components(list(dict.fromkeys(types)), ref_template=_REF)
    queries = {
        route.doc.query.__name__: components[route.doc.query.__name__]
        for surface in surfaces
        for route in _documented(surface)
        if route.doc.query is not None
    }

    paths: dict[str, dict[str, Any]] = {}
    schemes: dict[str, Any] = {}
    for surface in surfaces:
        schemes.update(surface.security)
        for route in _documented(surface):
            path = surface.prefix + route.path if route.path != "/" else surface.prefix or "/"
            paths.setdefault(path, {})[route.method.lower()] = _operation(surface, route, queries)
    return {
        "openapi": "3.1.0",
        "info": {"title": title, "version": version},
        "tags": [{"name": s.name, "description": s.description} for s in surfaces],
        "paths": paths,
        "components": {
            # A query's Struct is its parameters, not a schema of its own.
            "schemas": {name: s for name, s in components.items() if name not in queries},
            "securitySchemes": schemes,
        },
    }


def _documented(surface: Surface) -> list[DocumentedRoute]:
    return [r for r in surface.routes if isinstance(r, DocumentedRoute)]


def undocumented(surface: Surface) -> list[str]:
    """The routes of `surface` that the document leaves out (a test wants none)."""
    return [
        f"{sorted(r.methods or [])} {r.path}"
        for r in surface.routes
        if isinstance(r, Route) and not isinstance(r, DocumentedRoute)
    ]


def _ref(model: type[Any]) -> dict[str, str]:
    return {"$ref": _REF.format(name=model.__name__)}


def _operation(
    surface: Surface, route: DocumentedRoute, queries: Mapping[str, Any]
) -> dict[str, Any]:
    doc = route.doc
    parameters: list[dict[str, Any]] = [
        {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}
        for name in _PATH_PARAMETER.findall(route.path)
    ]
    if doc.query is not None:
        query = queries[doc.query.__name__]
        required = set(query.get("required", ()))
        for name, schema in query.get("properties", {}).items():
            parameter = {"name": name, "in": "query", "required": name in required}
            if _is_array(schema):
                parameter.update(style="form", explode=True)
            parameters.append({**parameter, "schema": schema})
    parameters.extend({"in": "header", **surface.headers[name]} for name in doc.headers)

    responses: dict[str, Any] = {
        str(status): {
            "description": model.__doc__.strip().splitlines()[0]
            if model.__doc__
            else model.__name__,
            "content": {"application/json": {"schema": _ref(model)}},
        }
        for status, model in doc.responses.items()
    }
    responses["default"] = {
        "description": "An error, in this surface's shape.",
        "content": {"application/json": {"schema": _ref(surface.error)}},
    }
    answer: dict[str, Any] = {
        "operationId": doc.operation_id,
        "summary": doc.summary,
        "tags": [surface.name],
        "security": [{name: []} for name in surface.security],
        "parameters": parameters,
        "responses": responses,
    }
    if doc.description:
        answer["description"] = doc.description
    if doc.request is not None:
        answer["requestBody"] = {
            "required": True,
            "content": {"application/json": {"schema": _ref(doc.request)}},
        }
    if doc.extension:
        answer["x-gateway-extension"] = True
    return answer


def _is_array(schema: Mapping[str, Any]) -> bool:
    if schema.get("type") == "array":
        return True
    return any(option.get("type") == "array" for option in schema.get("anyOf", ()))
