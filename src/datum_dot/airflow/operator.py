"""`DotOperator`: one dbt command for a spec, run as an Airflow task through the Python API.

The task runs the request `Project.build` would make (isolated at the spec's commit, locked,
recorded in the history), with trigger `airflow`. dbt's lines go to the task's log; the result's
`to_dict()` is the task's XCom return value, pushed before a failed run fails the task so that a
downstream task with `trigger_rule="all_done"` can read why.

Cancelling: Airflow calls `on_kill` from its SIGTERM handler on the thread that runs `execute`
(the task was marked failed, or its process is being stopped). `on_kill` then interrupts the run
as Ctrl-C would: the runtime stops dbt (SIGINT, then SIGKILL after a grace period), the history
records the run CANCELLED with exit code 50, and the task fails.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Any, ClassVar

from airflow.sdk import BaseOperator  # type: ignore[import-not-found, unused-ignore]
from airflow.sdk.exceptions import (  # type: ignore[import-not-found, unused-ignore]
    AirflowException,
    AirflowFailException,
)

from datum_dot.api.commands import options_of
from datum_dot.api.invocation import run
from datum_dot.api.options import command_words, make_request
from datum_dot.api.project import Project
from datum_dot.errors import DotError, ExitCode
from datum_dot.runs.run import RunRequest, Trigger
from datum_dot.runs.runner import runtime_for
from datum_dot.runtimes.local import LocalRuntime, LocalSettings

if TYPE_CHECKING:
    from datum_dot.api.result import Result
    from datum_dot.runs.plan import BuildPlan
    from datum_dot.runtimes.base import Runtime

XCOM_KEY = "return_value"
"""The XCom key the result is pushed under: the task's return value, also when it fails."""


_ENDINGS = {int(ExitCode.TIMEOUT): "timed out", int(ExitCode.CANCELLED): "was cancelled"}


class DotCancelled(KeyboardInterrupt):
    """Raised into the running call by `on_kill`, as Ctrl-C is in a terminal."""


