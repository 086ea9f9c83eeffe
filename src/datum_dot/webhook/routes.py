"""The routes of the webhook: module-level handlers, each given the `AppContext` (`Context`).

| route | answer |
| --- | --- |
| `POST /v1/projects/{project}/runs` | 202: queued, with the run id and its URLs |
| `POST /trigger/{project_id}/{run_id}` | the datum CLI's route: the same; `run_id` is the idempotency key |
| `POST /v1/projects/{project}/github` | a GitHub push: 202 queued or ignored; a ping: 200 |
| `GET /v1/runs/{run_id}` | the run's record (the history's JSON), or `"status": "queued"` |
| `GET /v1/runs/{run_id}/log` | the output so far, streamed while the run goes on |
| `GET /v1/runs?status=&limit=&project=` | runs, newest first, queued ones included |
| `GET /healthz` | 200 (no authentication) |

Every route but `/healthz` (in `app`) takes the bearer token or an HMAC signature.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Header, Query, Request, Security
from fastapi import Path as UrlPath
from fastapi.responses import JSONResponse, PlainTextResponse, StreamingResponse
from fastapi.security import APIKeyHeader, HTTPBearer
from starlette.concurrency import run_in_threadpool

from datum_dot.errors import BadInputError
from datum_dot.history import RUN_ID
from datum_dot.runs.run import RunStatus
from datum_dot.webhook import github, views
from datum_dot.webhook.auth import GITHUB_SIGNATURE_HEADER, github_signature_matches
from datum_dot.webhook.context import AppContext, Context
from datum_dot.webhook.errors import UnknownRunError
from datum_dot.webhook.intake import Ask
from datum_dot.webhook.jobs import Enqueued, JobState, Source
from datum_dot.webhook.models import (
    ACCEPT_ERRORS,
    ERRORS,
    KEY_PATTERN,
    Accepted,
    Problem,
    ProjectId,
    RunBody,
    TriggerBody,
)

FOLLOW_POLL_SECONDS = 0.25


# Every route below takes the bearer token or an HMAC signature (checked by `Guard`); these
# declare both to the OpenAPI schema.
router = APIRouter(
    dependencies=[
        Security(HTTPBearer(auto_error=False, description="the token of `dot webhook token`")),
        Security(APIKeyHeader(name="X-Datum-Signature", auto_error=False)),
    ],
    responses=ERRORS,
)


@router.post("/v1/projects/{project}/runs", status_code=202, responses=ACCEPT_ERRORS)
async def create_run(
    project: ProjectId,
    body: RunBody,
    request: Request,
    ctx: Context,
    idempotency_key: Annotated[str | None, Header(pattern=KEY_PATTERN)] = None,
) -> Accepted:
    """Queue a run of `command` for `spec`; answered once the request is on disk."""
    ask = Ask(
        spec=body.spec,
        command=body.command,
        args=tuple(body.args),
        vars=body.vars,
        timeout=body.timeout,
        defer=body.defer,
        state_source=body.state_source,
        state_from=body.state_from,
        max_state_age=body.max_state_age,
    )
    return await _accept(ctx, project, ask, body.idempotency_key or idempotency_key, request)


@router.post("/trigger/{project_id}/{run_id}", status_code=202, responses=ACCEPT_ERRORS)
async def trigger(
    project_id: ProjectId,
    run_id: Annotated[
        str, UrlPath(pattern=KEY_PATTERN, description="the client's idempotency key")
    ],
    request: Request,
    ctx: Context,
    body: TriggerBody | None = None,
) -> Accepted:
    """The datum CLI's route: `run_id` names the request, so a retry runs nothing twice."""
    body = body or TriggerBody()
    args = (*body.args, *(("--target", body.target) if body.target else ()))
    ask = Ask(
        spec=body.spec,
        command=body.command,
        args=args,
        vars=body.vars,
        timeout=body.timeout,
        source=Source.TRIGGER,
    )
    return await _accept(ctx, project_id, ask, run_id, request)


