"""`DbtRunner`: the runner story's interface (`execute_command`, `run_model`, `run_models`,
`DbtResult`, the `DbtError` classes), as a thin layer over `Project`.

Code written against the story keeps its shape: a runner on a dbt project folder, a command as a
list of words and flags, a result with `success`, `stdout`, `stderr`, `exit_code`. Underneath,
each call is one call of the Python API, so through `execute()`: it is planned, locked, recorded
in the history (`dot logs` lists it, trigger `sdk`) and retried as `retries=` says.

What differs from the story, on purpose: a failed run is a `DbtResult` with `success=False`
(its `error` is the classified `DbtError`; `raise_for_status()` raises it) rather than an
exception; the retries are the runner's (transient failures only, with backoff), not a wrapper
around every error; `stderr` is dot's and dbt's stderr lines of the run, and dbt writes its
errors to stdout, so `error` and `errors` are where to look for what failed.
"""

from __future__ import annotations

import json
import os
import sys
import threading
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from datum_dot.api.dbt_errors import ERROR_CLASSES, DbtError
from datum_dot.api.result import Result
from datum_dot.errors import BadInputError

if TYPE_CHECKING:
    from pydantic import JsonValue

    from datum_dot.api.project import Project


LineCallback = Callable[[str], None]
"""Receives each line of the run's output as it is written."""


@dataclass(frozen=True)
class DbtResult:
    """How one dbt command ended, in the story's shape.

    Attributes:
        success: True when dbt ran and nothing failed (a test that only warned is a success).
        command: The dbt command as given, with the runner's arguments (`["run", "--select",
            "orders"]`).
        stdout: The run's output lines on stdout (dbt's log lines), joined with newlines.
        stderr: The run's lines on stderr (dot's preparation notes, a traceback), joined.
        execution_time: Seconds the run took.
        run_results: dbt's run_results.json of this run, parsed; None when dbt wrote none.
        exit_code: As `dot` would exit: 0 ok, 10 warnings, 30 dbt failed, 40 timed out, 50
            cancelled.
        result: The Python API's `Result` of the same run (`run_id`, `metrics`, `nodes`,
            `errors`, ...).
    """

    success: bool
    command: list[str]
    stdout: str
    stderr: str
    execution_time: float
    run_results: dict[str, JsonValue] | None
    exit_code: int
    result: Result = field(repr=False)

    @property
    def return_code(self) -> int:
        """The story's name for `exit_code`."""
        return self.exit_code

    @property
    def error(self) -> DbtError | None:
        """The failure, classified (`classify_dbt_error`); None when the run succeeded."""
        return classify_dbt_error(self)

    def raise_for_status(self) -> DbtResult:
        """Raise the classified `DbtError` unless the run succeeded; return the result otherwise.

        Raises:
            DbtCompilationError: The project did not compile.
            DbtExecutionError: Running it failed (the warehouse, the connection, a timeout).
            DbtDataQualityError: Tests failed.
            DbtError: Any other failure.
        """
        error = self.error
        if error is not None:
            raise error
        return self


def classify_dbt_error(result: DbtResult | Result) -> DbtError | None:
    """The story's error class for a failed run, from the runner's classification (dbt's
    exception, each node's status, then its error text), not from matching output text.

    Returns:
        `DbtCompilationError`, `DbtExecutionError`, `DbtDataQualityError`, or `DbtError` for
        any other failure (a cancelled run, an internal error); None when the run succeeded.
    """
    run = result.result if isinstance(result, DbtResult) else result
    if run.ok:
        return None
    return ERROR_CLASSES.get(run.error_class or "", DbtError)(run)


