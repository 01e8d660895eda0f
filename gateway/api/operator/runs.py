"""Workflow runs for operators: list, inspect, replay and resolve them."""

from __future__ import annotations

import re

from starlette.requests import Request
from starlette.responses import Response

from gateway import accounts
from gateway.api.operator.endpoint import operator_endpoint
from gateway.api.operator.schemas import ResolveRun, WorkflowRun, WorkflowRunList, WorkflowRunQuery
from gateway.http.bodies import read_body, read_query
from gateway.http.errors import ApiError
from gateway.http.responses import JSONResponse
from gateway.services import Services
from workflows.errors import PaymentError, RunNotFound, RunNotReplayable


class WorkflowRunNotFound(ApiError):
    """No workflow run has this id."""

    status = 404
    error_id = "WorkflowRunNotFound"


class WorkflowRunNotReplayable(ApiError):
    """This workflow run cannot be replayed."""

    status = 409
    error_id = "WorkflowRunNotReplayable"


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
    query = read_query(request, WorkflowRunQuery)
    runs = await services.reads.list_runs(state=query.state, payment_id=query.payment)
    return JSONResponse(WorkflowRunList([WorkflowRun.of(run) for run in runs]))


@operator_endpoint
async def show_run(request: Request, principal: accounts.Principal) -> Response:
    services: Services = request.app.state.services
    try:
        run, history = await services.reads.run_with_history(_run_id(request))
    except RunNotFound as error:
        raise WorkflowRunNotFound(str(error)) from None
    return JSONResponse(WorkflowRun.of(run, history))


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
    return JSONResponse(WorkflowRun.of(run, history))


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
    return JSONResponse(WorkflowRun.of(run, history))