@router.post(
    "/v1/projects/{project}/github",
    status_code=202,
    responses={**ACCEPT_ERRORS, 200: {"description": "a ping, answered"}},
)
async def github_push(
    project: ProjectId,
    request: Request,
    ctx: Context,
    x_github_event: Annotated[str | None, Header()] = None,
    x_github_delivery: Annotated[str | None, Header()] = None,
) -> JSONResponse:
    """A GitHub webhook: a push to a mapped branch builds the pushed commit."""
    body = await request.body()
    settings = (await run_in_threadpool(ctx.intake.config)).webhook
    if request.state.auth is None:
        secret = ctx.environ.get(settings.github_secret_env or "") or None
        header = request.headers.get(GITHUB_SIGNATURE_HEADER)
        if secret is None or not github_signature_matches(header, body, secret):
            return JSONResponse(
                {"detail": "the X-Hub-Signature-256 signature does not match"},
                status_code=401,
            )
    if x_github_event == "ping":
        return JSONResponse({"status": "pong"}, status_code=200)
    if x_github_event != "push":
        reason = f"event '{x_github_event}' is not handled; only push events build"
        return JSONResponse({"status": "ignored", "reason": reason}, status_code=202)
    push = github.read_push(body, settings.branch_envs)
    if isinstance(push, github.Ignored):
        return JSONResponse({"status": "ignored", "reason": push.reason}, status_code=202)
    ask = Ask(spec=push.spec, commit=push.commit, source=Source.GITHUB)
    key = github.delivery_key(x_github_delivery)
    accepted = await _accept(ctx, project, ask, key, request)
    return JSONResponse(accepted.model_dump(), status_code=202)


@router.get("/v1/runs/{run_id}", responses={404: {"model": Problem, "description": "no such run"}})
def get_run(run_id: str, request: Request, ctx: Context) -> dict[str, Any]:
    """The run's record: the history's JSON, or `"status": "queued"` before it begins."""
    run = views.lookup(ctx.store, _checked_id(run_id))
    job = ctx.queue.get(run_id)
    base, runs_dir = str(request.base_url), ctx.store.runs_dir
    if run is not None:
        again = ctx.queue.retried_as(run_id) if run.status is RunStatus.ABORTED else None
        return views.run_view(run, job, base_url=base, runs_dir=runs_dir, retried_as=again)
    if job is None:
        raise _unknown_run(run_id)
    position = ctx.queue.position(job) if job.state is JobState.QUEUED else None
    return views.queued_view(job, base_url=base, runs_dir=runs_dir, position=position)


@router.get(
    "/v1/runs/{run_id}/log",
    response_model=None,
    responses={
        200: {
            "description": "the output",
            "content": {"text/plain": {"schema": {"type": "string"}}},
        },
        404: {"model": Problem, "description": "no such run"},
    },
)
async def get_log(
    run_id: str, ctx: Context, follow: bool = True
) -> PlainTextResponse | StreamingResponse:
    """The run's output (timestamped); streamed until the run ends when `follow`."""
    run = await run_in_threadpool(views.lookup, ctx.store, _checked_id(run_id))
    if run is None:
        if await run_in_threadpool(ctx.queue.get, run_id) is None:
            raise _unknown_run(run_id)
        return PlainTextResponse("", headers={"X-Run-Status": views.QUEUED})
    path = run.files()["output"]
    if run.status is not RunStatus.RUNNING or not follow:
        text = await run_in_threadpool(_read_text, path)
        return PlainTextResponse(text, headers={"X-Run-Status": run.status.value})
    return StreamingResponse(
        _follow(ctx, path, run_id),
        media_type="text/plain; charset=utf-8",
        headers={"X-Run-Status": run.status.value},
    )


