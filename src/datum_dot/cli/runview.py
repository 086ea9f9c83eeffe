"""How `dot logs` shows runs: one run in full, its output, JSON (the table is `runtable`).

Text from outside (specs, commands, error messages, dbt's output) is never read as rich markup:
it is wrapped in `Text`, or written to the stream as it is. Times are UTC.
"""

from __future__ import annotations

import os
import shlex
import sys
from collections.abc import Iterator
from datetime import datetime
from typing import TYPE_CHECKING, Any

from datum_dot.cli.console import make_console
from datum_dot.history import StoredRun, unstamp
from datum_dot.runs.run import RunStatus

if TYPE_CHECKING:
    from rich.console import Console
    from rich.text import Text

STATUS_STYLES = {
    RunStatus.RUNNING: "cyan",
    RunStatus.SUCCESS: "green",
    RunStatus.FAILED: "red",
    RunStatus.TIMEOUT: "red",
    RunStatus.CANCELLED: "yellow",
    RunStatus.ABORTED: "magenta",
    RunStatus.SKIPPED: "yellow",
}
MISSING = "log files missing"


def console(*, stderr: bool = False) -> Console:
    """A console that never wraps data: wide when the stream is not a terminal."""
    stream = sys.stderr if stderr else sys.stdout
    width = None if stream.isatty() else 400
    return make_console(stderr=stderr, highlight=False, soft_wrap=True, width=width)


def status_text(status: RunStatus) -> Text:
    """A run status, coloured."""
    from rich.text import Text

    return Text(status.value, style=STATUS_STYLES.get(status, ""))


def when(moment: datetime | None) -> str:
    """A UTC time for people: `2024-05-01 06:00:00`."""
    return "-" if moment is None else f"{moment:%Y-%m-%d %H:%M:%S}"


def duration(seconds: float | None) -> str:
    """`4.2s`, `3m05s`, `2h04m`; `-` when unknown."""
    if seconds is None:
        return "-"
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, secs = divmod(int(seconds), 60)
    if minutes < 60:
        return f"{minutes}m{secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m"


def command_line(run: StoredRun) -> str:
    """`dbt build -s orders+` (the dbt argv when recorded, else the command words), `dot clean`."""
    program = "dot" if is_clean(run) else "dbt"
    return f"{program} " + shlex.join(run.start.argv or run.start.command)


def is_clean(run: StoredRun) -> bool:
    """Whether the run is a `dot clean` that dropped schemas (dbt's own `clean` is never run)."""
    return run.start.command == ("clean",)


def print_run(run: StoredRun) -> None:
    """One run in full: metadata, node summary, error and suggestion, output, file paths."""
    from rich.text import Text

    out = console()
    s = run.start
    rows: list[tuple[str, Text]] = [
        ("run id", Text(run.run_id)),
        ("status", status_text(run.status)),
        ("project", Text(s.project)),
        ("spec", Text("-" if is_clean(run) else s.spec or "(default environment, working tree)")),
        ("environment", Text(s.env or "(none)")),
        ("ref", Text(_ref(run))),
        ("command", Text(command_line(run))),
        ("runtime", Text(s.runtime)),
        ("trigger", Text(s.trigger + (f", retrying run {s.retry_of}" if s.retry_of else ""))),
        ("host", Text(f"{s.hostname} (pid {s.pid})")),
        ("started", Text(f"{when(run.started_at)} UTC")),
        ("finished", Text(f"{when(run.finished_at)} UTC" if run.finished_at else "-")),
        ("duration", Text(duration(run.duration_seconds))),
        ("exit code", Text(_codes(run))),
    ]
    if run.counts is not None:
        rows.append(("nodes", Text(run.counts.summary())))
    rows += [(key, Text(value)) for key, value in _state_rows(run)]
    if run.error_class or run.error_message or run.error_node:
        # the failed node, then dbt's message in full, each line of it under the one before
        error = Text(f"[{run.error_class or 'error'}] ", style="red")
        message = (run.error_message or "").rstrip()
        error.append("\n".join(filter(None, (run.error_node, message))))
        rows.append(("error", error))
    if run.suggestion:
        rows.append(("suggestion", Text(run.suggestion, style="bold")))
    _print_rows(out, rows)
    out.print(Text("\noutput (UTC)", style="bold"))
    sys.stdout.flush()
    if run.has_log_files():
        for line in output_lines(run):
            sys.stdout.write(line)
        sys.stdout.flush()
    else:
        out.print(Text(f"({MISSING})", style="yellow"))
    out.print(Text("\nfiles", style="bold"))
    files = [(role, Text(str(path))) for role, path in run.files().items() if path.exists()]
    if not files and run.lines is not None and run.start.hostname != os.uname().nodename:
        # a shared history's run made on another host: its folder is there, not here
        files = [("folder", Text(f"{run.run_dir} on {run.start.hostname}"))]
    if run.artifacts:
        names = ", ".join(sorted(set(run.artifacts) - {"run_results.json"}))
        stored = "in the database too; " if any(a.in_db for a in run.artifacts.values()) else ""
        files.append(("artifacts", Text(f"{names} ({stored}dot logs {run.run_id} --artifacts)")))
    _print_rows(out, files or [("folder", Text(f"{run.run_dir} ({MISSING})", style="yellow"))])


