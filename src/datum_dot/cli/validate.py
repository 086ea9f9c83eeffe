"""`dot validate`: run the pre-flight checks, show them, and with `--auto-fix` make safe repairs."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from datum_dot.cli import render, setup_render
from datum_dot.errors import UsageError
from datum_dot.home.settings import datum_home
from datum_dot.preflight import Options, Report, run_preflight
from datum_dot.preflight.fixes import apply_fixes
from datum_dot.runs.planner import find_project_dir


def run_validate(args: argparse.Namespace, *, prog: str) -> int:
    """`dot validate ...`; exit 0 (all pass), 10 (warnings only) or 20 (failures)."""
    if args.json and args.auto_fix and not args.yes:
        raise UsageError(
            "--auto-fix with --json cannot ask before repairing",
            f"add --yes: {prog} validate --auto-fix --yes --json",
        )
    project_dir = find_project_dir(args.project_dir or Path.cwd())
    home = datum_home()
    options = Options(
        env=args.env,
        target=args.target,
        profiles_dir=args.profiles_dir,
        connection=args.connection,
    )
    report = run_preflight(project_dir, home=home, environ=os.environ, options=options)
    applied: list[str] = []
    if args.auto_fix and report.auto_fixes:
        fixes = report.auto_fixes
        if not args.json:
            setup_render.print_report(report)
            setup_render.print_fixes(fixes, heading="\n--auto-fix will:")
        if not (args.yes or _confirmed(len(fixes))):
            print("nothing changed (pass --yes to repair without a question)", file=sys.stderr)
            return int(report.exit_code)
        applied = apply_fixes(fixes, home=home, environ=os.environ)
        if not args.json:
            for done in applied:
                print(f"fixed: {done}")
            print()
        report = run_preflight(project_dir, home=home, environ=os.environ, options=options)
    elif args.auto_fix and not args.json:
        print("--auto-fix: nothing to repair automatically", file=sys.stderr)
    _show(report, applied, as_json=args.json)
    return int(report.exit_code)


def _show(report: Report, applied: list[str], *, as_json: bool) -> None:
    if as_json:
        render.print_json({**report.to_json(), "fixes_applied": applied})
    else:
        setup_render.print_report(report)


def _confirmed(count: int) -> bool:
    if not sys.stdin.isatty():
        return False
    print(f"apply {count} repair(s)? [y/N] ", end="", file=sys.stderr, flush=True)
    return sys.stdin.readline().strip().lower() in {"y", "yes"}
