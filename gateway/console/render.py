"""The console's HTML: one Jinja2 environment (autoescaping every value), and the page response.

Every page is rendered from the domain's records (workflows.model), never from an API's JSON:
the console shows what the domain keeps, and the domain keeps no more of a card than its first
six and last four digits, and no secret in clear.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

import jinja2
import msgspec
from starlette.requests import Request
from starlette.responses import HTMLResponse

from gateway.console.session import Session
from gateway.http.middleware import request_id

_env = jinja2.Environment(
    loader=jinja2.PackageLoader("gateway.console", "templates"),
    autoescape=True,  # every template, whatever its name
    undefined=jinja2.StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)


def _when(value: datetime | None) -> str:
    return "-" if value is None else value.strftime("%Y-%m-%d %H:%M:%S UTC")


def _as_json(value: Any) -> str:
    """A stored value (a run's input, a history entry's detail) as compact JSON text (escaped
    by the template like any other text)."""
    return json.dumps(msgspec.to_builtins(value), sort_keys=True, default=str)


_env.filters["when"] = _when
_env.filters["as_json"] = _as_json


def page(
    request: Request,
    template: str,
    session: Session | None = None,
    *,
    status: int = 200,
    **context: Any,
) -> HTMLResponse:
    """A page: `template` with `context`, the session's CSRF token for its forms, the section of
    the navigation it belongs to."""
    html = _env.get_template(template).render(
        csrf=session.csrf if session else "",
        signed_in=session is not None,
        path=request.url.path,
        request_id=request_id(request.scope),
        **context,
    )
    return HTMLResponse(html, status_code=status)
