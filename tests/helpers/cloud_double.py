"""A local test double of the dbt Cloud Administrative API v2, served by uvicorn on 127.0.0.1.

It speaks the documented protocol over real HTTP: `Authorization: Token <token>`, every JSON
answer in the envelope `{data, status: {code, is_success, user_message, developer_message},
extra}`, integer run statuses (1 queued, 2 starting, 3 running, 10 success, 20 error,
30 cancelled), timestamps written `2021-11-26 16:48:41.431645+00:00`, artifacts listed by
`.../artifacts/` and served raw by `.../artifacts/{path}`.

It also serves the Discovery API (GraphQL) on `POST /graphql` with `Authorization: Bearer
<token>`: `job(id:, runId:)` answers `{"data": {"job": {"models": [...], "seeds": [...],
"snapshots": [...], "tests": [...]}}}` built from the run's run_results.json, with execution
times `DISCOVERY_EXTRA_SECONDS` longer than the artifact's so a test can tell the sources apart.
`discovery` switches it: `ok`, `no-access` (403), `graphql-error` (200 with `errors`, as for a
token without metadata access), `down` (500), `partial` (some values null, one kind missing),
`empty` (`job: null`, a run not ingested yet), `echo-token` (an error quoting the credentials).

Each job has a scenario (how its runs end); each poll of a run moves it one step along
queued -> starting -> running -> final. Faults (status codes, `Retry-After`) can be queued for
the next matching requests. Every request is recorded for assertions.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response

TOKEN = "test-token-not-secret"  # noqa: S105 - the double's own test token
ACCOUNT = 43
SUCCESS_JOB, ERROR_JOB, CANCELLED_JOB, NEVER_JOB = 101, 102, 103, 104
DISCOVERY_EXTRA_SECONDS = 40.0
NO_METADATA_ACCESS = "The API token does not have access to the Discovery API"
LOG_LINES = ["Running with dbt=1.11.0", "1 of 2 START sql table model analytics.orders", "Done."]


@dataclass
class Scenario:
    """How runs of one job behave: the final status, and the polls spent in each early state."""

    final: int = 10  # 10 success, 20 error, 30 cancelled (by someone in dbt Cloud), 0 never
    queued_polls: int = 1
    running_polls: int = 2


@dataclass
class RunState:
    """One run held by the double."""

    id: int
    job_id: int
    body: dict[str, Any]
    scenario: Scenario
    polls: int = 0
    status: int = 1
    cancelled: bool = False
    created_at: str = field(default_factory=lambda: _stamp())

    def advance(self) -> None:
        """One poll: queued -> starting -> running -> final (unless cancelled or never)."""
        if self.status >= 10:
            return
        self.polls += 1
        early = self.scenario.queued_polls
        if self.polls <= early:
            self.status = 1
        elif self.polls == early + 1:
            self.status = 2
        elif self.polls <= early + 1 + self.scenario.running_polls or self.scenario.final == 0:
            self.status = 3
        else:
            self.status = self.scenario.final


@dataclass
class Fault:
    """Answer the next `times` requests whose path contains `path` with `status`."""

    status: int
    times: int = 1
    path: str = ""
    method: str = ""
    headers: dict[str, str] = field(default_factory=dict)


class CloudDouble:
    """The double's state; `app` is the FastAPI application serving it."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.jobs: dict[int, Scenario] = {
            SUCCESS_JOB: Scenario(final=10),
            ERROR_JOB: Scenario(final=20),
            CANCELLED_JOB: Scenario(final=30),
            NEVER_JOB: Scenario(final=0),
        }
        self.runs: dict[int, RunState] = {}
        self.requests: list[tuple[str, str, str]] = []
        self.faults: list[Fault] = []
        self.active = 0
        self.max_active = 0
        self.job_artifacts: dict[int, dict[str, bytes]] = {}
        """Artifacts served for every finished run of a job, instead of the built-in ones."""
        self.discovery = "ok"
        """How `POST /graphql` answers (see the module's docstring)."""
        self.graphql: list[tuple[str, dict[str, Any]]] = []
        """Each GraphQL request: its Authorization header and its JSON body."""
        self._next_id = 9000
        self.app = self._make_app()

    def fail_next(self, status: int, **kwargs: Any) -> None:
        """Queue a fault (see `Fault`)."""
        with self.lock:
            self.faults.append(Fault(status, **kwargs))

    def add_finished_run(self, job_id: int, status: int) -> int:
        """Record a run of `job_id` that already ended with `status` (10, 20, 30); its id."""
        with self.lock:
            run = self._new_run(job_id, {"cause": "earlier"}, self.jobs[job_id])
            self._track(run.status, status)
            run.status = status
            return run.id

    def count(self, method: str, fragment: str) -> int:
        """How many requests with this method had `fragment` in their path."""
        with self.lock:
            return sum(1 for m, path, _ in self.requests if m == method and fragment in path)

    # --- the API --------------------------------------------------------------------------

    def _make_app(self) -> FastAPI:
        app = FastAPI()
        base = "/api/v2/accounts/{account_id}"

        @app.middleware("http")
        async def guard(request: Request, call_next: Any) -> Response:
            with self.lock:
                self.requests.append((request.method, request.url.path, request.url.query))
                fault = self._take_fault(request.method, request.url.path)
            if fault is not None:
                return _envelope(None, fault.status, "injected fault", headers=fault.headers)
            if request.url.path == "/graphql":
                return await call_next(request)
            if request.headers.get("authorization") != f"Token {TOKEN}":
                return _envelope(None, 401, "Invalid token.")
            if f"/accounts/{ACCOUNT}/" not in request.url.path:
                return _envelope(None, 403, "You do not have permission to access this account.")
            response: Response = await call_next(request)
            return response

        @app.post(base + "/jobs/{job_id}/run/")
        async def trigger(job_id: int, request: Request) -> Response:
            body = await request.json()
            if not isinstance(body, dict) or not body.get("cause"):
                return _envelope(None, 400, "cause is required")
            with self.lock:
                scenario = self.jobs.get(job_id)
                if scenario is None:
                    return _envelope(None, 404, "Job not found.")
                run = self._new_run(job_id, body, scenario)
                return _envelope(self._run_json(run, steps=False))

        @app.get(base + "/runs/{run_id}/")
        def get_run(run_id: int, include_related: str = "") -> Response:
            with self.lock:
                run = self.runs.get(run_id)
                if run is None:
                    return _envelope(None, 404, "Run not found.")
                before = run.status
                run.advance()
                self._track(before, run.status)
                return _envelope(self._run_json(run, steps="run_steps" in include_related))

        @app.post(base + "/runs/{run_id}/cancel/")
        def cancel(run_id: int) -> Response:
            with self.lock:
                run = self.runs.get(run_id)
                if run is None:
                    return _envelope(None, 404, "Run not found.")
                if run.status < 10:
                    self._track(run.status, 30)
                    run.status, run.cancelled = 30, True
                return _envelope(self._run_json(run, steps=False))

        @app.post(base + "/runs/{run_id}/retry/")
        def retry(run_id: int) -> Response:
            with self.lock:
                old = self.runs.get(run_id)
                if old is None:
                    return _envelope(None, 404, "Run not found.")
                run = self._new_run(
                    old.job_id, {**old.body, "retry_of": run_id}, Scenario(final=10)
                )
                return _envelope(self._run_json(run, steps=False))

        @app.get(base + "/runs/")
        def list_runs(
            job_definition_id: int | None = None, limit: int = 100, status: int | None = None
        ) -> Response:
            with self.lock:
                runs = [
                    r
                    for r in self.runs.values()
                    if job_definition_id in (None, r.job_id) and status in (None, r.status)
                ]
                runs.sort(key=lambda r: -r.id)
                data = [self._run_json(r, steps=False) for r in runs[:limit]]
            return _envelope(
                data, extra={"pagination": {"count": len(data), "total_count": len(runs)}}
            )

        @app.get(base + "/runs/{run_id}/artifacts/")
        def list_artifacts(run_id: int) -> Response:
            with self.lock:
                run = self.runs.get(run_id)
                if run is None or run.status not in (10, 20):
                    return _envelope(None, 404, "No artifacts for this run.")
                files = self.job_artifacts.get(run.job_id) or _artifacts(run)
                return _envelope([*sorted(files), "compiled/jaffle/models/orders.sql"])

        @app.get(base + "/runs/{run_id}/artifacts/{path:path}")
        def artifact(run_id: int, path: str) -> Response:
            with self.lock:
                run = self.runs.get(run_id)
                files = (
                    self.job_artifacts.get(run.job_id) or _artifacts(run)
                    if run is not None and run.status in (10, 20)
                    else {}
                )
            if path not in files:
                return _envelope(None, 404, f"Artifact {path} not found.")
            return Response(files[path], media_type="application/json")

        @app.post("/graphql")
        async def graphql(request: Request) -> Response:
            body = await request.json()
            auth = request.headers.get("authorization", "")
            with self.lock:
                self.graphql.append((auth, body))
                mode = self.discovery
                variables = body.get("variables") or {}
                run = self.runs.get(int(variables.get("runId") or 0))
                files = (
                    self.job_artifacts.get(run.job_id) or _artifacts(run)
                    if run is not None and run.status in (10, 20)
                    else {}
                )
            if auth != f"Bearer {TOKEN}":
                return JSONResponse({"errors": [{"message": "Unauthorized"}]}, status_code=401)
            if mode == "no-access":
                return JSONResponse({"errors": [{"message": NO_METADATA_ACCESS}]}, status_code=403)
            if mode == "down":
                return Response("upstream failure", status_code=500)
            if mode == "graphql-error":
                return JSONResponse({"data": None, "errors": [{"message": NO_METADATA_ACCESS,
                                     "extensions": {"code": "FORBIDDEN"}}]})  # fmt: skip
            if mode == "echo-token":  # a careless server quoting the credentials back
                return JSONResponse({"errors": [{"message": f"bad credentials: {auth}"}]})
            if mode == "empty" or run is None or run.job_id != variables.get("jobId"):
                return JSONResponse({"data": {"job": None}})
            return JSONResponse({"data": {"job": _discovery_job(files, partial=mode == "partial")}})

        return app

    def _take_fault(self, method: str, path: str) -> Fault | None:
        for fault in self.faults:
            if fault.path in path and fault.method in ("", method):
                fault.times -= 1
                if fault.times <= 0:
                    self.faults.remove(fault)
                return fault
        return None

    def _new_run(self, job_id: int, body: dict[str, Any], scenario: Scenario) -> RunState:
        self._next_id += 1
        run = RunState(id=self._next_id, job_id=job_id, body=body, scenario=scenario)
        self.runs[run.id] = run
        self._track(0, 1)
        return run

    def _track(self, before: int, after: int) -> None:
        was, now = 0 < before < 10, 0 < after < 10
        self.active += int(now) - int(was)
        self.max_active = max(self.max_active, self.active)

    def _run_json(self, run: RunState, *, steps: bool) -> dict[str, Any]:
        final = run.status >= 10
        data: dict[str, Any] = {
            "id": run.id,
            "trigger_id": run.id + 1,
            "account_id": ACCOUNT,
            "project_id": 7,
            "environment_id": 8,
            "job_definition_id": run.job_id,
            "status": run.status,
            "status_humanized": {
                1: "Queued",
                2: "Starting",
                3: "Running",
                10: "Success",
                20: "Error",
                30: "Cancelled",
            }[run.status],
            "status_message": "Database Error in model orders" if run.status == 20 else None,
            "git_sha": run.body.get("git_sha"),
            "git_branch": None,
            "created_at": run.created_at,
            "started_at": run.created_at if run.status >= 2 else None,
            "finished_at": _stamp() if final else None,
            "in_progress": not final,
            "is_complete": final,
            "is_success": run.status == 10,
            "is_error": run.status == 20,
            "is_cancelled": run.status == 30,
            "href": f"https://cloud.example.invalid/deploy/{ACCOUNT}/runs/{run.id}",
            "trigger": {"cause": run.body.get("cause"), **run.body},
        }
        if steps:
            data["run_steps"] = self._steps(run)
        return data

    def _steps(self, run: RunState) -> list[dict[str, Any]]:
        if run.status < 3:
            return []
        shown = LOG_LINES if run.status >= 10 else LOG_LINES[: 1 + min(run.polls, 2) - 1]
        command = (run.body.get("steps_override") or ["dbt build"])[0]
        return [
            {"id": run.id * 10, "run_id": run.id, "account_id": ACCOUNT, "index": 1,
             "name": "Clone git repository", "status": 10, "logs": "Cloned repository.\n"},
            {"id": run.id * 10 + 1, "run_id": run.id, "account_id": ACCOUNT, "index": 2,
             "name": f"Invoke `{command}`", "status": run.status if run.status >= 10 else 3,
             "logs": "\n".join(shown) + ("\n" if run.status >= 10 else ""),
             "created_at": run.created_at, "finished_at": None},
        ]  # fmt: skip


