"""What `init`, `validate` and `config` show a person: ✓/✗/! lines, settings with their sources.

Paths and messages are wrapped in `Text`, never read as rich markup. Where the output stream
cannot encode ✓ and ✗ (an ASCII locale), plain `ok`/`FAIL` marks are used instead.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING

from datum_dot.cli.console import make_console
from datum_dot.preflight.model import Report, Status

if TYPE_CHECKING:
    from rich.console import Console
    from rich.text import Text

    from datum_dot.home.effective import Setting
    from datum_dot.home.registration import InitOutcome
    from datum_dot.preflight.model import AutoFix

_MARKS = {Status.OK: "✓", Status.FAIL: "✗", Status.WARN: "!", Status.SKIP: "-"}
_ASCII_MARKS = {Status.OK: "ok", Status.FAIL: "FAIL", Status.WARN: "!", Status.SKIP: "-"}
_STYLES = {Status.OK: "green", Status.FAIL: "red", Status.WARN: "yellow", Status.SKIP: "dim"}


def console() -> Console:
    """A console on stdout that never reads text as markup or highlights it."""
    return make_console(highlight=False, soft_wrap=True)


def mark(status: Status) -> Text:
    """✓, ✗, ! or - in its colour."""
    from rich.text import Text

    encoding = getattr(sys.stdout, "encoding", None) or "ascii"
    try:
        "✓✗".encode(encoding)
        symbol = _MARKS[status]
    except (UnicodeEncodeError, LookupError):
        symbol = _ASCII_MARKS[status]
    return Text(symbol, style=_STYLES[status])


def print_report(report: Report) -> None:
    """One line per check, each failure or warning followed by its fix, then a summary."""
    from rich.text import Text

    out = console()
    width = max(len(check.name) for check in report.checks)
    for check in report.checks:
        out.print(mark(check.status) + Text(f" {check.name:<{width}}  ") + Text(check.detail))
        if check.fix and check.status in (Status.FAIL, Status.WARN):
            out.print(Text(f"  {'':<{width}}  fix: ") + Text(check.fix))
    counts = {status: sum(c.status is status for c in report.checks) for status in Status}
    out.print(
        Text(
            f"\n{counts[Status.OK]} passed, {counts[Status.FAIL]} failed, "
            f"{plural(counts[Status.WARN], 'warning')}, {counts[Status.SKIP]} skipped"
        )
    )


def plural(count: int, noun: str) -> str:
    """`1 warning`, `2 warnings`, `0 warnings`."""
    return f"{count} {noun}{'' if count == 1 else 's'}"


def print_fixes(fixes: Sequence[AutoFix], *, heading: str) -> None:
    """The repairs `--auto-fix` makes (or made)."""
    from rich.text import Text

    out = console()
    out.print(Text(heading))
    for fix in fixes:
        out.print(Text(f"  - {fix.description}"))


def print_init(outcome: InitOutcome, prog: str) -> None:
    """What `dot init` did, the registration, and what to do next."""
    from rich.text import Text

    out = console()
    if not outcome.changed:
        message = (
            f" already initialized: project '{outcome.project_id}' is registered, its key pair "
            "and the webhook token exist; nothing changed"
        )
        out.print(mark(Status.OK) + Text(message))
    for change in outcome.changes:
        out.print(mark(Status.OK) + Text(f" {change}"))
    for warning in outcome.warnings:
        out.print(mark(Status.WARN) + Text(f" {warning}"))
    entry = outcome.entry
    rows = [
        ("project", outcome.project_id),
        ("path", str(entry.path)),
        ("profiles", str(entry.profiles_dir / "profiles.yml")),
        ("target", entry.target),
        ("dbt", entry.dbt_version or "(not installed)"),
        ("runtime", entry.runtime),
        ("public key", str(outcome.key_files.public)),
        ("webhook token", f"{outcome.token_path} (mode 0600; not shown)"),
    ]
    width = max(len(key) for key, _ in rows)
    out.print()
    for key, value in rows:
        out.print(Text(f"{key:<{width}}  ", style="bold") + Text(value))
    if not outcome.changed:
        return
    out.print(Text("\nnext steps:"))
    steps = [
        (f"{prog} validate", "check everything a run needs (--connection reaches the warehouse)"),
        (f"{prog} build", "build the default environment (datum spelling: datum dbt run)"),
        (f"cat {outcome.key_files.public}", "the public key, to register where it is needed"),
    ]
    for number, (command, why) in enumerate(steps, start=1):
        out.print(Text(f"  {number}. {command}  ") + Text(f"# {why}", style="dim"))


def print_settings(settings: Sequence[Setting]) -> None:
    """Each setting, its value and where it came from."""
    from rich.text import Text

    out = console()
    width = max(len(s.key) for s in settings)
    values = [s.value if s.value is not None else "(none)" for s in settings]
    value_width = min(max(len(v) for v in values), 60)
    for setting, value in zip(settings, values, strict=True):
        source = setting.source.value + (f" ({setting.detail})" if setting.detail else "")
        out.print(
            Text(f"{setting.key:<{width}}  ", style="bold")
            + Text(f"{value:<{value_width}}  ")
            + Text(source, style="dim")
        )
