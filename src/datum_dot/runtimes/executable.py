"""Run a dbt-compatible executable (the dbt CLI, dbt Fusion) in a child process.

Output is streamed line by line to the terminal with `[HH:MM:SS]` timestamps and to the output
sink. Where the executable speaks dbt-core's structured logs, it runs with `--log-format json`:
each line is then one event, whose `msg` is what is shown and whose name and data feed progress
and error classification, exactly as dbtRunner's callbacks do in process.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar

from pydantic import JsonValue

from datum_dot.errors import DbtError
from datum_dot.runtimes import artifacts, process
from datum_dot.runtimes.base import (
    EventHandler,
    InvocationResult,
    NodeTarget,
    OutputSink,
    RuntimeUnavailableError,
)
from datum_dot.runtimes.commands import DbtCommandRuntime, python_version
from datum_dot.runtimes.output import Tail, TerminalEcho, strip_ansi

_VERSION = re.compile(r"\d+\.\d+\.\d+[\w.+-]*")
# dbt events that carry the message of an unhandled failure.
_ERROR_EVENTS = frozenset({"MainEncounteredError", "MainEncounteredErrorNoStack"})


class ExecutableRuntime(DbtCommandRuntime):
    """A runtime that runs `<executable> <dbt args>` as a child process in its own group."""

    parallel = True
    structured_logs: ClassVar[bool] = True
    """Pass `--log-format json` and read each output line as a dbt event."""

    def __init__(
        self,
        executable: Path,
        *,
        grace: float = process.GRACE_SECONDS,
        timestamps: bool = True,
    ) -> None:
        self.executable = executable
        self._grace = grace
        self._timestamps = timestamps
        self._version: str | None = None

    def invoke(
        self,
        args: Sequence[str],
        *,
        env: Mapping[str, str],
        on_event: EventHandler | None = None,
        output: OutputSink | None = None,
        timeout: float | None = None,
    ) -> InvocationResult:
        """Run the executable with `args`; see `Runtime.invoke`.

        Raises:
            RuntimeUnavailableError: The executable could not be started.
        """
        structured = self.structured_logs and not any(a.startswith("--log-format") for a in args)
        argv = [str(self.executable), *(["--log-format", "json"] if structured else []), *args]
        target = artifacts.target_dir(args, env)
        echo = TerminalEcho(timestamps=self._timestamps)
        tail = Tail()
        errors: list[str] = []

        def show(stream: str, text: str, level: str | None = None) -> None:
            echo.line(stream, text, level)
            tail.add(text)
            if output is not None:
                output.line(stream, text)

        def on_line(stream: str, text: str) -> None:
            event = _event(text) if structured and stream == "stdout" else None
            if event is None:
                show(stream, strip_ansi(text))
                return
            name, level, message, data = event
            if name in _ERROR_EVENTS and isinstance(data.get("exc"), str):
                errors.append(data["exc"])
            for line in message.split("\n"):
                show(stream, line, level)
            # after its lines, as dbt in process calls back: the event's level is theirs
            if on_event is not None:
                on_event(name, _EventData(data, level))

        started = time.time()
        try:
            outcome = process.stream(
                argv,
                cwd=Path.cwd(),
                env={**os.environ, **env},
                timeout=timeout,
                on_line=on_line,
                grace=self._grace,
            )
        except OSError as e:
            raise RuntimeUnavailableError(
                f"could not start {self.executable}: {e.strerror or e}",
                f"check that {self.executable} exists and is executable, or pick another runtime",
            ) from e
        nodes = artifacts.node_outcomes(artifacts.fresh_run_results(target, started))
        code = outcome.returncode
        stopped = outcome.timed_out or outcome.interrupted
        error = errors[-1] if errors else None
        if outcome.timed_out:
            error = f"dbt did not finish within {timeout:g}s and was stopped" if timeout else None
        elif code not in (0, 1) and not stopped and error is None:
            error = f"{self.executable.name} exited with status {code}"
        return InvocationResult(
            success=code == 0 and not stopped,
            dbt_exit_code=code,
            statuses=tuple(n.status for n in nodes),
            error=error,
            interrupted=outcome.interrupted,
            timed_out=outcome.timed_out,
            nodes=nodes,
            output_tail=tail.lines(),
            metadata={"executable": str(self.executable), "seconds": round(outcome.seconds, 3)},
        )

    def parse_targets(self, args: Sequence[str], *, env: Mapping[str, str]) -> list[NodeTarget]:
        """Run `parse` and read the node placements from the manifest it writes; see `Runtime`.

        Raises:
            DbtError: The project did not parse.
            KeyboardInterrupt: The parse was interrupted; the child was stopped.
        """
        result = self.invoke(["parse", *args], env=env)
        if result.interrupted:
            # `invoke` stopped the child and reports the interrupt as a result; the caller is
            # interrupted as it would have been by the same signal outside dbt.
            raise KeyboardInterrupt
        manifest = artifacts.target_dir(["parse", *args], env) / artifacts.MANIFEST
        if not result.success or not manifest.is_file():
            raise DbtError(
                "dbt could not parse the project" + (f": {result.error}" if result.error else ""),
                "run the same command with --dry-run to see the dbt arguments, then fix the project",
            )
        return manifest_targets(artifacts.read_json(manifest, what=artifacts.MANIFEST))

    def supports_parallel_execution(self) -> bool:
        """True: every invocation is its own process."""
        return True

    def version(self) -> str:
        """The executable's version (`1.11.2`), from its `--version`; empty if it will not say."""
        if self._version is None:
            try:
                done = process.run([str(self.executable), "--version"], timeout=60)
                found = _VERSION.search(done.stdout + done.stderr)
            except (OSError, subprocess.TimeoutExpired):
                found = None
            self._version = found.group(0) if found else ""
        return self._version

    def get_runtime_metadata(self) -> dict[str, JsonValue]:
        """Type, versions, and the executable."""
        version = self.version()
        return {
            "type": self.name,
            "runtime_version": version,
            "dbt_version": version,
            "python_version": python_version(),
            "parallel": True,
            "executable": str(self.executable),
        }