def _artifacts(run: RunState) -> dict[str, bytes]:
    failed = run.status == 20 and "retry_of" not in run.body
    results = [
        {"unique_id": "model.jaffle.stg_orders", "status": "success", "message": "OK",
         "failures": None, "execution_time": 0.1},
        {"unique_id": "model.jaffle.orders", "status": "error" if failed else "success",
         "message": "Database Error in model orders (models/orders.sql)\n  relation does not exist"
         if failed else "OK", "failures": None, "execution_time": 0.2},
        {"unique_id": "test.jaffle.not_null_orders_id", "status": "skipped" if failed else "pass",
         "message": None, "failures": 0, "execution_time": 0.0},
    ]  # fmt: skip
    manifest = {"metadata": {"dbt_version": "1.11.0", "run": run.id}, "nodes": {}}
    return {
        "manifest.json": json.dumps(manifest).encode(),
        "run_results.json": json.dumps({"metadata": {"run": run.id}, "results": results}).encode(),
    }


def _discovery_job(files: dict[str, bytes], *, partial: bool) -> dict[str, Any]:
    """The `job` of a Discovery answer for a run with these artifacts."""
    results = json.loads(files.get("run_results.json", b"{}")).get("results", [])
    job: dict[str, list[dict[str, Any]]] = {"models": [], "seeds": [], "snapshots": [], "tests": []}
    for item in results:
        kind = item["unique_id"].split(".", 1)[0]
        status = item["status"]
        node: dict[str, Any] = {"uniqueId": item["unique_id"], "status": status,
                                "error": item["message"] if status == "error" else None,
                                "skip": status == "skipped"}  # fmt: skip
        if kind == "test":
            node.update(fail=status == "fail", warn=status == "warn")
        elif kind in ("model", "seed"):
            node["executionTime"] = round(item["execution_time"] + DISCOVERY_EXTRA_SECONDS, 3)
        job.setdefault(kind + "s", []).append(node)
    if partial:
        # a field GraphQL could not resolve comes back null, beside the data it could
        job["models"][0].update(status=None, executionTime=None)
        return {**job, "tests": None}
    return job


def _stamp() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S.%f+00:00")


def _envelope(
    data: Any,
    code: int = 200,
    message: str | None = None,
    *,
    extra: dict[str, Any] | None = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    body = {
        "data": data,
        "status": {
            "code": code,
            "is_success": code < 400,
            "user_message": message if code >= 400 else "Success!",
            "developer_message": "",
        },
        "extra": extra or {},
    }
    return JSONResponse(body, status_code=code, headers=headers)


@contextmanager
def serve(double: CloudDouble) -> Iterator[str]:
    """Serve the double on 127.0.0.1 with a free port; yields its base URL."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(double.app, log_level="warning", lifespan="off"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline:
            raise RuntimeError("the dbt Cloud double did not start")
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()
