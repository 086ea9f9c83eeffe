"""Everything the CLI shows a person: plans, outcomes, versions, warnings.

Text from outside (dbt output, paths, var values) is never read as rich markup: it is wrapped in
`Text`, so a model named `[bold]` prints as written. Colour follows rich's rules: none when
`NO_COLOR` is set or the stream is not a terminal.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from datum_dot.cli.console import make_console

if TYPE_CHECKING:
    from rich.console import Console

    from datum_dot.runs.plan import BuildPlan
    from datum_dot.runs.run import RunRecord


def _console(*, stderr: bool = False) -> Console:
    return make_console(stderr=stderr, highlight=False, soft_wrap=True)


def print_json(data: Any) -> None:
    """Print one JSON document on stdout."""
    sys.stdout.write(json.dumps(data, indent=2, default=str) + "\n")


def warn(message: str) -> None:
    """Print a warning on stderr."""
    from rich.text import Text

    _console(stderr=True).print(Text("warning: ", style="yellow") + Text(message))


def print_plan(plan: BuildPlan, *, debug: bool) -> None:
    """Print what a run would do, for `--dry-run`."""
    from rich.text import Text

    # lazy: the vars module (pydantic) loads only for a dry run's plan
    from datum_dot.config.variables import format_cli_vars

    out = _console()
    rows: list[tuple[str, str]] = [
        ("spec", str(plan.spec) or "(default environment, working tree)"),
        ("environment", plan.env.name or "(none: plain dbt settings)"),
        ("command", " ".join(plan.command)),
        ("project", str(plan.project_dir)),
        ("profiles", str(plan.profiles_dir / "profiles.yml")),
    ]
    iso = plan.isolated
    if iso is not None:
        rows += [
            ("ref", f"{iso.ref} -> {iso.commit}"),
            ("build folder", str(iso.build_dir)),
            ("worktree", str(iso.worktree)),
            ("profile", f"{iso.profile.profile}, target {iso.profile.target}"),
            (
                iso.profile.schema_key,
                f"{iso.profile.schema_before} -> {iso.profile.schema_after}",
            ),
            ("target path", str(plan.target_path)),
            ("deps", "dbt " + shlex.join(plan.deps_args) if plan.deps_args else "not run"),
            ("isolation check", "yes" if plan.check_isolation else "no"),
        ]
    base = plan.baseline
    if base is not None:
        # lazy: only a plan that defers describes its state
        from datum_dot.runs.deferplan import describe

        rows.append(("defer to", f"{describe(base)} ({base.state_dir})"))
        rows += [("passed over", line) for line in base.skipped]
        if base.settings_file is not None:
            env_name = base.env_name or "(none)"
            found = base.settings_file.describe()
            rows.append(("defer settings", f"environment {env_name}, settings from {found}"))
    if plan.state_from is not None:
        cached = "parsed earlier" if plan.state_from.cached else "parsed before the run"
        rows.append(
            (
                "compare to",
                f"{plan.state_from.spec} at {plan.state_from.commit[:8]}, {cached}"
                f" ({plan.state_from.state_dir})",
            )
        )
    rows.append(("runtime", plan.runtime))
    rows.append(("vars", format_cli_vars(plan.vars) if plan.vars else "(none)"))
    width = max(len(key) for key, _ in rows)
    for key, value in rows:
        out.print(Text(f"{key:<{width}}  ", style="bold") + Text(value))
    for line, bold in _settings_lines(plan):
        out.print(Text(line, style="bold") if bold else Text(line))
    env_prefix = " ".join(f"{k}={shlex.quote(v)}" for k, v in plan.dbt_env.items())
    argv = shlex.join(["dbt", *plan.dbt_args])
    out.print(Text(f"{'dbt argv':<{width}}  ", style="bold") + Text(f"{env_prefix} {argv}".strip()))
    for warning in plan.warnings:
        warn(warning)
    if debug:
        for note in plan.notes:
            print(f"debug: {note}", file=sys.stderr)


_PLAN_COLUMNS = 80


def _settings_lines(plan: BuildPlan) -> list[tuple[str, bool]]:
    """The plan's settings, each with where it came from, and the files read, in 80 columns.

    A row too wide for 80 columns puts its origin on a line of its own, under the value.
    """
    settings = plan.settings
    named = [
        *((s.name, s.value, s.origin.describe()) for s in settings.flags),
        *((f"var {s.name}", s.value, s.origin.describe()) for s in settings.vars),
    ]
    lines: list[tuple[str, bool]] = []
    if named:
        lines.append(("settings (value, then where it was set)", True))
        width = max(len(name) for name, _, _ in named)
        shown = [_setting_value(value) for _, value, _ in named]
        value_width = min(max(len(text) for text in shown), 16)
        for (name, _, origin), text in zip(named, shown, strict=True):
            line = f"  {name:<{width}}  {text:<{value_width}}  {origin}"
            if len(line) <= _PLAN_COLUMNS:
                lines.append((line, False))
            else:
                lines.append((f"  {name:<{width}}  {text}", False))
                lines.append((f"  {'':<{width}}  from {origin}", False))
    if settings.files:
        lines.append(("settings files", True))
        width = max(len(file.name) for file in settings.files)
        lines.extend(
            (f"  {file.name:<{width}}  {file.describe()}", False) for file in settings.files
        )
    return lines


def _setting_value(value: Any) -> str:
    """A setting's value as YAML would write it; `-` when dbt's default decides."""
    if value is None:
        return "-"
    if isinstance(value, str):
        return value
    return json.dumps(value, default=str, sort_keys=True)


Segment = tuple[str, str | None]
"""A piece of a line and its rich style (None: unstyled)."""
# What rich's `Text` removes from text (rich.control.strip_control_codes): bell, backspace,
# vertical tab, form feed, carriage return.
_RICH_STRIPPED = dict.fromkeys((7, 8, 11, 12, 13))
# Variables that make rich treat a stream as a terminal (or a notebook) although it is not one.
_RICH_TERMINAL_VARIABLES = ("FORCE_COLOR", "TTY_COMPATIBLE", "TTY_INTERACTIVE", "JUPYTER_COLUMNS")


def print_outcome(record: RunRecord) -> None:
    """Print the summary of a finished run on stderr: one line, or two where a terminal is narrow.

    On a terminal the run is named by the last 8 characters of its id (what `dot logs` shows and
    accepts); in a file by its whole id, on one line, for scripts and grep.
    """
    plan = record.plan
    where = ""
    if plan is not None and plan.isolated is not None:
        where = f" into {plan.isolated.profile.schema_key} {plan.isolated.profile.schema_after}"
    seconds = record.duration_seconds or 0.0
    style = "green" if record.exit_code in (0, 10) else "red"
    head: list[Segment] = [
        (record.status.value, style),
        (
            f": {' '.join(['dbt', *record.request.command, str(record.request.spec)]).strip()}"
            f"{where} in {seconds:.1f}s (exit {int(record.exit_code)})",
            None,
        ),
    ]
    terminal = _stderr_is_terminal()
    rest: list[str] = []
    if record.node_statuses:
        rest.append(node_tally(record.node_statuses))
    if record.run_id:
        rest.append(f"details: dot logs {record.run_id[-8:] if terminal else record.run_id}")
    one_line = sum(len(text) for text, _ in head) + sum(len(f"; {part}") for part in rest)
    lines: list[list[Segment]]
    if terminal and rest and one_line > shutil.get_terminal_size().columns:
        lines = [head, [("  " + "; ".join(rest), None)]]
    else:
        lines = [head + [(f"; {part}", None) for part in rest]]
    if record.error:
        lines.append([(f"dbt error: {record.error}", None)])
    if record.suggestion and record.exit_code not in (0, 10):
        kind = f" ({record.error_class})" if record.error_class else ""
        lines.append([(f"hint{kind}: {record.suggestion}", None)])
    _print_stderr(lines)


def node_tally(statuses: Sequence[str]) -> str:
    """`38 nodes: 35 passed, 1 failed, 1 warned, 1 skipped` from dbt's node result statuses."""
    lowered = [status.lower() for status in statuses]
    failed = sum(status in _FAILED_STATUSES for status in lowered)
    warned = lowered.count("warn")
    skipped = lowered.count("skipped")
    counts = (
        (len(lowered) - failed - warned - skipped, "passed"),
        (failed, "failed"),
        (warned, "warned"),
        (skipped, "skipped"),
    )
    parts = [f"{n} {word}" for n, word in counts if n]
    return f"{len(lowered)} node{'' if len(lowered) == 1 else 's'}: {', '.join(parts)}"