class _EventData(dict[str, Any]):
    """An event's data from dbt's JSON log, with the event's level ("info", "warn", ...)."""

    def __init__(self, data: Mapping[str, Any], level: str | None) -> None:
        super().__init__(data)
        self.level = level


def _event(text: str) -> tuple[str, str | None, str, dict[str, Any]] | None:
    if not text.startswith("{"):
        return None
    try:
        parsed = json.loads(text)
    except ValueError:
        return None
    info = parsed.get("info") if isinstance(parsed, dict) else None
    if not isinstance(info, dict):
        return None
    data = parsed.get("data")
    level = info.get("level")
    return (
        str(info.get("name", "")),
        str(level) if isinstance(level, str) else None,
        strip_ansi(str(info.get("msg", ""))),
        (data if isinstance(data, dict) else {}),
    )


def manifest_targets(manifest: Mapping[str, Any]) -> list[NodeTarget]:
    """Where each materialized model, seed and snapshot of a manifest.json would be written."""
    targets: list[NodeTarget] = []
    nodes = manifest.get("nodes")
    for node in (nodes or {}).values() if isinstance(nodes, dict) else ():
        config = node.get("config") or {}
        kind = str(node.get("resource_type", ""))
        if kind not in {"model", "seed", "snapshot"} or config.get("materialized") == "ephemeral":
            continue
        if config.get("enabled") is False:
            continue
        targets.append(
            NodeTarget(
                unique_id=str(node.get("unique_id", "")),
                resource_type=kind,
                database=str(node.get("database") or ""),
                schema=str(node.get("schema") or ""),
                path=str(node.get("original_file_path", "")),
                database_overridden=config.get("database") is not None,
            )
        )
    return targets


def require_executable(path: Path, *, what: str, hint: str) -> Path:
    """`path`, if it is an executable file.

    Raises:
        RuntimeUnavailableError: It is not.
    """
    if path.is_file() and os.access(path, os.X_OK):
        return path
    raise RuntimeUnavailableError(f"{what}: no executable at {path}", hint)
