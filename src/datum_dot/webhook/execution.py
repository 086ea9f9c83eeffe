"""Run one queued job: a `RunRequest` with the job's run id and pinned commit, through `execute()`.

The request is what `dot <command> <spec> -- <args>` in the project's folder would run (the
planner applies the registered target and profiles folder, as for every run). The runtime is the one the environment or the registration names, unless
that is `local` (in-process dbt cannot be stopped, and the webhook cancels runs at shutdown):
then the server's choice, the `subprocess` runtime, or with `--warm` the `local` runtime in a
forked copy of the worker, which has imported dbt already.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING

from datum_dot.config.environments import load_environments
from datum_dot.errors import DotError, ExitCode
from datum_dot.execute import execute
from datum_dot.history import RunEnd, RunStore
from datum_dot.home.userconfig import load_user_config
from datum_dot.runs import commands
from datum_dot.runs.run import RunRequest, RunStatus, Trigger
from datum_dot.runs.spec import parse_defer_spec, parse_spec, parse_state_from_spec
from datum_dot.runtimes import warmth
from datum_dot.webhook.jobs import Job, JobRequest

if TYPE_CHECKING:
    from datum_dot.runtimes.local import LocalRuntime

log = logging.getLogger("datum_dot.webhook")
SERVER_RUNTIME = "subprocess"


def history_status(store: RunStore, run_id: str) -> str | None:
    """The status of a run in the history, or None if it never began (or cannot be read)."""
    try:
        run = store.get(run_id)
    except DotError:
        return None
    return run.status.value if run.run_id == run_id else None


class JobRunner:
    """Runs queued jobs; one instance serves every worker.

    Args:
        home: `$DATUM_HOME`.
        store: The run history.
        warm: Run dbt with the `local` runtime in a forked copy of this process, which has
            imported dbt and parsed the project, instead of a new `dbt` process per run
            (`warmth`). For a worker process that runs one job at a time.
    """

    def __init__(self, *, home: Path, store: RunStore, warm: bool = False) -> None:
        self.home = home
        self.store = store
        self.warm_runtime: LocalRuntime | None = None
        if warm:
            self.warm_runtime = warmth.warm_runtime()

    def warm_up(self) -> None:
        """Import dbt now (the planner asks it for flags), so the first run does not wait.

        A warm worker prepares its forked runs too (`warmth.warm_up`).
        """
        commands.command_options(("build",))
        if self.warm_runtime is not None:
            warmth.warm_up()

    def __call__(self, job: Job) -> str:
        """Run the job to its end; returns the run's final status.

        KeyboardInterrupt (a cancellation at shutdown) propagates, after `execute()` has
        recorded the run as CANCELLED.
        """
        req = job.request
        named = self._named_runtime(req)
        runtime = self.warm_runtime if named is None else None
        request = RunRequest(
            command=req.command,
            spec=parse_spec(req.spec),
            project_dir=Path(req.project_dir),
            dbt_args=tuple(req.args),
            cli_vars=req.vars,
            timeout=req.timeout,
            trigger=Trigger.WEBHOOK,
            runtime=named or (None if runtime is not None else SERVER_RUNTIME),
            run_id=job.run_id,
            commit=req.commit,
            defer=parse_defer_spec(req.defer) if req.defer else None,
            state_source="cloud" if req.state_source == "cloud" else "history",
            state_from=parse_state_from_spec(req.state_from) if req.state_from else None,
            max_state_age=req.max_state_age,
            retry_of=job.retry_of,
        )
        try:
            return execute(request, runtime=runtime, store=self.store).status.value
        except DotError as e:
            # Planning failures and failures after the run began are recorded by execute();
            # a run id already in the history was begun before and is not run again.
            status = history_status(self.store, job.run_id)
            log.info("run %s: %s", job.run_id, e.message)
            return status or RunStatus.FAILED.value
        except Exception:
            log.exception("run %s failed unexpectedly; this is a bug", job.run_id)
            self._finish_as_failed(job.run_id)
            return RunStatus.FAILED.value

    def _named_runtime(self, req: JobRequest) -> str | None:
        """The runtime the environment or the registration names, unless it is `local`."""
        try:
            env = load_environments(Path(req.project_dir)).resolve(req.env or None)
            entry = load_user_config(self.home).projects.get(req.project)
        except DotError:
            return None
        named = env.runtime or (entry.runtime if entry is not None else None)
        return named if named and named != "local" else None

    def _finish_as_failed(self, run_id: str) -> None:
        if history_status(self.store, run_id) != RunStatus.RUNNING.value:
            return
        try:
            self.store.finish(
                run_id,
                RunEnd(
                    RunStatus.FAILED,
                    int(ExitCode.RUNTIME_FAILURE),
                    error_class="internal",
                    error_message="the webhook server failed running this job (a bug)",
                    suggestion="see the server's log; run the request again",
                ),
            )
        except DotError as e:
            log.error("run %s: cannot finish its record: %s", run_id, e.message)
