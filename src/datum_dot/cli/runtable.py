"""The table `dot logs` lists runs in: fitted to a terminal, or wide and complete for a pipe.

On a terminal every line fits its width. Columns go by priority: the short run id (what
`dot logs <id>` takes back), status, age, command with its spec (a full commit hash cut to 8
hex digits), duration; the lower ones are dropped first when the terminal is narrow. A failed
run's error goes on a line of its own below the run (its node and the line of dbt's message
that says what went wrong), cut to the width.

Anywhere else (a file, a pipe) nothing is cut or dropped: full run ids, start times, full
specs and commits, exit codes and error classes, one line per run, no colour.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from datum_dot.cli import runview
from datum_dot.history import StoredRun
from datum_dot.runs.run import RunStatus

if TYPE_CHECKING:
    from rich.console import Console
    from rich.text import Text

GAP = 2
ELLIPSIS = "…"
# A full commit hash in a spec (a pinned schedule's `prod@<40 hex>`): people read 8 of them.
_FULL_SHA = re.compile(r"(?<=@)([0-9a-f]{40}|[0-9a-f]{64})$")
# The first line of many dbt messages only names the kind and the node (`Runtime Error in model
# orders (models/orders.sql)`, `UninstalledPackagesFoundError: Compilation Error`); what went
# wrong is on the next one.
_HEADER = re.compile(r"(?:\w+: )?[A-Z][A-Za-z ]*Error(?: in [a-z_]+ (?P<node>\S+) \(.*\))?:?")
_MIN_COMMAND = 12


@dataclass
class _Column:
    name: str
    cells: list[Text]
    right: bool = False
    shrinks: bool = False

    def natural(self) -> int:
        return max(len(self.name), *(len(cell) for cell in self.cells))

    def least(self) -> int:
        return min(self.natural(), _MIN_COMMAND) if self.shrinks else self.natural()


def print_runs(
    runs: list[StoredRun],
    *,
    filtered: bool,
    home: Path,
    short_ids: Callable[[list[str]], dict[str, str]],
) -> None:
    """The table of runs, newest first: fitted to a terminal, or wide and complete otherwise.

    Args:
        runs: The runs to list.
        filtered: Whether filters chose them (for what an empty list says).
        home: `$DATUM_HOME` (named when the history is empty).
        short_ids: Gives the name to show for each run id on a terminal (`RunStore.short_ids`).
    """
    from rich.text import Text

    if not runs:
        what = "no runs match" if filtered else f"no runs recorded yet in {home}"
        runview.console(stderr=True).print(Text(what))
        return
    out = runview.console()
    if out.is_terminal:
        names = short_ids([run.run_id for run in runs])
        _print_fitted(out, runs, names, now=datetime.now(UTC))
    else:
        _print_wide(out, runs)


def age(moment: datetime, now: datetime) -> str:
    """How long ago, for people: `just now`, `3m ago`, `2h ago`, `yesterday`, `4d ago`, then the
    date (`2024-05-01`, UTC) from two weeks on."""
    seconds = (now - moment).total_seconds()
    if seconds < 60:
        return "just now"
    if seconds < 3600:
        return f"{int(seconds // 60)}m ago"
    if seconds < 86400:
        return f"{int(seconds // 3600)}h ago"
    if seconds < 2 * 86400:
        return "yesterday"
    if seconds < 14 * 86400:
        return f"{int(seconds // 86400)}d ago"
    return f"{moment.astimezone(UTC):%Y-%m-%d}"


def short_spec(spec: str) -> str:
    """A spec with a full commit hash cut to its first 8 hex digits (`prod@1a2b3c4d`)."""
    return _FULL_SHA.sub(lambda m: m.group(1)[:8], spec)


def node_name(unique_id: str) -> str:
    """The name dbt prints for a node: `orders` for `model.shop.orders`, the test's name for
    `test.shop.not_null_orders_id.5fb22c2710` (its trailing hash left off)."""
    parts = unique_id.split(".")
    if len(parts) < 3:
        return unique_id
    return parts[2] if parts[0] == "test" else ".".join(parts[2:])


def error_line(run: StoredRun) -> str:
    """The line of the error that says what went wrong, after the failed node's name:
    `orders: Binder Error: Referenced column "amount" not found in FROM clause!`."""
    said, named = _said(run.error_message)
    node = node_name(run.error_node) if run.error_node else named
    return f"{node}: {said}" if node and said else said or node


def _said(message: str | None) -> tuple[str, str]:
    """The first line of `message` that says what went wrong, and the node a header names."""
    lines = [line.strip() for line in (message or "").splitlines() if line.strip()]
    headers = [match for line in lines if (match := _HEADER.fullmatch(line))]
    said = next((line for line in lines if not _HEADER.fullmatch(line)), lines[0] if lines else "")
    return said, next((match["node"] for match in headers if match["node"]), "")


def _command(run: StoredRun) -> str:
    if runview.is_clean(run):
        return "clean"
    return " ".join((*run.start.command, short_spec(run.start.spec))).strip()


def _print_fitted(
    out: Console, runs: list[StoredRun], short_ids: dict[str, str], *, now: datetime
) -> None:
    from rich.text import Text

    columns = [
        _Column("run id", [Text(short_ids.get(run.run_id, run.run_id)) for run in runs]),
        _Column("status", [runview.status_text(run.status) for run in runs]),
        _Column("age", [Text(age(run.started_at, now)) for run in runs]),
        _Column("command", [Text(_command(run)) for run in runs], shrinks=True),
        _Column(
            "duration", [Text(runview.duration(run.duration_seconds)) for run in runs], right=True
        ),
    ]
    width = out.width
    while len(columns) > 2 and _least_width(columns) > width:
        columns.pop()  # the lowest priority goes first
    widths = [column.natural() for column in columns]
    excess = sum(widths) + GAP * (len(columns) - 1) - width
    for n, column in enumerate(columns):
        if column.shrinks and excess > 0:
            cut = min(excess, widths[n] - column.least())
            widths[n] -= cut
            excess -= cut
    header = [Text(column.name, style="bold") for column in columns]
    out.print(_line(header, columns, widths))
    indent = " " * (widths[0] + GAP)
    for row, run in enumerate(runs):
        out.print(_line([column.cells[row] for column in columns], columns, widths))
        notes = [(error_line(run), "red")] if run.status is not RunStatus.SUCCESS else []
        if not run.has_log_files():
            notes.append((runview.MISSING, "yellow"))
        for note, style in notes:
            if note:
                out.print(Text(indent) + _cut(Text(note, style=style), width - len(indent)))


def _print_wide(out: Console, runs: list[StoredRun]) -> None:
    from rich.text import Text

    columns = [
        _Column("run id", [Text(run.run_id) for run in runs]),
        _Column("started (UTC)", [Text(runview.when(run.started_at)) for run in runs]),
        _Column("spec", [Text(_spec(run)) for run in runs]),
        _Column("commit", [Text(_commit(run)) for run in runs]),
        _Column("command", [Text(" ".join(run.start.command)) for run in runs]),
        _Column("status", [runview.status_text(run.status) for run in runs]),
        _Column(
            "duration", [Text(runview.duration(run.duration_seconds)) for run in runs], right=True
        ),
        _Column("exit", [Text(_exit(run)) for run in runs], right=True),
    ]
    if any(not run.has_log_files() for run in runs):
        notes = [runview.MISSING if not run.has_log_files() else "" for run in runs]
        columns.append(_Column("note", [Text(note) for note in notes]))
    if any(run.error_class or run.error_message or run.error_node for run in runs):
        columns.append(_Column("error", [Text(_wide_error(run)) for run in runs]))
    widths = [column.natural() for column in columns]
    rows = [[Text(column.name) for column in columns]]
    rows += [[column.cells[row] for column in columns] for row in range(len(runs))]
    for cells in rows:
        line = _line(cells, columns, widths)
        line.rstrip()
        out.print(line)


def _spec(run: StoredRun) -> str:
    return "-" if runview.is_clean(run) else run.start.spec or "(default)"


def _commit(run: StoredRun) -> str:
    return "-" if runview.is_clean(run) else run.start.commit or "working tree"


def _exit(run: StoredRun) -> str:
    return "-" if run.exit_code is None else str(run.exit_code)


def _wide_error(run: StoredRun) -> str:
    kind = f"[{run.error_class}]" if run.error_class else ""
    said, named = _said(run.error_message)
    node = run.error_node or named
    return " ".join(part for part in (kind, f"{node}:" if node and said else node, said) if part)


def _least_width(columns: list[_Column]) -> int:
    return sum(column.least() for column in columns) + GAP * (len(columns) - 1)


def _line(cells: list[Text], columns: list[_Column], widths: list[int]) -> Text:
    from rich.text import Text

    line = Text()
    for n, (cell, column, size) in enumerate(zip(cells, columns, widths, strict=True)):
        fitted = _cut(cell, size)
        pad = " " * (size - len(fitted))
        line += Text(pad) + fitted if column.right else fitted + Text(pad)
        if n < len(cells) - 1:
            line += Text(" " * GAP)
    return line


def _cut(text: Text, size: int) -> Text:
    if len(text) <= size:
        return text
    if size <= 0:
        return text[:0]
    return text[: size - 1] + ELLIPSIS
