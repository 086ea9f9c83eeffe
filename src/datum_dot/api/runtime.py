"""The seeds' runtime contract (`compile_project`, `run_models`, `run_tests`, `get_manifest`,
`get_run_results`, `supports_parallel_execution`, `get_runtime_metadata`) on a planned project.

`datum_dot.runtimes.base.Runtime` has the same methods on a bare folder, profiles folder and
target: whatever they are given, they run, with no plan, no isolation and no record. Here the
folder, profile and target come from the plan of a spec, and every run goes through
`execute()` like `Project.build`: at its commit, in its schema, in the history.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

from datum_dot.errors import DbtError

if TYPE_CHECKING:
    from pydantic import JsonValue

    from datum_dot.api.project import Project
    from datum_dot.api.result import Result
    from datum_dot.outcomes import RunResult
    from datum_dot.runs.plan import BuildPlan
    from datum_dot.runtimes.base import Runtime


class ProjectRuntime:
    """A runtime bound to one project and spec (see `Project.runtime`).

    Example:
        >>> runtime = project.runtime("local", spec="prod@main")  # doctest: +SKIP
        >>> manifest = runtime.compile_project()  # doctest: +SKIP
        >>> runtime.run_models(select="orders+").models_run  # doctest: +SKIP
        4
    """

    def __init__(self, project: Project, name: str | None, spec: str) -> None:
        self.project = project
        """The project."""
        self.spec = spec
        """The spec every call runs."""
        self._name = name
        self._plan: BuildPlan | None = None
        self._runtime: Runtime | None = None

    @property
    def name(self) -> str:
        """The runtime's name (`local`, `subprocess`, `cloud`, ...)."""
        return self.plan().runtime

    def plan(self) -> BuildPlan:
        """The spec's plan for `dbt build` (made once, then kept).

        Raises:
            BadInput: The spec does not plan (exit code 20).
        """
        if self._plan is None:
            self._plan = self.project.plan(self.spec, runtime=self._name)
        return self._plan

    def compile_project(self) -> Path:
        """Compile the project as planned and return the manifest.json it wrote.

        Raises:
            DbtCompilationError: The project did not compile.
        """
        # lazy: runtime types load with the runtimes
        from datum_dot.runtimes.base import DbtCompilationError

        result = self.project.compile(self.spec, runtime=self._name)
        if not result.ok or result.artifacts.get("manifest") is None:
            raise DbtCompilationError(_first_error(result), _logs_hint(result))
        # where dbt wrote it, as the contract says; `result.artifacts` has the history's copy
        return self.plan().target_path / "manifest.json"

    def run_models(
        self, select: str | None = None, exclude: str | None = None, full_refresh: bool = False
    ) -> RunResult:
        """Run models (`dbt run`) as planned; failing models are a result, not an error.

        Args:
            select: dbt's `--select`.
            exclude: dbt's `--exclude`.
            full_refresh: Rebuild incremental models from scratch.

        Returns:
            The outcome, with counts from this run's run_results.json and the run's id,
            exit code and runtime in `metadata`.

        Raises:
            DbtExecutionError: dbt failed before producing results.
        """
        result = self.project.run(self.spec, select=select, exclude=exclude,
                                  full_refresh=full_refresh, runtime=self._name)  # fmt: skip
        return self._outcome(result)

    def run_tests(self, select: str | None = None) -> RunResult:
        """Run data tests (`dbt test`) as planned; see `run_models`.

        Raises:
            DbtExecutionError: dbt failed before producing results.
        """
        return self._outcome(self.project.test(self.spec, select=select, runtime=self._name))

    def get_manifest(self) -> dict[str, JsonValue]:
        """The manifest.json in the spec's target folder (its last compile or run).

        Raises:
            DbtError: There is none yet.
        """
        return self._artifact("manifest.json")

    def get_run_results(self) -> dict[str, JsonValue]:
        """The run_results.json in the spec's target folder (its last run).

        Raises:
            DbtError: There is none yet.
        """
        return self._artifact("run_results.json")

    def supports_parallel_execution(self) -> bool:
        """Whether calls from several threads run at once (False: they take turns)."""
        return self._instance().supports_parallel_execution()

    def get_runtime_metadata(self) -> dict[str, JsonValue]:
        """`type`, `runtime_version`, `python_version`, `parallel` (and `dbt_version`, ...)."""
        return dict(self._instance().get_runtime_metadata())

    def _instance(self) -> Runtime:
        if self._runtime is None:
            # lazy: the runtime registry loads entry points
            from datum_dot.api.options import Options, make_request
            from datum_dot.runs.runner import runtime_for

            request = make_request(self.project.path, ("build",), self.spec,
                                   Options(runtime=self._name),
                                   environ=self.project.run_environ(), dry_run=True)  # fmt: skip
            self._runtime = runtime_for(request, self.plan())
        return self._runtime

    def _artifact(self, name: str) -> dict[str, JsonValue]:
        path = self.plan().target_path / name
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError as e:
            raise DbtError(
                f"no {name} for {self.spec or 'the default environment'} yet: {path} is missing",
                "run the spec first: runtime.compile_project() or runtime.run_models()",
            ) from e
        except (OSError, ValueError) as e:
            raise DbtError(f"{path} cannot be read: {e}", "run the spec again") from e
        if not isinstance(data, dict):
            raise DbtError(f"{path} is not a dbt artifact", "run the spec again")
        return data

    def _outcome(self, result: Result) -> RunResult:
        # lazy: the runtime result type is a pydantic model
        from datum_dot.runtimes.base import DbtExecutionError, RunResult

        results = result.artifacts.get("run_results")
        if results is None and not result.ok:
            raise DbtExecutionError(_first_error(result), _logs_hint(result))
        target = self.plan().target_path
        return RunResult(
            success=result.ok,
            manifest_path=result.artifacts.get("manifest") or target / "manifest.json",
            run_results_path=results or target / "run_results.json",
            catalog_path=result.artifacts.get("catalog"),
            execution_time_seconds=result.execution_time,
            models_run=result.metrics["models"],
            tests_run=result.metrics["tests"],
            failures=result.metrics["failed"],
            metadata={
                "runtime": result.runtime,
                "run_id": result.run_id,
                "exit_code": result.exit_code,
                "status": result.status,
            },
        )


def _first_error(result: Result) -> str:
    return result.errors[0] if result.errors else f"dbt failed (exit code {result.exit_code})"


def _logs_hint(result: Result) -> str:
    return f"dot logs {result.run_id}" if result.run_id else "run it again with echo=True"
