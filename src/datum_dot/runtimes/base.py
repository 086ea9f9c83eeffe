"""The runtime interface: how `execute()` and the runner ask something to run dbt.

A runtime runs dbt commands somewhere: in this process (`local`), in a child process (`subprocess`,
`fusion`), or remotely (`cloud`). Runtimes are found through the entry-point group
`datum_dot.runtimes` (see `registry.py`); a third-party package adds one by declaring an entry
point to a `Runtime` subclass.

This module imports no dbt code, so that runtimes which never touch dbt-core (dbt Cloud, dbt
Fusion) can be loaded without it.
"""

from __future__ import annotations

import abc
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Protocol

from pydantic import JsonValue

from datum_dot.errors import BadInputError, DbtError, RunTimeoutError
from datum_dot.outcomes import (
    ErrorClass,
    InvocationResult,
    NodeOutcome,
    NodeTarget,
    RunResult,
)

__all__ = [
    "METADATA_KEYS",
    "DbtCompilationError",
    "DbtExecutionError",
    "DbtExecutionTimeoutError",
    "ErrorClass",
    "EventHandler",
    "InvocationResult",
    "JsonObject",
    "NodeOutcome",
    "NodeTarget",
    "OutputSink",
    "RunResult",
    "Runtime",
    "RuntimeContext",
    "RuntimeProbe",
    "RuntimeUnavailableError",
    "retry_args",
]

EventHandler = Callable[[str, Mapping[str, Any]], None]
JsonObject = dict[str, JsonValue]


class OutputSink(Protocol):
    """Receives every line of dbt's output, as well as the terminal does."""

    def line(self, stream: str, text: str) -> None:
        """Take one line (without its newline) written to `stream` ("stdout" or "stderr")."""


@dataclass(frozen=True)
class RuntimeContext:
    """What a runtime may need to know about the run it is created for.

    Attributes:
        project_dir: The user's dbt project folder (caches live under its `.dot/`).
        environ: The environment to read secrets' variable names from.
        git_sha: The resolved commit of an `@ref` spec, or None for the working tree.
        schema: The isolated schema of an `@ref` spec, or None.
        target: The dbt target the environment selects, if any.
        threads: The threads the environment selects, if any.
        target_path: Where this run's dbt artifacts belong locally.
        use_cache: False for `--no-cache`.
    """

    project_dir: Path | None = None
    environ: Mapping[str, str] = field(default_factory=dict)
    git_sha: str | None = None
    schema: str | None = None
    target: str | None = None
    threads: int | None = None
    target_path: Path | None = None
    use_cache: bool = True


@dataclass(frozen=True)
class RuntimeProbe:
    """Whether a runtime can run here, without creating it (for `dot runtimes`).

    Attributes:
        available: It can run with the software installed here.
        version: The version of what it runs (dbt-core, the dbt executable, the API).
        detail: Where it runs, or why it cannot.
    """

    available: bool
    version: str
    detail: str = ""


class DbtCompilationError(DbtError):
    """dbt could not compile the project."""


class DbtExecutionError(DbtError):
    """dbt failed without results (an unhandled error)."""


class RuntimeUnavailableError(BadInputError):
    """The selected runtime is not installed or not configured."""


class DbtExecutionTimeoutError(RunTimeoutError):
    """An invocation did not finish (or could not start) within its timeout."""


