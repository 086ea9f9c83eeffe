"""`Project`: every dbt command, the dry run, the builds, the history and the runtimes of one dbt
project, from Python.

Each dbt method builds a `RunRequest` (trigger `sdk`) and runs it through `execute()`, the path
the CLI, the scheduler and the webhook take: the run is planned, isolated at its commit,
locked against other processes and recorded (`dot logs` lists it).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar

from datum_dot.api.commands import DbtCommands, Selection, Vars, options_of
from datum_dot.errors import ProjectNotFoundError

if TYPE_CHECKING:
    from pydantic import JsonValue

    from datum_dot.api.invocation import EventHandler
    from datum_dot.api.options import Options
    from datum_dot.api.result import Result
    from datum_dot.api.runtime import ProjectRuntime
    from datum_dot.runs.plan import BuildPlan


class Project(DbtCommands):
    """A dbt project, run from Python.

    Args:
        path: The dbt project folder, or any folder inside it.
        home: The folder of the run history, locks and user config; default `$DATUM_HOME`
            (else `~/.datum`), as for `dot`.

    Raises:
        ProjectNotFoundError: No dbt_project.yml in `path` or above it (bad input, exit 20).

    Example:
        >>> import datum_dot
        >>> project = datum_dot.Project(".")  # doctest: +SKIP
        >>> result = project.build("prod@main", select="orders+")  # doctest: +SKIP
        >>> result.status, result.metrics["models"]  # doctest: +SKIP
        ('success', 4)
    """

    trigger: ClassVar[str] = "sdk"
    """What the history records as having started this project's runs; an integration built on
    the API (Dagster) names itself here instead of copying `_run`."""

    def __init__(
        self, path: str | os.PathLike[str] = ".", *, home: str | os.PathLike[str] | None = None
    ) -> None:
        # lazy: the planner (and pydantic under it) loads when a project is opened, not with
        # `import datum_dot`
        from datum_dot.runs.planner import find_project_dir

        try:
            self.path: Path = find_project_dir(Path(path))
            """The dbt project folder (holding dbt_project.yml)."""
        except ProjectNotFoundError as e:
            raise ProjectNotFoundError(
                e.message, "pass the folder of dbt_project.yml: datum_dot.Project('path/to/it')"
            ) from e
        self.home: Path | None = Path(home).expanduser().resolve() if home is not None else None
        """The history folder given, or None for `$DATUM_HOME`."""

    def __repr__(self) -> str:
        return f"Project({str(self.path)!r})"

    def plan(
        self,
        spec: str = "",
        *,
        command: str | Sequence[str] = "build",
        select: Selection = None,
        exclude: Selection = None,
        selector: str | None = None,
        defer: str | None = None,
        full_refresh: bool = False,
        vars: Vars = None,
        target: str | None = None,
        threads: int | None = None,
        runtime: str | None = None,
        args: Sequence[str] = (),
    ) -> BuildPlan:
        """The dry run: what a call would do, decided and checked, with nothing touched.

        Args:
            spec: As for `build`.
            command: The dbt command (`"build"`, `"docs generate"`).
            select: As for `build`; the other arguments are those of `build` too.
            exclude: As for `build`.
            selector: As for `build`.
            defer: As for `build`.
            full_refresh: As for `build`.
            vars: As for `build`.
            target: As for `build`.
            threads: As for `build`.
            runtime: As for `build`.
            args: As for `build`.

        Returns:
            The plan: `plan.dbt_args` (dbt's argv), `plan.isolated` (worktree, commit,
            schema), `plan.vars`, `plan.to_json()` (what `dot build --dry-run --json` prints).

        Raises:
            BadInput: As for `build`; nothing is recorded.
        """
        # lazy: planning loads the planner and dbt's command table
        from datum_dot.api.invocation import dry_run
        from datum_dot.api.options import command_words, make_request

        options = options_of(select, exclude, selector, defer, full_refresh, vars, target, threads,
                           None, 0, runtime, args)  # fmt: skip
        request = make_request(self.path, command_words(command), spec, options,
                               environ=self.run_environ(), dry_run=True)  # fmt: skip
        plan = dry_run(request).plan
        assert plan is not None  # noqa: S101 - a dry run that returns has a plan
        return plan

    def builds(self) -> list[dict[str, JsonValue]]:
        """The project's isolated builds, most recently used first: the rows of
        `dot builds --json` (`short_hash`, `commit`, `refs`, `envs`, `schemas`, `size_bytes`,
        `last_used`, `last_run`, `in_use`, `needed_by`, ...).

        Raises:
            DotError: `.dot` is not dot's, or the history is unusable.
        """
        # lazy: the builds survey reads git and the history
        from datum_dot.api.listing import list_builds

        rows, _ = list_builds(self.path, home=self._home())
        return rows

    def runs(
        self,
        *,
        last: int | None = 20,
        status: str | Sequence[str] | None = None,
        env: str | None = None,
    ) -> list[dict[str, JsonValue]]:
        """The project's recorded runs, newest first: the rows of `dot logs --json`.

        Args:
            last: At most this many (None: all).
            status: Only runs that ended so: `"FAILED"`, `"failed,timeout"`, a list of them.
            env: Only runs of this environment.

        Returns:
            One dict per run: `run_id`, `status`, `trigger` (`sdk` for this API's runs,
            `manual`, `cron`, `webhook`), `spec`, `commit`, `counts`, `error_message`, ...

        Raises:
            BadInput: `last` is below 1, or a status the history does not record.
        """
        # lazy: the history loads when it is read
        from datum_dot.api.listing import list_runs

        return list_runs(self.path, home=self._home(), last=last, status=status, env=env)

    def environments(self) -> dict[str, dict[str, JsonValue]]:
        """Each environment, resolved: name -> `default`, `flags`, `vars`, `runtime`.

        Raises:
            ConfigError: dot_environments.yml (or the user file) is malformed (exit code 20).
        """
        # lazy: the environments files are read with pydantic
        from datum_dot.api.listing import list_environments

        return list_environments(self.path)

    def runtime(self, name: str | None = None, *, spec: str = "") -> ProjectRuntime:
        """The seeds' runtime contract, on this project as planned for `spec`.

        `compile_project()`, `run_models()` and `run_tests()` run through the same path as
        `build` (isolated, recorded); `get_manifest()` and `get_run_results()` read the spec's
        target folder.

        Args:
            name: `local`, `subprocess`, `cloud`, ...; None: the one the spec's environment names.
            spec: As for `build`.

        Returns:
            The runtime, bound to this project and spec.
        """
        # lazy: as for the dbt methods
        from datum_dot.api.runtime import ProjectRuntime

        return ProjectRuntime(self, name, spec)

    def _run(
        self,
        command: tuple[str, ...],
        spec: str,
        options: Options,
        on_event: EventHandler | None,
        echo: bool,
        extra_args: Sequence[str] = (),
    ) -> Result:
        # lazy: execute() and everything under it load on the first run, not on import
        from dataclasses import replace

        from datum_dot.api.invocation import run
        from datum_dot.api.options import make_request
        from datum_dot.runs.run import Trigger

        request = make_request(self.path, command, spec, options, environ=self.run_environ(),
                               extra_args=extra_args)  # fmt: skip
        if self.trigger != request.trigger.value:
            request = replace(request, trigger=Trigger(self.trigger))
        return run(request, on_event=on_event, echo=echo)

    def run_environ(self) -> dict[str, str] | None:
        """The variables this project's runs resolve with: this process's, with `DATUM_HOME`
        set to `home` when one was given (None: this process's, read when each run starts)."""
        if self.home is None:
            return None
        return {**os.environ, "DATUM_HOME": str(self.home)}

    def _home(self) -> Path:
        # lazy: as for the dbt methods
        from datum_dot.home.settings import datum_home

        return self.home if self.home is not None else datum_home()
