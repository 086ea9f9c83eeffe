"""The DBTPlugin operations for any runtime that runs dbt commands and leaves artifacts on disk.

`local`, `subprocess` and `fusion` implement `invoke`; this base turns the typed operations
(`compile_project`, `run_models`, ...) into argv for it and reads the results from the target
folder.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Sequence
from pathlib import Path

from pydantic import JsonValue

from datum_dot.runtimes import artifacts
from datum_dot.runtimes.base import (
    DbtCompilationError,
    DbtExecutionError,
    InvocationResult,
    JsonObject,
    RunResult,
    Runtime,
)


def placement(project_dir: Path, profiles_dir: Path, target: str) -> list[str]:
    """The arguments that say which project, profile folder and target a command uses."""
    return [
        "--project-dir",
        str(project_dir),
        "--profiles-dir",
        str(profiles_dir),
        "--target",
        target,
    ]


class DbtCommandRuntime(Runtime):
    """A runtime whose dbt writes artifacts to the local target folder."""

    def compile_project(self, project_dir: Path, profiles_dir: Path, target: str) -> Path:
        """Run `dbt compile`; see `Runtime.compile_project`."""
        args = ["compile", *placement(project_dir, profiles_dir, target)]
        result = self.invoke(args, env={})
        manifest = self.artifacts_folder(args, result) / artifacts.MANIFEST
        if not result.success or not manifest.is_file():
            raise DbtCompilationError(
                f"dbt compile failed for {project_dir} (target {target})"
                + (f": {result.error}" if result.error else ""),
                f"see dbt's output above, or run: dot compile --project-dir {project_dir}",
            )
        return manifest

    def run_models(
        self,
        project_dir: Path,
        profiles_dir: Path,
        target: str,
        select: str | None = None,
        exclude: str | None = None,
        full_refresh: bool = False,
    ) -> RunResult:
        """Run `dbt run`; see `Runtime.run_models`."""
        args = ["run", *placement(project_dir, profiles_dir, target)]
        if select:
            args += ["--select", select]
        if exclude:
            args += ["--exclude", exclude]
        if full_refresh:
            args.append("--full-refresh")
        return self._run(args)

    def run_tests(
        self,
        project_dir: Path,
        profiles_dir: Path,
        target: str,
        select: str | None = None,
    ) -> RunResult:
        """Run `dbt test`; see `Runtime.run_tests`."""
        args = ["test", *placement(project_dir, profiles_dir, target)]
        if select:
            args += ["--select", select]
        return self._run(args)

    def get_manifest(self, project_dir: Path) -> JsonObject:
        """Read manifest.json from the project's target folder; see `Runtime.get_manifest`."""
        path = artifacts.target_dir([], {}, project_dir) / artifacts.MANIFEST
        return artifacts.read_json(path, what=artifacts.MANIFEST)

    def get_run_results(self, project_dir: Path) -> JsonObject:
        """Read run_results.json from the project's target folder; see `Runtime`."""
        path = artifacts.target_dir([], {}, project_dir) / artifacts.RUN_RESULTS
        return artifacts.read_json(path, what=artifacts.RUN_RESULTS)

    def artifacts_folder(self, args: Sequence[str], result: InvocationResult) -> Path:
        """Where the artifacts of an invocation are: the target folder its argv names."""
        del result
        return artifacts.target_dir(args, {})

    def _run(self, args: Sequence[str]) -> RunResult:
        started = time.perf_counter()
        result = self.invoke(args, env={})
        seconds = time.perf_counter() - started
        target = self.artifacts_folder(args, result)
        if not result.success and not result.nodes and result.error:
            raise DbtExecutionError(
                f"dbt {args[0]} failed before running anything: {result.error}",
                f"run it by hand to see why: dbt {' '.join(args)}",
            )
        return artifacts.run_result(
            success=result.success,
            target=target,
            seconds=seconds,
            metadata=self._result_metadata(result),
            nodes=result.nodes or None,
        )

    def _result_metadata(self, result: InvocationResult) -> dict[str, JsonValue]:
        return {
            **result.metadata,
            "runtime": self.name,
            "dbt_exit_code": result.dbt_exit_code,
            "timed_out": result.timed_out,
            "error": result.error,
            "error_class": str(result.error_class) if result.error_class else None,
        }


def python_version() -> str:
    """`3.11.7`, for runtime metadata."""
    return sys.version.split()[0]