class Runtime(abc.ABC):
    """Something that runs dbt commands.

    `invoke` runs any dbt command and is what `execute()` uses; the other methods are the typed
    operations of the DBTPlugin contract, for callers that want results rather than argv.
    """

    name: ClassVar[str] = ""
    supports_dbt_retry: ClassVar[bool] = False
    """Whether `dbt retry` after a partial failure re-runs only the unfinished nodes."""
    parallel: ClassVar[bool | None] = None
    """What `supports_parallel_execution()` answers, where it is known without an instance."""

    @classmethod
    def from_settings(cls, settings: Mapping[str, object], context: RuntimeContext) -> Runtime:
        """Create the runtime from its `runtimes.<name>` settings block.

        Args:
            settings: The environment's settings for this runtime (may be empty).
            context: What is known about the run it is created for.

        Returns:
            The runtime.

        Raises:
            BadInputError: The settings are invalid, or what the runtime needs is missing.
        """
        if settings:
            keys = ", ".join(sorted(settings))
            raise BadInputError(
                f"runtime '{cls.name}' takes no settings, but runtimes.{cls.name} sets {keys}",
                f"remove runtimes.{cls.name} from dot_environments.yml",
            )
        del context
        return cls()

    @classmethod
    def probe(cls) -> RuntimeProbe:
        """Say whether this runtime can run here and what version it runs, cheaply."""
        return RuntimeProbe(available=True, version="")

    @abc.abstractmethod
    def invoke(
        self,
        args: Sequence[str],
        *,
        env: Mapping[str, str],
        on_event: EventHandler | None = None,
        output: OutputSink | None = None,
        timeout: float | None = None,
    ) -> InvocationResult:
        """Run one dbt command.

        Args:
            args: dbt's argv without the leading `dbt`.
            env: Extra environment variables for dbt.
            on_event: Called with each dbt event's name and data, where the runtime has events.
            output: Receives every line of dbt's output (which also reaches the terminal).
            timeout: Seconds before the invocation is stopped, or None for no limit.

        Returns:
            The outcome. A dbt failure, a timeout or a cancellation is a result, not an error.

        Raises:
            BadInputError: The runtime cannot run this command as configured.
            DbtExecutionTimeoutError: The invocation could not even start within `timeout`.
        """

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
        """Re-run only what did not finish in `previous` (a partial failure of `args`).

        The default runs `dbt retry` with the same project, profile, target and paths, which
        reads the previous run_results.json from the target folder. Only called when
        `supports_dbt_retry` is True.

        Args:
            previous: The failed invocation's result.
            args: The argv that produced it.
            env: Extra environment variables for dbt.
            on_event: As for `invoke`.
            output: As for `invoke`.
            timeout: As for `invoke`.

        Returns:
            The outcome of the retry.
        """
        del previous
        return self.invoke(
            retry_args(args), env=env, on_event=on_event, output=output, timeout=timeout
        )

    @abc.abstractmethod
    def parse_targets(self, args: Sequence[str], *, env: Mapping[str, str]) -> list[NodeTarget]:
        """Parse the project and list where each materialized node would be written.

        Args:
            args: Project, profile, target, vars and path arguments for `dbt parse`.
            env: Extra environment variables for dbt.

        Returns:
            One entry per model, seed and snapshot that is not ephemeral or disabled.

        Raises:
            DbtError: dbt could not parse the project.
            KeyboardInterrupt: The parse was interrupted (Ctrl-C, SIGTERM): `execute()` then
                records the run CANCELLED. A runtime whose dbt reports an interrupt as its
                result raises it again here, never as a parse failure.
        """

    @abc.abstractmethod
    def compile_project(self, project_dir: Path, profiles_dir: Path, target: str) -> Path:
        """Compile the dbt project and return the path of its manifest.json.

        Args:
            project_dir: The folder holding dbt_project.yml.
            profiles_dir: The folder holding profiles.yml.
            target: The profile's target.

        Returns:
            The manifest.json written by the compilation.

        Raises:
            DbtCompilationError: The project did not compile.

        Example:
            >>> runtime.compile_project(Path("shop"), Path("shop"), "dev")  # doctest: +SKIP
            PosixPath('shop/target/manifest.json')
        """

    @abc.abstractmethod
    def run_models(
        self,
        project_dir: Path,
        profiles_dir: Path,
        target: str,
        select: str | None = None,
        exclude: str | None = None,
        full_refresh: bool = False,
    ) -> RunResult:
        """Run models (`dbt run`) and report the counts from run_results.json.

        Args:
            project_dir: The folder holding dbt_project.yml.
            profiles_dir: The folder holding profiles.yml.
            target: The profile's target.
            select: dbt's `--select`, if any.
            exclude: dbt's `--exclude`, if any.
            full_refresh: Rebuild incremental models from scratch.

        Returns:
            The outcome; failing models make `success` False, not an exception.

        Raises:
            DbtExecutionError: dbt failed before producing results.
        """

    @abc.abstractmethod
    def run_tests(
        self,
        project_dir: Path,
        profiles_dir: Path,
        target: str,
        select: str | None = None,
    ) -> RunResult:
        """Run data tests (`dbt test`) and report the counts from run_results.json.

        Args:
            project_dir: The folder holding dbt_project.yml.
            profiles_dir: The folder holding profiles.yml.
            target: The profile's target.
            select: dbt's `--select`, if any.

        Returns:
            The outcome; failing tests make `success` False and count in `failures`.

        Raises:
            DbtExecutionError: dbt failed before producing results.
        """

    @abc.abstractmethod
    def get_manifest(self, project_dir: Path) -> JsonObject:
        """Return the manifest.json of the project's last run (from disk, a cache or an API).

        Raises:
            DbtError: There is no manifest to return.
        """

    @abc.abstractmethod
    def get_run_results(self, project_dir: Path) -> JsonObject:
        """Return the run_results.json of the project's last run.

        Raises:
            DbtError: There are no run results to return.
        """

    @abc.abstractmethod
    def supports_parallel_execution(self) -> bool:
        """Whether two invocations may run at the same time (True: the runner fans out)."""

    @abc.abstractmethod
    def get_runtime_metadata(self) -> dict[str, JsonValue]:
        """Facts for observability: at least `type`, `runtime_version`, `python_version`,
        `parallel`; dbt-based runtimes add `dbt_version`."""


# Options `dbt retry` takes over from the command it retries (with their values).
_RETRY_CARRIED = ("--project-dir", "--profiles-dir", "--profile", "--target", "-t",
                  "--target-path", "--log-path", "--threads", "--vars")  # fmt: skip


def retry_args(args: Sequence[str]) -> list[str]:
    """`dbt retry` with the placement options (project, profiles, target, paths) of `args`."""
    out = ["retry"]
    items = iter(args)
    for arg in items:
        name, eq, _ = arg.partition("=")
        if name in _RETRY_CARRIED:
            out += [arg] if eq else [arg, next(items, "")]
    return out


METADATA_KEYS = frozenset({"type", "runtime_version", "python_version", "parallel"})
"""Keys every runtime's `get_runtime_metadata()` returns."""
