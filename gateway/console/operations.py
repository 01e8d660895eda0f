"""The console's operator pages: workflow runs (stuck ones replayed or resolved), dead webhook
deliveries (delivered again), processor accounts with their circuit breakers, and routing rules
with `explain`.

Every action calls what the operator API calls: `engine.recovery.replay` and `resolve` (as
`POST /admin/workflows/{id}/replay` and `/resolve`), `notifications.redeliver` (as `POST
/admin/webhooks/{merchant}/redeliver`), `routing.explain` (as `POST /admin/routing/{m}/explain`).
An action is a POST form carrying the session's CSRF token (signin.py), answered by a redirect
to the page that shows its result, so reloading that page does not do it again.
"""

from __future__ import annotations

import re
import urllib.parse
import uuid
from typing import Any

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from gateway.console.errors import BadForm, NotFound
from gateway.console.pages import checked_id, merchant_list, query
from gateway.console.render import page
from gateway.console.signin import Console, operator_page
from workflows import accounts, notifications, routing
from workflows.errors import DomainError, PaymentError, RunNotFound, RunNotReplayable
from workflows.model import RunState

_RUN_STATES = [state.value for state in RunState]
_DELIVERY_STATES = ("dead", "pending", "delivered")

# ------------------------------------------------------------------ workflow runs


@operator_page
async def runs(request: Request, console: Console) -> Response:
    """Runs by state; stuck ones (recoveries exhausted: they wait for an operator) by default."""
    state = query(request).get("state", RunState.STUCK.value)
    if state not in _RUN_STATES:
        raise BadForm(f"Unknown run state {state[:40]!r}.")
    found = await console.services.reads.list_runs(state=state, limit=200)
    async with console.services.engine.db.connection() as conn:
        names = {m.id: m.name for m in await merchant_list(conn)}
    return page(
        request,
        "runs.html",
        console.session,
        runs=found,
        state=state,
        states=_RUN_STATES,
        names=names,
    )


async def _run(console: Console, run_id: str) -> Any:
    try:
        return await console.services.reads.run_with_history(checked_id(run_id, "workflow run"))
    except RunNotFound:
        raise NotFound(f"There is no workflow run {run_id!r}.") from None


def _action(request: Request) -> str:
    action: str = request.path_params["action"]
    if action not in ("replay", "resolve"):
        raise NotFound()
    return action


_DONE = {
    "replay": "Replayed.",
    "resolve": "Resolved.",
}


@operator_page
async def run(request: Request, console: Console) -> Response:
    found, history = await _run(console, request.path_params["id"])
    done = _DONE.get(query(request).get("done", ""), "")
    return page(request, "run.html", console.session, run=found, history=history, done=done)


@operator_page
async def confirm(request: Request, console: Console) -> Response:
    """The confirmation step of a replay or a resolution: what will be done, and the button."""
    action = _action(request)
    found, history = await _run(console, request.path_params["id"])
    return page(
        request,
        "confirm.html",
        console.session,
        run=found,
        history=history,
        action=action,
        error="",
    )


@operator_page
async def act(request: Request, console: Console) -> Response:
    """Replay (`engine.recovery.replay`) or resolve (`engine.recovery.resolve`) a run."""
    action = _action(request)
    found, history = await _run(console, request.path_params["id"])
    recovery = console.services.engine.recovery
    try:
        if action == "replay":
            await recovery.replay(found.id, by=console.by)
        else:
            outcome = console.form.get("outcome", "")
            if outcome not in ("", "succeeded", "failed"):
                raise BadForm("The outcome is succeeded, failed, or left to the processor.")
            happened = None if outcome == "" else outcome == "succeeded"
            await recovery.resolve(found.id, happened=happened, by=console.by)
    except (RunNotReplayable, PaymentError) as error:
        found, history = await _run(console, found.id)
        return page(
            request,
            "confirm.html",
            console.session,
            status=409,
            run=found,
            history=history,
            action=action,
            error=str(error),
        )
    return RedirectResponse(f"/console/runs/{found.id}?done={action}", status_code=303)


# ------------------------------------------------------------------ webhook deliveries