_FAILED_STATUSES = frozenset({"error", "fail", "runtime error"})


def _print_stderr(lines: list[list[Segment]]) -> None:
    """Print lines of styled text on stderr, as rich would.

    Where rich would print plain text anyway (stderr is no terminal, and nothing forces one),
    the text is written directly: importing rich costs more than a short run's whole summary
    (the end of every cron and webhook run).
    """
    stream = sys.stderr
    if _stderr_is_terminal():
        from rich.text import Text

        console = _console(stderr=True)
        for line in lines:
            console.print(Text.assemble(*((text, style or "") for text, style in line)))
        return
    for line in lines:
        text = "".join(text for text, _ in line).translate(_RICH_STRIPPED).expandtabs(8)
        stream.write(text + "\n")
    stream.flush()


def _stderr_is_terminal() -> bool:
    # as rich decides: a terminal, or a variable that makes rich treat the stream as one
    return sys.stderr.isatty() or any(name in os.environ for name in _RICH_TERMINAL_VARIABLES)


def print_runtimes(rows: list[dict[str, Any]]) -> None:
    """Print the installed runtimes, the default (marked `*`) first, one block each."""
    from rich.text import Text

    out = _console()
    ordered = sorted(rows, key=lambda row: (not row["default"], row["name"]))
    width = max((len(row["name"]) for row in rows), default=0) + 2
    for row in ordered:
        name = row["name"] + (" *" if row["default"] else "")
        mode = {True: "parallel", False: "serial", None: "?"}[row["parallel"]]
        status = Text("ok", style="green") if row["available"] else Text("unavailable", style="red")
        used = f"  environments: {', '.join(row['environments'])}" if row["environments"] else ""
        out.print(
            Text(f"{name:<{width}}", style="bold")
            + Text(f"{row['version'] or '-'}  {mode}  ")
            + status
            + Text(used)
        )
        if row["detail"]:
            out.print(Text(f"{'':<{width}}{row['detail']}"))
    out.print(
        Text("* the default here; choose with --runtime or `runtime:` in dot_environments.yml")
    )