class DbtRunner:
    """The runner story's interface on a dbt project: `execute_command`, `run_model`,
    `run_models`.

    Each call runs the project's working tree for the default environment (or `spec`) through
    the Python API, recorded in the history like any other run.

    Args:
        working_dir: The dbt project folder, or any folder inside it.
        threads: dbt's `--threads` for every command that takes it; None: the profile's.
        spec: `[env][@ref]` to run instead of the default environment's working tree
            (`"prod@main"` runs prod at main in its own worktree and schema).
        retries: Attempts after the first for transient failures (a dropped connection), with
            exponential backoff.
        timeout: Seconds before a command is stopped (exit code 40); None: no limit.
        runtime: `local`, `subprocess`, `cloud`, `fusion`; default the environment's, else
            `local`. `run_models(parallel=True)` runs at the same time only with a runtime that
            supports parallel execution (`subprocess`, `cloud`); with `local`, calls take turns.
        home: The history folder, as for `Project`.

    Raises:
        BadInput: No dbt_project.yml in `working_dir` or above it; `threads` below 1.
        TypeError: An argument of the wrong type.

    Example:
        >>> runner = datum_dot.DbtRunner("dbt", threads=4)  # doctest: +SKIP
        >>> res = runner.execute_command(["run", "--select", "int_*"], dbt_vars={"year": 2026})  # doctest: +SKIP
        >>> assert res.success, res.stdout[-500:]  # doctest: +SKIP
    """

    def __init__(
        self,
        working_dir: str | os.PathLike[str] = "dbt",
        threads: int | None = None,
        *,
        spec: str = "",
        retries: int = 0,
        timeout: float | None = None,
        runtime: str | None = None,
        home: str | os.PathLike[str] | None = None,
    ) -> None:
        # lazy: as for `Project`, the planner loads when a runner is made
        from datum_dot.api.options import Options, make_request
        from datum_dot.api.project import Project

        self.project: Project = Project(working_dir, home=home)
        """The `Project` the runner runs."""
        self.threads = threads
        self.spec = spec
        self.retries = retries
        self.timeout = timeout
        self.runtime = runtime
        # wrong types and values fail here, not at the first command
        options = Options(threads=threads, timeout=timeout, retries=retries, runtime=runtime)
        make_request(self.project.path, ("run",), spec, options, environ=None)

    @property
    def working_dir(self) -> Path:
        """The dbt project folder (holding dbt_project.yml)."""
        return self.project.path

    def __repr__(self) -> str:
        return f"DbtRunner({str(self.working_dir)!r}, threads={self.threads!r})"

    def execute_command(
        self,
        command: str | Sequence[str],
        args: Sequence[str] = (),
        dbt_vars: Mapping[str, object] | None = None,
        stream_output: bool = False,
        on_line: LineCallback | None = None,
    ) -> DbtResult:
        """Run one dbt command and return how it ended; a dbt failure is not an exception.

        Args:
            command: The dbt command, with any flags: `"build"`, `"docs generate"`,
                `["run", "--select", "int_*"]`.
            args: More dbt arguments, after those of `command`.
            dbt_vars: Values for `var()`, over the environment's (checked against dot_vars.yml).
            stream_output: Print each line of dbt's output as it comes (unless `on_line`
                takes them).
            on_line: Called with each line of the run's output as it comes, on the thread
                that reads it; what it prints reaches the screen. A callback that raises is
                not called again (the result's `warnings` say so) and the run goes on.

        Returns:
            The result; `success` is False when dbt failed (`error` says why).

        Raises:
            BadInput: An unknown command or flag, vars that dot_vars.yml refuses, a malformed
                spec (exit code 20); recorded as a FAILED run.
            DotError: The run could not be prepared or take its turn.
            TypeError: An argument of the wrong type.
        """
        # lazy: as for the dbt methods of `Project`
        from datum_dot.api.invocation import run
        from datum_dot.api.options import Options, make_request

        words, flags = _split(command)
        extra = [*flags, *_strings("args", args)]
        threads = (
            self.threads if self.threads is not None and _takes_threads(words, extra) else None
        )
        options = Options(vars=dbt_vars, threads=threads, timeout=self.timeout,
                          retries=self.retries, runtime=self.runtime, args=extra)  # fmt: skip
        request = make_request(self.project.path, words, self.spec, options,
                               environ=self.project.run_environ())  # fmt: skip
        lines: list[tuple[str, str]] = []
        lock = threading.Lock()
        # the caller's streams, before an in-process run captures sys.stdout for its log
        screen = {"stdout": sys.stdout, "stderr": sys.stderr}
        show = on_line if on_line is not None else (_printer(screen) if stream_output else None)
        inside = threading.local()

        def take(stream: str, text: str) -> None:
            if getattr(inside, "busy", False):
                # what the callback itself printed while dbt's output is captured in process:
                # it goes to the caller's screen, not round again
                _write(screen[stream], text)
                return
            with lock:
                lines.append((stream, text))
            if show is not None:
                inside.busy = True
                try:
                    show(text)
                finally:
                    inside.busy = False

        result = run(request, on_line=take)
        return DbtResult(
            success=result.ok,
            command=[*words, *extra],
            stdout="\n".join(text for stream, text in lines if stream == "stdout"),
            stderr="\n".join(text for stream, text in lines if stream == "stderr"),
            execution_time=result.execution_time,
            run_results=_read_json(result.artifacts.get("run_results")),
            exit_code=result.exit_code,
            result=result,
        )

    def run_model(
        self,
        model_name: str,
        *,
        args: Sequence[str] = (),
        dbt_vars: Mapping[str, object] | None = None,
        full_refresh: bool = False,
        stream_output: bool = False,
        on_line: LineCallback | None = None,
    ) -> DbtResult:
        """`dbt run --select model_name`.

        Args:
            model_name: A model's name, or any dbt selection (`"orders+"`, `"tag:daily"`).
            args: More dbt arguments.
            dbt_vars: As for `execute_command`.
            full_refresh: Rebuild an incremental model from scratch.
            stream_output: As for `execute_command`.
            on_line: As for `execute_command`.

        Returns:
            The result.
        """
        if not isinstance(model_name, str) or not model_name.strip():
            raise TypeError(f"model_name takes a model's name, got {model_name!r}")
        command = ["run", "--select", model_name, *(["--full-refresh"] if full_refresh else [])]
        return self.execute_command(command, args, dbt_vars, stream_output, on_line)

    def run_models(
        self,
        models: Sequence[str],
        parallel: bool = False,
        *,
        args: Sequence[str] = (),
        dbt_vars: Mapping[str, object] | None = None,
        full_refresh: bool = False,
        max_workers: int | None = None,
    ) -> list[DbtResult]:
        """Run each model on its own (`run_model`), one after another or in parallel.

        Args:
            models: Model names (or selections), one `dbt run` each.
            parallel: Start them from several threads at once. They overlap with a runtime that
                supports parallel execution (`subprocess`, `cloud`); with `local` (dbt in this
                process) they take turns, and a shared DuckDB file is written by one at a time.
            args: As for `run_model`.
            dbt_vars: As for `run_model`.
            full_refresh: As for `run_model`.
            max_workers: Threads for `parallel`; default one per model, at most 8.

        Returns:
            One result per model, in the order of `models`. A failed model does not stop the
            others; check each `success`.
        """
        names = _strings("models", models)

        def one(name: str) -> DbtResult:
            return self.run_model(name, args=args, dbt_vars=dbt_vars, full_refresh=full_refresh)

        if not parallel or len(names) < 2:
            return [one(name) for name in names]
        workers = max_workers if max_workers is not None else min(len(names), 8)
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="dbt-runner") as pool:
            return list(pool.map(one, names))