@operator_page
async def deliveries(request: Request, console: Console) -> Response:
    """Webhook deliveries by state: dead-lettered ones (given up on) by default."""
    params = query(request)
    state = params.get("state", "dead")
    if state not in _DELIVERY_STATES:
        raise BadForm(f"Unknown delivery state {state[:40]!r}.")
    merchant = params.get("merchant", "")
    async with console.services.engine.db.connection() as conn:
        known = await merchant_list(conn)
        if merchant and merchant not in {m.id for m in known}:
            raise BadForm("No such merchant.")
        found = await notifications.list_deliveries(
            conn, merchant_id=merchant or None, state=state, limit=200
        )
        urls = {e.id: e.url for e in await notifications.list_endpoints(conn, merchant or None)}
    redelivered = params.get("redelivered", "")
    return page(
        request,
        "deliveries.html",
        console.session,
        deliveries=found,
        state=state,
        states=_DELIVERY_STATES,
        merchant=merchant,
        merchants=known,
        names={m.id: m.name for m in known},
        urls=urls,
        redelivered=int(redelivered) if redelivered.isdigit() else None,
    )


@operator_page
async def redeliver(request: Request, console: Console) -> Response:
    """One event delivered again, now and on a fresh schedule (`notifications.redeliver`)."""
    try:
        event_id = uuid.UUID(console.form.get("event", ""))
    except ValueError:
        raise BadForm("No event to redeliver.") from None
    merchant = checked_id(console.form.get("merchant", ""), "merchant")
    async with console.services.engine.db.connection() as conn:
        count = await notifications.redeliver(conn, event_id=event_id, merchant_id=merchant)
    back = urllib.parse.urlencode({"state": "dead", "redelivered": count})
    return RedirectResponse(f"/console/deliveries?{back}", status_code=303)


# ------------------------------------------------------------------ processor accounts


@operator_page
async def processors(request: Request, console: Console) -> Response:
    """Every merchant's processor accounts, and the circuit breaker of each (as `gateway
    processors health` and /health/ready read them)."""
    services = console.services
    async with services.engine.db.connection() as conn:
        known = await merchant_list(conn)
        listed = await accounts.list_accounts(conn)
    circuits = {(c.merchant_id, c.account): c for c in await services.engine.circuits.report()}
    ids = {m.name: m.id for m in known}
    rows = []
    for account in listed:
        circuit = circuits.pop((ids.get(account.merchant_name, ""), account.name), None)
        rows.append((account.merchant_name, account.name, account.kind, account.state, circuit))
    names = {m.id: m.name for m in known}
    # Circuits of built-in processors (no account row): listed too.
    for (merchant_id, name), circuit in sorted(circuits.items()):
        rows.append((names.get(merchant_id, merchant_id), name, name, "built in", circuit))
    return page(request, "processors.html", console.session, rows=rows, merchants=known)


# ------------------------------------------------------------------ routing rules


_COUNTRY = re.compile("^[A-Z]{2}$")


def _metadata(text: str) -> dict[str, Any]:
    """`key=value` lines (the explain form's metadata)."""
    found: dict[str, Any] = {}
    for line in text.splitlines():
        if line.strip():
            key, sep, value = line.partition("=")
            if not sep or not key.strip():
                raise BadForm("Metadata is one key=value per line.")
            found[key.strip()] = value.strip()
    return found


@operator_page
async def rules(request: Request, console: Console) -> Response:
    """A merchant's rules in force (read-only), and how they would route a payment."""
    params = query(request)
    merchant_id = params.get("merchant", "")
    explained = None
    problem = ""
    async with console.services.engine.db.connection() as conn:
        known = await merchant_list(conn)
        merchant = next((m for m in known if m.id == merchant_id), None)
        if merchant_id and merchant is None:
            raise BadForm("No such merchant.")
        versions = await routing.history(conn, merchant.id) if merchant else []
        if merchant is not None and "explain" in params:
            currency = params.get("currency", "").strip().upper()
            amount = params.get("amount", "").strip()
            country = params.get("order_country", "").strip().upper()
            if not re.match("^[A-Z]{3}$", currency):
                problem = "currency: a 3-letter code"
            elif not (amount.isascii() and amount.isdigit()) or int(amount) > 2**63 - 1:
                problem = "amount: a whole number of minor units"
            elif country and not _COUNTRY.match(country):
                problem = "order country: a 2-letter code"
            else:
                try:
                    explained = await routing.explain(
                        conn,
                        merchant.id,
                        currency=currency,
                        amount=int(amount),
                        token=params.get("token", "").strip(),
                        customer_id=params.get("customer_id", "").strip() or None,
                        metadata=_metadata(params.get("metadata", "")),
                        order={"countryCode": country} if country else None,
                    )
                except DomainError as error:
                    problem = str(error)
    in_force = versions[0] if versions else None
    return page(
        request,
        "routing.html",
        console.session,
        status=400 if problem else 200,
        merchants=known,
        merchant=merchant,
        in_force=in_force,
        ruleset=routing.rules_of(in_force.rules) if in_force else None,
        explained=explained,
        problem=problem,
        params=params,
    )