def _state_rows(run: StoredRun) -> list[tuple[str, str]]:
    """Where the run's deferred and compared state came from, as recorded."""
    state = run.start.state or {}
    rows: list[tuple[str, str]] = []
    defer = state.get("defer")
    if isinstance(defer, dict):
        commit = str(defer.get("commit") or "")[:8]
        where = {
            "history": f"run {defer.get('run_id')}",
            "cloud": f"dbt Cloud run {defer.get('run_id')}",
        }.get(str(defer.get("source")), str(defer.get("state")))
        rows.append(
            ("deferred to", f"{defer.get('spec')}: {where}" + (f" at {commit}" if commit else ""))
        )
    compared = state.get("state_from")
    if isinstance(compared, dict):
        rows.append(("compared to", f"{compared.get('spec')} at {str(compared.get('commit'))[:8]}"))
    return rows


def _ref(run: StoredRun) -> str:
    s = run.start
    if is_clean(run):
        return "-"
    return f"{s.ref} -> {s.commit}" if s.ref else (s.commit or "(working tree)")


def _codes(run: StoredRun) -> str:
    code = "-" if run.exit_code is None else str(run.exit_code)
    return code if run.dbt_exit_code is None else f"{code} (dbt exited {run.dbt_exit_code})"


def _print_rows(out: Console, rows: list[tuple[str, Text]]) -> None:
    from rich.text import Text

    width = max(len(key) for key, _ in rows)
    for key, value in rows:
        first, *more = value.split("\n", allow_blank=True)
        out.print(Text(f"{key:<{width}}  ", style="bold") + first)
        for line in more:
            out.print(Text(" " * (width + 2)) + line)


def output_lines(run: StoredRun) -> Iterator[str]:
    """The stamped lines of output.log, each ending in a newline; none if it is missing."""
    if run.lines is not None:  # a history in PostgreSQL: the run may have run on another host
        yield from (line + "\n" for line in run.lines(0))
        return
    try:
        with run.files()["output"].open(encoding="utf-8", errors="replace", newline="\n") as f:
            for line in f:
                yield line if line.endswith("\n") else line + "\n"
    except FileNotFoundError:
        return


def print_raw_output(run: StoredRun) -> None:
    """The combined output as dbt printed it: output.log without its stamps."""
    for line in output_lines(run):
        sys.stdout.write(unstamp(line))
    sys.stdout.flush()


def run_detail_json(run: StoredRun) -> dict[str, Any]:
    """One run for machines: the record, whether its files are there, and its output lines."""
    return {
        **run.to_json(),
        "log_files_missing": not run.has_log_files(),
        "output": [line.removesuffix("\n") for line in output_lines(run)],
    }


def print_pruned(removed: list[str]) -> None:
    """Say what prune removed."""
    from rich.text import Text

    noun = "run" if len(removed) == 1 else "runs"
    console().print(Text(f"removed {len(removed)} {noun} and their folders"))


def artifacts_json(run: StoredRun) -> dict[str, Any]:
    """The artifacts kept with a run, for machines: name, size, sha256, path, present, and
    whether the PostgreSQL history keeps a copy (`in_db`)."""
    return {
        "run_id": run.run_id,
        "artifacts": [
            {
                "name": name,
                "bytes": artifact.size,
                "sha256": artifact.sha256,
                "path": str(run.run_dir / name),
                "present": (run.run_dir / name).is_file(),
                "in_db": artifact.in_db,
            }
            for name, artifact in sorted(run.artifacts.items())
        ],
    }


def print_artifacts(run: StoredRun) -> None:
    """The artifacts kept with a run, one per line: name, size, sha256, path."""
    from rich.text import Text

    out = console()
    if not run.artifacts:
        out.print(Text(f"run {run.run_id} kept no dbt artifacts"))
        return
    width = max(len(name) for name in run.artifacts)
    for item in artifacts_json(run)["artifacts"]:
        gone = "" if item["present"] else "  (file missing)"
        if item["in_db"]:
            gone = "  (also in the database)" if item["present"] else "  (in the database)"
        size = f"{item['bytes'] / 1024:.1f} KiB"
        out.print(
            Text(f"{item['name']:<{width}}  {size:>10}  sha256:{item['sha256'][:16]}  ")
            + Text(item["path"] + gone)
        )


def print_which(answer: dict[str, Any], *, short_id: str, prog: str) -> None:
    """`dot which`'s answer for people: the relation, then the run that last built it."""
    from rich.text import Text

    out = console()
    commit = str(answer["commit"] or "")[:8] or "-"
    env = answer["environment"] or "(no environment)"
    rows = [
        ("relation", f"{answer['relation']} ({answer['unique_id']})"),
        ("built by", f"run {short_id}: {prog} {' '.join(answer['command'])} {answer['spec']}"),
        ("environment", env),
        ("commit", commit + (f" (ref {answer['ref']})" if answer["ref"] else " (working tree)")),
        (
            "when",
            f"{str(answer['finished_at'] or answer['started_at'])[:19].replace('T', ' ')} UTC",
        ),
        ("status", f"node {answer['node_status']}, run {answer['run_status']}"),
        ("trigger", answer["trigger"]),
    ]
    width = max(len(key) for key, _ in rows)
    for key, value in rows:
        out.print(Text(f"{key:<{width}}  ", style="bold") + Text(str(value)))
    out.print(Text(f"details: {prog} logs {short_id}", style="dim"))