@router.get("/v1/runs", responses={404: {"model": Problem, "description": "unknown project"}})
def list_runs(
    request: Request,
    ctx: Context,
    status: Annotated[
        str | None,
        Query(
            max_length=200,
            pattern=views.STATUS_PATTERN,
            description="a,b: any of " + ", ".join(views.STATUSES),
        ),
    ] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 20,
    project: Annotated[str | None, Query(max_length=100)] = None,
) -> dict[str, list[dict[str, Any]]]:
    """Runs, newest first: queued ones, then those in the history."""
    try:
        wanted = views.parse_statuses(status)
    except ValueError as e:
        raise BadInputError(str(e), "for example: ?status=failed,timeout") from e
    base, runs_dir = str(request.base_url), ctx.store.runs_dir
    name = ctx.intake.project(project).name if project is not None else None
    found: list[dict[str, Any]] = []
    if wanted is None or views.QUEUED in wanted:
        found += [
            views.queued_view(job, base_url=base, runs_dir=runs_dir, position=None)
            for job in ctx.queue.unfinished(limit=limit, project=project)
            if views.lookup(ctx.store, job.run_id) is None
        ]
    statuses = None if wanted is None else views.history_statuses(wanted)
    if statuses is None or statuses:
        found += [
            views.run_view(run, None, base_url=base, runs_dir=runs_dir)
            for run in ctx.store.query(last=limit, status=statuses, project=name)
        ]
    return {"runs": found[:limit]}


async def _accept(
    ctx: AppContext, project_id: str, ask: Ask, key: str | None, request: Request
) -> Accepted:
    """Check, resolve and queue a request; answered once it is on disk.

    A spec without a ref is checked in the event loop (a few `stat` calls: the files are
    cached); one with a ref asks git, in a thread. A repeated idempotency key is answered by
    the queue's own check when the request is committed, so the usual path reads nothing more.
    """
    project = ctx.intake.project(project_id)
    fingerprint = ask.fingerprint()
    try:
        if "@" in ask.spec or ask.commit is not None:
            resolved = await run_in_threadpool(ctx.intake.resolve, project, ask)
        else:
            resolved = ctx.intake.resolve(project, ask)
    except BadInputError:
        # A retry of a request accepted before its branch was deleted is still that request.
        earlier = None
        if key is not None:
            earlier = await run_in_threadpool(ctx.queue.find, project.id, key, fingerprint)
        if earlier is None:
            raise
        done = Enqueued(earlier, created=False)
    else:
        if ctx.committer is not None:
            done = await ctx.committer.enqueue_async(
                resolved, idempotency_key=key, fingerprint=fingerprint
            )
        else:
            done = await run_in_threadpool(
                lambda: ctx.queue.enqueue(resolved, idempotency_key=key, fingerprint=fingerprint)
            )
    job = done.job
    status = views.QUEUED
    if job.state is not JobState.QUEUED:
        run = await run_in_threadpool(views.lookup, ctx.store, job.run_id)
        status = run.status.value if run is not None else views.QUEUED
    req = job.request
    return Accepted(
        run_id=job.run_id,
        status=status,
        project=project.id,
        spec=req.spec,
        env=req.env or None,
        commit=req.commit,
        idempotency_key=key,
        replayed=not done.created,
        **views.urls(str(request.base_url), ctx.store.runs_dir, job.run_id),
    )


async def _follow(ctx: AppContext, path: Path, run_id: str) -> AsyncIterator[bytes]:
    with path.open("rb") as f:
        while True:
            chunk = await run_in_threadpool(f.read, 64 * 1024)
            if chunk:
                yield chunk
                continue
            if ctx.stopping.is_set():
                return
            run = await run_in_threadpool(views.lookup, ctx.store, run_id)
            if run is None or run.status is not RunStatus.RUNNING:
                rest = await run_in_threadpool(f.read)
                if rest:
                    yield rest
                return
            await asyncio.sleep(FOLLOW_POLL_SECONDS)


def _read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""


def _checked_id(run_id: str) -> str:
    if not RUN_ID.fullmatch(run_id):
        raise _unknown_run(run_id)
    return run_id


def _unknown_run(run_id: str) -> UnknownRunError:
    shown = run_id if len(run_id) <= 100 else run_id[:100] + "..."
    return UnknownRunError(f"no run {shown!r}", "list runs with GET /v1/runs")
