"""`dot builds` and `dot clean`: list isolated builds, and remove old ones.

```
dot builds [--json]
dot clean [HASH ...] [--older-than AGE] [--keep N] [--all] [--drop-schemas] [--yes] [--force]
```
"""

from __future__ import annotations

import argparse
from datetime import UTC, datetime
from pathlib import Path

from datum_dot.builds.cleanup import CleanResult, apply_clean, plan_clean
from datum_dot.builds.protection import guards
from datum_dot.builds.selection import Selection
from datum_dot.builds.survey import Project, open_project, survey_builds
from datum_dot.errors import CleanupError, ExitCode, UsageError
from datum_dot.home.settings import datum_home
from datum_dot.runs.planner import find_project_dir

_MAX_KEEP = 1_000_000


def run_builds(args: argparse.Namespace, *, prog: str) -> int:
    """`dot builds`: read the builds, their refs, history and guards; print them."""
    # lazy: rich loads only for output drawn on a terminal
    from datum_dot.cli import buildview

    project = _project(args.project_dir)
    home = datum_home()
    survey = survey_builds(project, home=home)
    guard, warnings = guards(survey.builds, project, home=home)
    if args.json:
        buildview.print_builds_json(project, survey, guard, warnings)
    else:
        buildview.print_builds(project, survey, guard, prog=prog, now=datetime.now(UTC))
    for warning in warnings:
        buildview.warn(warning)
    return int(ExitCode.WARNINGS if warnings or survey.foreign else ExitCode.OK)


def run_clean(args: argparse.Namespace, *, prog: str) -> int:
    """`dot clean`: plan what to remove, show it, and with --yes remove it."""
    # lazy: rich loads only for output drawn on a terminal
    from datum_dot.cli import buildview
    from datum_dot.cli.logs import parse_age

    selection = Selection(
        hashes=tuple(args.hashes),
        older_than=parse_age(args.older_than, "--older-than") if args.older_than else None,
        keep=_keep(args.keep) if args.keep is not None else None,
        everything=args.all,
    )
    project = _project(args.project_dir)
    plan = plan_clean(
        project,
        selection,
        home=datum_home(),
        now=datetime.now(UTC),
        drop_schemas=args.drop_schemas,
        force=args.force,
    )
    if not args.yes:
        if args.json:
            buildview.print_plan_json(plan)
        else:
            buildview.print_plan(plan, now=datetime.now(UTC))
        warnings = [*plan.warnings, *(k.reason for k in plan.kept if k.warning)]
        for warning in plan.warnings:
            buildview.warn(warning)
        return int(ExitCode.WARNINGS if warnings else ExitCode.OK)
    if not args.json:
        buildview.print_plan(plan, now=datetime.now(UTC), dry_run=False)
    result = apply_clean(plan, force=args.force)
    if args.json:
        buildview.print_result_json(result)
    else:
        buildview.print_result(result)
    for warning in dict.fromkeys(result.warnings + plan.warnings):
        buildview.warn(warning)
    _raise_for_failures(result, prog=prog, drop=args.drop_schemas)
    return int(result.exit_code)


def _project(project_dir: Path | None) -> Project:
    return open_project(find_project_dir(project_dir or Path.cwd()))


def _keep(text: str) -> int:
    if not text.strip().lstrip("-").isdigit():
        raise UsageError(
            f"--keep '{text}' is not a whole number",
            "give how many recent builds to keep, for example --keep 5",
        )
    value = int(text)
    if not 0 <= value <= _MAX_KEEP:
        raise UsageError(
            f"--keep must be a whole number from 0 to {_MAX_KEEP}, got {value}",
            "give how many recent builds to keep, for example --keep 5",
        )
    return value


def _raise_for_failures(result: CleanResult, *, prog: str, drop: bool) -> None:
    message = result.failure_message
    if message is None:
        return
    names = " ".join(f.build.short_hash for f in result.failures)
    again = f"{prog} clean {names}{' --drop-schemas' if drop else ''} --yes"
    raise CleanupError(message, f"fix the cause above, then run again: {again}")
