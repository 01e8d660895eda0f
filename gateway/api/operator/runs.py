"""Workflow runs for operators: list, inspect, replay and resolve them."""

from __future__ import annotations

import re
from typing import Any, Literal

import msgspec
from starlette.requests import Request
from starlette.responses import Response

from gateway import accounts
from gateway.api.operator.endpoint import operator_endpoint
from gateway.http.bodies import read_body
from gateway.http.errors import ApiError, validation_error
from gateway.http.responses import JSONResponse
from gateway.services import Services
from workflows.errors import PaymentError, RunNotFound, RunNotReplayable
from workflows.model import HistoryEntry, Run, RunState

RUN_STATES = tuple(RunState)


class WorkflowRunNotFound(ApiError):
    """No workflow run has this id."""

    status = 404
    error_id = "WorkflowRunNotFound"


class WorkflowRunNotReplayable(ApiError):
    """This workflow run cannot be replayed."""

    status = 409
    error_id = "WorkflowRunNotReplayable"


def run_json(run: Run, history: list[HistoryEntry] | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": run.id,
        "merchantId": run.merchant_id,
        "paymentId": run.payment_id,
        "kind": run.kind,
        "state": run.state,
        "recoveryPoint": run.recovery_point,
        "amount": run.amount,
        "attempts": run.attempts,
        "recoveries": run.recoveries,
        "processorKey": run.processor_key,
        "processorAccount": run.account,
        "leaseOwner": run.lease_owner,
        "leaseExpiresAt": run.lease_expires_at.isoformat() if run.lease_expires_at else None,
        "nextAttemptAt": run.next_attempt_at.isoformat() if run.next_attempt_at else None,
        "outcome": None if run.outcome is None else msgspec.to_builtins(run.outcome),
        "lastError": run.last_error,
        "createdAt": run.created_at.isoformat(),
        "updatedAt": run.updated_at.isoformat(),
    }
    if history is not None:
        body["history"] = [
            {"at": entry.at.isoformat(), "event": entry.event, "detail": entry.detail}
            for entry in history
        ]
    return body


# What an id can look like: anything else (a NUL, a megabyte) names nothing.
_ID = re.compile("^[A-Za-z0-9_-]{1,64}$")


def _run_id(request: Request) -> str:
    run_id: str = request.path_params["id"]
    if not _ID.match(run_id):
        raise WorkflowRunNotFound(f"no workflow run with id {run_id[:64]!r}")
    return run_id


@operator_endpoint
async def list_runs(request: Request, principal: accounts.Principal) -> Response:
    services: Services = request.app.state.services
    state = request.query_params.get("state")
    if state is not None and state not in RUN_STATES:
        raise validation_error("WorkflowRunQuery", f"Unknown state {state!r} - at `$.state`")
    payment = request.query_params.get("payment")
    if payment is not None and not _ID.match(payment):
        raise validation_error("WorkflowRunQuery", "Not a payment id - at `$.payment`")
    runs = await services.reads.list_runs(state=state, payment_id=payment)
    return JSONResponse({"data": [run_json(run) for run in runs]})


@operator_endpoint
async def show_run(request: Request, principal: accounts.Principal) -> Response:
    services: Services = request.app.state.services
    try:
        run, history = await services.reads.run_with_history(_run_id(request))
    except RunNotFound as error:
        raise WorkflowRunNotFound(str(error)) from None
    return JSONResponse(run_json(run, history))


class ResolveRun(msgspec.Struct, forbid_unknown_fields=True):
    """What the operator found at the processor, when the processor cannot answer itself."""

    outcome: Literal["succeeded", "failed"] | None = None


def _by(principal: accounts.Principal) -> str:
    return f"operator key {principal.key_id}"


@operator_endpoint
async def resolve_run(request: Request, principal: accounts.Principal) -> Response:
    services: Services = request.app.state.services
    body = await read_body(request, ResolveRun)
    happened = None if body.outcome is None else body.outcome == "succeeded"
    try:
        run_id = _run_id(request)
        await services.engine.recovery.resolve(run_id, happened=happened, by=_by(principal))
        run, history = await services.reads.run_with_history(run_id)
    except RunNotFound as error:
        raise WorkflowRunNotFound(str(error)) from None
    except RunNotReplayable as error:
        raise WorkflowRunNotReplayable(str(error)) from None
    except PaymentError as error:
        raise WorkflowRunNotReplayable(f"the run could not be resolved: {error}") from None
    return JSONResponse(run_json(run, history))


@operator_endpoint
async def replay_run(request: Request, principal: accounts.Principal) -> Response:
    services: Services = request.app.state.services
    try:
        run_id = _run_id(request)
        await services.engine.recovery.replay(run_id, by=_by(principal))
        run, history = await services.reads.run_with_history(run_id)
    except RunNotFound as error:
        raise WorkflowRunNotFound(str(error)) from None
    except RunNotReplayable as error:
        raise WorkflowRunNotReplayable(str(error)) from None
    except PaymentError as error:  # e.g. its processor cannot be used: the run is as it was
        raise WorkflowRunNotReplayable(f"the replay could not be done: {error}") from None
    return JSONResponse(run_json(run, history))