class DotOperator(BaseOperator):  # type: ignore[misc, unused-ignore]
    """Run one dbt command for a spec (`prod@v1.2`) with datum-dot, as an Airflow task.

    Args:
        spec: `[env][@ref]`, as for `dot build`; templated (`"prod@{{ params.ref }}"`).
        command: The dbt command (`"build"`, `"run"`, `"test"`, `"docs generate"`).
        select: dbt's `--select`; templated.
        exclude: dbt's `--exclude`; templated.
        selector: dbt's `--selector`.
        defer: An isolated build (`"prod@v1.0"`) or environment to defer to; templated.
        vars: Values for dbt's `var()`, over the environment's; templated (each value).
        full_refresh: dbt's `--full-refresh`.
        target: The profile target, instead of the environment's.
        threads: dbt's `--threads`.
        timeout: Seconds before dot stops dbt itself (TIMEOUT record, exit code 40); keep it
            below `execution_timeout`, Airflow's own hard limit.
        runtime: `local`, `subprocess`, `cloud`, ... (default: the environment's, else local).
        args: Any other dbt arguments (`["--fail-fast"]`).
        project_dir: The dbt project folder (or a folder inside it) on the worker.
        home: The history folder (default `$DATUM_HOME`, else `~/.datum`).
        **kwargs: `BaseOperator`'s arguments (`task_id`, `retries`, `execution_timeout`, ...).

    Raises:
        AirflowFailException: Bad input (a malformed spec, an unknown ref or environment):
            retrying cannot help, so the task fails without its retries.
        AirflowException: dbt failed, timed out or was cancelled, or the run could not be
            prepared.

    Example:
        >>> DotOperator(task_id="build", spec="prod@{{ params.ref }}", select="orders+",
        ...             project_dir="/srv/shop")  # doctest: +SKIP
    """

    template_fields: ClassVar[Sequence[str]] = ("spec", "vars", "select", "exclude", "defer")
    template_fields_renderers: ClassVar[dict[str, str]] = {"vars": "json"}
    ui_color = "#e8f4ea"

    def __init__(
        self,
        *,
        spec: str = "",
        command: str | Sequence[str] = "build",
        select: str | Sequence[str] | None = None,
        exclude: str | Sequence[str] | None = None,
        selector: str | None = None,
        defer: str | None = None,
        vars: Mapping[str, object] | None = None,
        full_refresh: bool = False,
        target: str | None = None,
        threads: int | None = None,
        timeout: float | None = None,
        runtime: str | None = None,
        args: Sequence[str] = (),
        project_dir: str = ".",
        home: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.spec = spec
        self.command = command
        self.select = select
        self.exclude = exclude
        self.selector = selector
        self.defer = defer
        self.vars = dict(vars) if vars is not None else None
        self.full_refresh = full_refresh
        self.target = target
        self.threads = threads
        self.timeout = timeout
        self.runtime = runtime
        self.args = tuple(args)
        self.project_dir = project_dir
        self.home = home
        self._running_on: int | None = None

    def execute(self, context: Mapping[str, Any]) -> dict[str, Any]:
        """Run the command; return the result's `to_dict()` (the XCom value).

        Raises:
            AirflowFailException: Bad input (exit code 20).
            AirflowException: The run failed, timed out, was cancelled or not prepared.
        """
        try:
            result = self._run()
        except DotCancelled as e:
            self.log.warning("the task was killed: dbt was stopped")
            raise AirflowException(
                f"the dbt run for {self.spec or 'the working tree'} was cancelled; "
                "`dot logs --last 1` shows its record"
            ) from e
        except DotError as e:
            text = f"{e.message}\nhint: {e.hint}" if e.hint else e.message
            if e.exit_code == ExitCode.BAD_INPUT:
                # what is wrong and what to do say it all: no traceback of dot's to read
                raise AirflowFailException(text) from None
            raise AirflowException(text) from e
        data = result.to_dict()
        if result.status == "error":
            context["ti"].xcom_push(key=XCOM_KEY, value=data)
            how = _ENDINGS.get(result.exit_code, "failed")
            first = result.errors[0] if result.errors else "dbt failed"
            raise AirflowException(
                f"dbt {' '.join(result.command)} of {result.spec or 'the working tree'} {how} "
                f"(exit code {result.exit_code}): {first}\nhint: dot logs {result.run_id}"
            )
        if result.status == "warning":
            for line in result.warnings or ["dbt reported warnings"]:
                self.log.warning("dbt warned: %s", line)
        self.log.info(
            "dbt %s of %s ended %s: run %s, commit %s, schema %s",
            " ".join(result.command), result.spec or "the working tree", result.status,
            result.run_id, result.commit, result.schema,
        )  # fmt: skip
        return data

    def on_kill(self) -> None:
        """Stop dbt and record the run CANCELLED (exit code 50).

        Airflow calls it from its SIGTERM handler on the thread running `execute`: raising
        there interrupts the run where it waits, as Ctrl-C does on the command line. Called
        from any other thread (or with no run going), it only logs.
        """
        if self._running_on is None:
            return
        if self._running_on != threading.get_ident():
            self.log.warning("on_kill called off the task's thread: dbt is left to Airflow")
            return
        self._running_on = None
        # No logging here: a signal handler may have interrupted a write to the task's output,
        # whose lock it would wait for forever.
        raise DotCancelled

    def _run(self) -> Result:
        project = Project(self.project_dir, home=self.home)
        options = options_of(self.select, self.exclude, self.selector, self.defer,
                             self.full_refresh, self.vars, self.target, self.threads,
                             self.timeout, 0, self.runtime, self.args)  # fmt: skip
        request = make_request(project.path, command_words(self.command), self.spec, options,
                               environ=project.run_environ())  # fmt: skip
        request = replace(request, trigger=Trigger.AIRFLOW)
        self._running_on = threading.get_ident()
        try:
            # dbt's lines go to the task's stdout, which Airflow's supervisor writes into the
            # task log; the operator logs nothing while dbt runs (see on_kill)
            return run(request, echo=True, choose_runtime=stoppable_runtime)
        finally:
            self._running_on = None


def stoppable_runtime(request: RunRequest, plan: BuildPlan) -> Runtime:
    """The runtime the plan names, with `local` in a child process unless its settings say thread.

    dbt in this process cannot always be stopped: a query that ignores dbt's cancel keeps the
    task alive until Airflow kills it, and the record would never end. In a child process
    (forked, with the manifest the isolation check parsed) a cancel always ends it. An
    environment that sets `runtimes.local.isolation: thread` keeps dbt in this process.
    `execute()` calls it with the run's own plan, so the runtime costs no second plan.

    Raises:
        BadInputError: Unknown runtime, or invalid runtime settings (as `runtime_for`).
    """
    chosen = runtime_for(request, plan)
    if plan.runtime != "local" or not isinstance(chosen, LocalRuntime):
        return chosen
    settings = LocalSettings.model_validate(dict(plan.env.runtimes.get("local", {})))
    if settings.isolation == "thread":
        return chosen
    return LocalRuntime(isolation="process", warm=settings.warm,
                        lock_timeout=settings.lock_timeout_seconds,
                        grace=settings.grace_seconds)  # fmt: skip
