"""The `cloud` runtime: a dbt Cloud job, triggered, polled to the end, its artifacts fetched.

Each invocation triggers the job configured for the dbt command with `steps_override` built from
the argv, `git_sha` of an `@ref` spec, `schema_override` (the isolated schema) and the target and
threads from the environment. The run is polled with backoff while its step logs stream to the
terminal; a timeout or Ctrl-C cancels the remote run. Artifacts are fetched into
`.dot/cloud-cache/<run_id>/` (and copied to the run's local target folder). The nodes' results
come from the Discovery API when the token allows, else from run_results.json (`cloudresults`).

The API token is never in a config file: `runtimes.cloud.api_token_env` names the environment
variable that holds it.
"""

from __future__ import annotations

import shutil
import tempfile
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any

from pydantic import JsonValue

from datum_dot import dbtcore
from datum_dot.errors import BadInputError, ConfigError, DbtError
from datum_dot.runtimes import artifacts, cloudapi, cloudresults
from datum_dot.runtimes.base import (
    ErrorClass,
    EventHandler,
    InvocationResult,
    JsonObject,
    NodeOutcome,
    NodeTarget,
    OutputSink,
    Runtime,
    RuntimeContext,
    RuntimeProbe,
    RuntimeUnavailableError,
)
from datum_dot.runtimes.cloudcache import ArtifactCache, cache_disabled
from datum_dot.runtimes.cloudfollow import Follower, Reporter
from datum_dot.runtimes.cloudjob import CloudSettings, build_step, parse_settings
from datum_dot.runtimes.commands import DbtCommandRuntime, python_version

WANTED = (
    "manifest.json",
    "run_results.json",
    "catalog.json",
    "sources.json",
    "semantic_manifest.json",
)


