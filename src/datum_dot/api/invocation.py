"""One call of the Python API: its `RunRequest` through `execute()`, quiet unless asked, taking
turns in this process where the runtime says its invocations cannot overlap.

`execute()` is the one path, as for the CLI: the run is planned, isolated, locked against other
processes and recorded. What differs for a library caller is said here: nothing is printed
(`echo=True` shows dbt's lines), dbt's events go to the caller's `on_event`, and calls from
several threads of one process wait for each other when the runtime is not
`supports_parallel_execution()` (the in-process `local` runtime: dbt keeps global state).
"""

from __future__ import annotations

import os
import sys
import threading
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from datum_dot.api.readout import read_result
from datum_dot.errors import LockTimeoutError
from datum_dot.execute import Observer, execute
from datum_dot.history import RunStore
from datum_dot.home.settings import datum_home
from datum_dot.runtimes.output import TerminalPolicy, terminal_policy_for_call

if TYPE_CHECKING:
    from datum_dot.api.result import Result
    from datum_dot.runs.plan import BuildPlan
    from datum_dot.runs.run import RunRecord, RunRequest
    from datum_dot.runtimes.base import Runtime

DEFAULT_WAIT = 3600.0
"""Seconds a call waits for its turn when it has no timeout of its own."""

EventHandler = Callable[[dict[str, Any]], None]
"""Receives each dbt event as `{"name": "NodeFinished", "data": {...}}`."""

LineHandler = Callable[[str, str], None]
"""Receives each line of the run's output as `(stream, text)`: "stdout" or "stderr", the line."""

# One turn at a time for every runtime that cannot run two invocations in one process.
_IN_PROCESS = threading.Lock()


class CallObserver(Observer):
    """What one call shows and collects while `execute()` runs it."""

    def __init__(
        self,
        *,
        on_event: EventHandler | None,
        echo: bool,
        wait: float,
        on_line: LineHandler | None = None,
    ) -> None:
        self._on_event = on_event
        self._on_line = on_line
        self._echo = echo
        self._wait = wait
        self._holding = False
        self.notes: list[str] = []

    def starting(self, plan: BuildPlan, runtime: Runtime) -> None:
        """Take this process's turn unless the runtime runs invocations in parallel.

        Raises:
            LockTimeoutError: Another call held the turn longer than this call's timeout.
        """
        if runtime.supports_parallel_execution():
            return
        if not _IN_PROCESS.acquire(timeout=self._wait):
            raise LockTimeoutError(
                f"another call of the {runtime.name} runtime in this process did not finish "
                f"within {self._wait:g}s, so {plan.spec or 'the run'} did not start",
                f"{runtime.name} runs one dbt command at a time per process: pass a longer "
                "timeout=, or runtime='subprocess' to run calls in parallel",
            )
        self._holding = True

    def release(self) -> None:
        """Give the turn back, if this call took it."""
        if self._holding:
            self._holding = False
            _IN_PROCESS.release()

    def step(self, message: str) -> None:
        """Show a preparation step when echoing."""
        self._say(message)

    def waiting(self, message: str) -> None:
        """Show a wait for another process's lock when echoing."""
        self._say(message)

    def event(self, name: str, data: Mapping[str, Any]) -> None:
        """Hand a dbt event to the caller's `on_event`, as a plain dict."""
        if self._on_event is not None:
            self._on_event({"name": name, "data": dict(data)})

    def wants_events(self) -> bool:
        """Only a caller's `on_event` reads dbt's events."""
        return self._on_event is not None

    def line(self, stream: str, text: str) -> None:
        """Hand a line of the run's output to the caller's `on_line`.

        A handler that raises is not called again and the run goes on (the line is in the
        run's log all the same); the result's warnings say so.
        """
        if self._on_line is None:
            return
        try:
            self._on_line(stream, text)
        except Exception as e:  # noqa: BLE001 - the caller's code must not break dbt's output
            self._on_line = None
            self.notes.append(
                f"on_line raised {type(e).__name__}: {e}; later lines were not passed on"
            )

    def history_warning(self, message: str) -> None:
        """Keep it for the result's warnings."""
        self.notes.append(message)

    def _say(self, message: str) -> None:
        if self._echo:
            print(f"dot: {message}", file=sys.stderr, flush=True)  # noqa: T201 - echo=True asks for it


def run(
    request: RunRequest,
    *,
    on_event: EventHandler | None = None,
    echo: bool = False,
    on_line: LineHandler | None = None,
    runtime: Runtime | None = None,
    choose_runtime: Callable[[RunRequest, BuildPlan], Runtime] | None = None,
) -> Result:
    """Run one request through `execute()` and read its result.

    Args:
        request: What to run (trigger `sdk`).
        on_event: Receives each dbt event.
        on_line: Receives each line of the run's output as it is written.
        echo: Show dbt's lines and the preparation steps on this process's stdout/stderr.
        runtime: What runs dbt, instead of the one the request's plan names (an integration
            that must be able to stop dbt passes the local runtime in a child process).
        choose_runtime: Chooses the runtime from the plan instead (see `execute`).

    Returns:
        The result; a dbt failure is a result with status `error`.

    Raises:
        DotError: Bad input (exit 20; recorded as a FAILED run), or the run could not be
            prepared or take its turn.
    """
    wait = request.timeout if request.timeout is not None else DEFAULT_WAIT
    observer = CallObserver(on_event=on_event, echo=echo, wait=wait, on_line=on_line)
    store = RunStore(datum_home(request.environ))
    try:
        with terminal_policy_for_call(TerminalPolicy(silent=not echo)):
            record = execute(
                request,
                runtime=runtime,
                observer=observer,
                store=store,
                choose_runtime=choose_runtime,
            )
    finally:
        observer.release()
    environ = request.environ if request.environ is not None else os.environ
    return read_result(record, store, environ=environ, notes=observer.notes)


def dry_run(request: RunRequest) -> RunRecord:
    """Plan a request without touching anything (the request has `dry_run=True`).

    Raises:
        DotError: The plan is invalid (bad input, exit 20); nothing is recorded.
    """
    return execute(request, observer=Observer())