def _split(command: str | Sequence[str]) -> tuple[tuple[str, ...], list[str]]:
    """The command words (up to the first flag) and the arguments after them."""
    # lazy: as for the dbt methods
    from datum_dot.api.options import command_words

    items = command.split() if isinstance(command, str) else _strings("command", command)
    at = next((i for i, item in enumerate(items) if item.startswith("-")), len(items))
    if at == 0:
        raise BadInputError(
            f"command must start with a dbt command, got {command!r}",
            'pass ["run", "--select", "orders"], for example, or "build"',
        )
    return command_words(items[:at]), list(items[at:])


def _strings(name: str, value: Sequence[str]) -> list[str]:
    if isinstance(value, str | bytes) or not isinstance(value, Sequence):
        raise TypeError(f"{name} takes a list of strings, got {type(value).__name__}")
    for item in value:
        if not isinstance(item, str):
            raise TypeError(f"{name} takes a list of strings, got a {type(item).__name__} in it")
    return list(value)


def _takes_threads(words: tuple[str, ...], args: Sequence[str]) -> bool:
    if "--threads" in args:
        return False  # the call's own wins
    # lazy: dbt's command table loads with the first command, not with the runner
    from datum_dot.dbtcore import command_options

    return "--threads" in command_options(words)


def _read_json(path: Path | None) -> dict[str, JsonValue] | None:
    if path is None:
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _printer(screen: Mapping[str, TextIO]) -> LineCallback:
    def show(text: str) -> None:
        _write(screen["stdout"], text)

    return show


def _write(stream: TextIO, text: str) -> None:
    try:
        stream.write(text + "\n")
        stream.flush()
    except (OSError, ValueError):
        pass  # a reader that went away stops the echo, never the run