class CloudRuntime(DbtCommandRuntime):
    """Run dbt commands as dbt Cloud job runs (parallel-safe: each is a remote run)."""

    name = "cloud"
    parallel = True
    supports_dbt_retry = True

    def __init__(
        self,
        settings: CloudSettings,
        token: str,
        *,
        context: RuntimeContext | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.settings = settings
        self._token = token
        self._context = context or RuntimeContext()
        self._sleep = sleep
        self._last_run: dict[str, int] = {}
        self._lock = threading.Lock()
        environ = self._context.environ
        self._use_cache = self._context.use_cache and not cache_disabled(environ)
        root = (self._context.project_dir or Path.cwd()) / ".dot" / "cloud-cache"
        self.cache = ArtifactCache(root, ttl=timedelta(hours=settings.cache_ttl_hours))

    @classmethod
    def from_settings(cls, settings: Mapping[str, object], context: RuntimeContext) -> Runtime:
        """Validate `runtimes.cloud` and read the token's variable; see `Runtime.from_settings`."""
        if not settings:
            raise ConfigError(
                "the cloud runtime is not configured: no runtimes.cloud block for this environment",
                "add runtimes.cloud (account_id, job_ids, api_token_env) to dot_environments.yml",
            )
        parsed = parse_settings(settings)
        token = context.environ.get(parsed.api_token_env, "").strip()
        if not token:
            raise RuntimeUnavailableError(
                f"environment variable {parsed.api_token_env} (runtimes.cloud.api_token_env) is not set",
                f"export {parsed.api_token_env}=<a dbt Cloud service token>",
            )
        return cls(parsed, token, context=context)

    @classmethod
    def probe(cls) -> RuntimeProbe:
        """Always installed (it needs only httpx); usable once runtimes.cloud is configured."""
        import httpx

        return RuntimeProbe(
            True, f"Admin API v2 (httpx {httpx.__version__})", "needs runtimes.cloud settings"
        )

    def client(self) -> cloudapi.CloudClient:
        """A new API client (its own connection pool) for one unit of work."""
        return cloudapi.CloudClient(
            base_url=self.settings.base_url,
            account_id=self.settings.account_id,
            token=self._token,
            token_env=self.settings.api_token_env,
            retry_delays=self.settings.retry_delays_seconds,
            timeout=self.settings.request_timeout_seconds,
            sleep=self._sleep,
        )

    def invoke(
        self,
        args: Sequence[str],
        *,
        env: Mapping[str, str],
        on_event: EventHandler | None = None,
        output: OutputSink | None = None,
        timeout: float | None = None,
    ) -> InvocationResult:
        """Trigger the command's job and follow the run to the end; see `Runtime.invoke`.

        Raises:
            BadInputError: No job for this command; 401, 403 or 404 from dbt Cloud.
        """
        report = Reporter(on_event, output)
        command = args[0] if args else "build"
        if command == "deps":
            return self._local_deps(args, env, report)
        if command == "retry":
            previous = self._last_run.get("run")
            if previous is None:
                raise BadInputError(
                    "no dbt Cloud run of this session to retry", "run the command itself again"
                )
            return self._start(lambda client: client.retry(previous), None, report, timeout)
        job_id = self.settings.job_for(command)
        if job_id is None:
            raise ConfigError(
                f"no dbt Cloud job for `dbt {command}`: runtimes.cloud.job_ids has no '{command}' or 'default'",
                f"add runtimes.cloud.job_ids.{command}: <job id> (or job_ids.default)",
            )
        step, target, threads = build_step(args)
        body = cloudapi.TriggerRequest(
            cause=self.settings.cause,
            git_sha=self._context.git_sha,
            schema_override=self._context.schema,
            steps_override=[step],
            threads_override=threads or self._context.threads,
            target_name_override=target or self._context.target,
        )
        return self._start(lambda client: client.trigger(job_id, body), job_id, report, timeout)

    def _local_deps(
        self, args: Sequence[str], env: Mapping[str, str], report: Reporter
    ) -> InvocationResult:
        # dbt Cloud installs packages itself at the start of every run; the local isolation
        # check parses the project here with dbt-core, which needs them installed here too.

        report.line(
            "installing dbt packages here for the local isolation check (dbt Cloud installs its own)"
        )
        outcome = dbtcore.invoke(args, env=env)
        return InvocationResult(
            success=outcome.success,
            dbt_exit_code=outcome.exit_code,
            error=outcome.error,
            error_type=outcome.error_type,
            metadata={"local": "deps"},
        )

    def retry(
        self,
        previous: InvocationResult,
        args: Sequence[str],
        *,
        env: Mapping[str, str],
        on_event: EventHandler | None = None,
        output: OutputSink | None = None,
        timeout: float | None = None,
    ) -> InvocationResult:
        """Retry the failed nodes of the previous run with dbt Cloud's retry endpoint."""
        run_id = previous.metadata.get("cloud_run_id")
        if not isinstance(run_id, int):
            return self.invoke(args, env=env, on_event=on_event, output=output, timeout=timeout)
        report = Reporter(on_event, output)
        job = previous.metadata.get("cloud_job_id")
        return self._start(
            lambda c: c.retry(run_id), job if isinstance(job, int) else None, report, timeout
        )

    def _start(
        self,
        start: Callable[[cloudapi.CloudClient], cloudapi.Run],
        job_id: int | None,
        report: Reporter,
        timeout: float | None,
    ) -> InvocationResult:
        deadline = None if timeout is None else time.monotonic() + timeout
        run: cloudapi.Run | None = None
        try:
            with self.client() as client:
                run = start(client)
                with self._lock:
                    self._last_run["run"] = run.id
                report.line(
                    f"dbt Cloud run {run.id} started" + (f": {run.href}" if run.href else "")
                )
                follower = Follower(client, report, self.settings, self._sleep)
                run, stopped = follower.follow(run, deadline)
                if stopped is not None:
                    follower.cancel(run.id, why=stopped)
                    return _stopped_result(run, job_id, timed_out=stopped == "timeout")
                folder, nodes, source = self._collect(client, run, job_id, report)
        except cloudapi.CloudTransientError as e:
            return InvocationResult(
                success=False,
                dbt_exit_code=1,
                error=e.message,
                error_class=ErrorClass.CONNECTION,
                suggestion=e.hint,
                metadata={"cloud_run_id": run.id if run else None, "cloud_job_id": job_id},
            )
        return _final_result(run, job_id, folder, nodes, source)

    def _collect(
        self, client: cloudapi.CloudClient, run: cloudapi.Run, job_id: int | None, report: Reporter
    ) -> tuple[Path | None, tuple[NodeOutcome, ...], str | None]:
        folder = self.artifacts_dir(run.id, job_id=job_id, client=client)
        target = self._context.target_path
        if folder is not None and target is not None:
            target.mkdir(parents=True, exist_ok=True)
            for name in WANTED:
                if name != artifacts.RUN_RESULTS and (folder / name).is_file():
                    shutil.copyfile(folder / name, target / name)
        results = folder / artifacts.RUN_RESULTS if folder is not None else None
        results = results if results is not None and results.is_file() else None
        artifact = artifacts.read_json(results, what=artifacts.RUN_RESULTS) if results else None
        served = cloudresults.serve_results(
            self.settings,
            self._token,
            run_id=run.id,
            job_id=job_id if job_id is not None else run.job_definition_id,
            artifact=artifact,
        )
        report.line(served.note, "stderr" if served.warning else "stdout")
        if target is not None:
            cloudresults.keep_results(target, served, results)
        return folder, artifacts.node_outcomes(served.document), served.source

    def artifacts_dir(
        self, run_id: int, *, job_id: int | None = None, client: cloudapi.CloudClient | None = None
    ) -> Path | None:
        """A folder holding the run's artifacts: the cache when valid, else fetched now.

        Returns None when the run left no artifacts.
        """
        if self._use_cache:
            cached = self.cache.get(run_id)
            if cached is not None:
                return cached
        if client is None:
            with self.client() as own:
                return self.artifacts_dir(run_id, job_id=job_id, client=own)
        try:
            names = [n for n in client.list_artifacts(run_id) if n in WANTED]
        except cloudapi.CloudConfigError:
            return None  # 404: a run that failed before dbt wrote anything
        files = {name: client.artifact(run_id, name) for name in names}
        if not files:
            return None
        ids = {
            "account_id": self.settings.account_id,
            "job_id": job_id if job_id is not None else "",
        }
        if self._use_cache:
            return self.cache.put(run_id, files, ids)
        folder = Path(tempfile.mkdtemp(prefix=f"dot-cloud-{run_id}-"))
        for name, content in files.items():
            (folder / name).write_bytes(content)
        return folder

    def parse_targets(self, args: Sequence[str], *, env: Mapping[str, str]) -> list[NodeTarget]:
        """Parse locally with dbt-core for the isolation check; see `Runtime.parse_targets`."""
        try:
            _, targets = dbtcore.parse_targets(args, env=env)
        except dbtcore.DbtParseFailed as e:
            raise DbtError(
                f"the isolation check parses the project here with dbt-core, and that failed: {e}",
                "install the project's dbt adapter here, or pass --allow-unisolated (dbt Cloud still builds into schema_override)",
            ) from e
        return targets

    def artifacts_folder(self, args: Sequence[str], result: InvocationResult) -> Path:
        """The folder the run's artifacts were fetched into (the cache, or a temporary one)."""
        folder = result.metadata.get("artifacts_dir")
        return Path(folder) if isinstance(folder, str) else Path(tempfile.gettempdir())

    def get_manifest(self, project_dir: Path) -> JsonObject:
        """manifest.json of the last run (this session's, else the default job's latest)."""
        return self._last_artifact(artifacts.MANIFEST)

    def get_run_results(self, project_dir: Path) -> JsonObject:
        """run_results.json of the last run (this session's, else the default job's latest)."""
        return self._last_artifact(artifacts.RUN_RESULTS)

    def _last_artifact(self, name: str) -> JsonObject:
        with self._lock:
            run_id = self._last_run.get("run")
        job_id = self.settings.job_for("build")
        with self.client() as client:
            if run_id is None and job_id is not None:
                latest = client.latest_run(job_id)
                run_id = latest.id if latest else None
            if run_id is None:
                raise DbtError(
                    "dbt Cloud has no run to read artifacts from",
                    "run `dot build --runtime cloud` first",
                )
            folder = self.artifacts_dir(run_id, job_id=job_id, client=client)
        if folder is None:
            raise DbtError(
                f"dbt Cloud run {run_id} has no {name}", "open the run in dbt Cloud to see why"
            )
        return artifacts.read_json(folder / name, what=f"{name} of dbt Cloud run {run_id}")

    def supports_parallel_execution(self) -> bool:
        """True: every invocation is a separate remote run."""
        return True

    def get_runtime_metadata(self) -> dict[str, JsonValue]:
        """Type, API and account; no token."""
        return {
            "type": self.name,
            "runtime_version": self.probe().version,
            "python_version": python_version(),
            "parallel": True,
            "base_url": self.settings.base_url,
            "account_id": self.settings.account_id,
            "cache": self._use_cache,
            "results": self.settings.results,
            "discovery_url": self.settings.discovery_endpoint(),
        }


def _metadata(run: cloudapi.Run, job_id: int | None, **extra: Any) -> dict[str, JsonValue]:
    return {
        "cloud_run_id": run.id,
        "cloud_job_id": job_id if job_id is not None else run.job_definition_id,
        "cloud_status": int(run.status),
        "href": run.href,
        **extra,
    }


def _stopped_result(run: cloudapi.Run, job_id: int | None, *, timed_out: bool) -> InvocationResult:
    return InvocationResult(
        success=False,
        dbt_exit_code=1,
        error=f"dbt Cloud run {run.id} did not finish within the timeout and was cancelled"
        if timed_out
        else None,
        interrupted=not timed_out,
        timed_out=timed_out,
        metadata=_metadata(run, job_id),
    )


def _final_result(
    run: cloudapi.Run,
    job_id: int | None,
    folder: Path | None,
    nodes: tuple[NodeOutcome, ...],
    source: str | None,
) -> InvocationResult:
    status = run.status
    error = None
    if status == cloudapi.RunStatus.ERROR:
        error = run.status_message or f"dbt Cloud run {run.id} failed"
    return InvocationResult(
        success=status == cloudapi.RunStatus.SUCCESS,
        dbt_exit_code=0 if status == cloudapi.RunStatus.SUCCESS else 1,
        statuses=tuple(n.status for n in nodes),
        error=error,
        interrupted=status == cloudapi.RunStatus.CANCELLED,
        nodes=nodes,
        metadata=_metadata(
            run, job_id, artifacts_dir=str(folder) if folder else None, results_source=source
        ),
    )
