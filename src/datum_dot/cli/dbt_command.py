"""`dot <dbt command> [spec]`: turn arguments into a RunRequest, execute it, render the result."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from datum_dot.cli import render
from datum_dot.cli.progress import ProgressView
from datum_dot.config.variables import parse_cli_vars
from datum_dot.execute import Observer, execute
from datum_dot.runs.plan import BuildPlan
from datum_dot.runs.planner import find_project_dir
from datum_dot.runs.run import RunRequest
from datum_dot.runs.spec import parse_defer_spec, parse_spec


def run_dbt_command(args: argparse.Namespace, passthrough: list[str], *, prog: str) -> int:
    """Run one dbt command for a spec; returns the exit code."""
    command: tuple[str, ...] = (args.command,)
    if getattr(args, "verb", None):
        command = (args.command, args.verb)
    elif getattr(args, "macro", None):
        command = (args.command, args.macro)
    spec = parse_spec(args.spec)
    defer = parse_defer_spec(args.defer) if args.defer is not None else None
    project_dir = find_project_dir(args.project_dir or Path.cwd())
    request = RunRequest(
        command=command,
        spec=spec,
        project_dir=project_dir,
        dbt_args=tuple(passthrough),
        cli_vars=parse_cli_vars(args.vars) if args.vars is not None else {},
        defer=defer,
        dry_run=args.dry_run,
        deps=not args.no_deps,
        allow_unisolated=args.allow_unisolated,
        timeout=args.timeout,
        runtime=args.runtime,
        retries=args.retries,
        retry_delay=args.retry_delay,
        cache=not args.no_cache,
    )
    debug = bool(getattr(args, "debug", False))
    progress = None if request.dry_run else ProgressView.for_terminal()
    observer = CliObserver(
        prog=prog, debug=debug, prompts=not args.disable_prompts, progress=progress
    )
    try:
        record = execute(request, observer=observer)
    finally:
        if progress is not None:
            progress.stop()
    if record.plan is not None and request.dry_run:
        if args.json:
            render.print_json(record.plan.to_json())
        else:
            render.print_plan(record.plan, debug=debug)
        return int(record.exit_code)
    render.print_outcome(record)
    return int(record.exit_code)


def _may_prompt() -> bool:
    ci = os.environ.get("CI", "").lower() in {"1", "true", "yes"}
    # The question goes to stderr: asked into a log file (`dot build ... 2>build.log` typed at a
    # terminal) nobody would see it, and the run would wait for an answer for ever.
    return sys.stdin.isatty() and sys.stderr.isatty() and not ci


def ask_startup_questions(project_dir: Path) -> None:
    """Offer each pending start-up suggestion; remember a 'no'."""
    # lazy: git is asked for suggestions only on an interactive terminal
    from datum_dot.runs import prompts

    suggestions, warnings = prompts.pending(project_dir)
    for warning in warnings:
        render.warn(warning)
    for suggestion in suggestions:
        print(
            f"{suggestion.question} ({suggestion.why}) [Y/n] ", end="", file=sys.stderr, flush=True
        )
        raw = sys.stdin.readline()
        if not raw:  # end of input (Ctrl-D): change nothing, and ask again next time
            print("", file=sys.stderr)
            return
        answer = raw.strip().lower()
        if answer in {"", "y", "yes"}:
            prompts.apply(suggestion)
            print(f"updated {suggestion.path}", file=sys.stderr)
        else:
            prompts.decline(project_dir, suggestion.key)
            print("not asking again for this project", file=sys.stderr)


class CliObserver(Observer):
    """Shows preparation steps and lock waits on stderr, and asks the start-up questions."""

    def __init__(
        self, *, prog: str, debug: bool, prompts: bool, progress: ProgressView | None = None
    ) -> None:
        self.prog = prog
        self.debug = debug
        self.prompts = prompts
        self.progress = progress

    def planned(self, plan: BuildPlan) -> None:
        """Show warnings (and debug notes) once the plan is valid, then the start-up questions."""
        for warning in plan.warnings:
            render.warn(warning)
        if self.debug:
            for note in plan.notes:
                print(f"debug: {note}", file=sys.stderr)
        if plan.isolated is not None and self.prompts and _may_prompt():
            ask_startup_questions(plan.source_project_dir)
        if self.progress is not None:
            self.progress.start()  # after the questions: the bar must not hide them

    def event(self, name: str, data: Mapping[str, Any]) -> None:
        """Feed dbt's events to the progress display."""
        if self.progress is not None:
            self.progress.event(name, data)

    def history_warning(self, message: str) -> None:
        """Say, once, what the run history could not save."""
        render.warn(message)

    def waiting(self, message: str) -> None:
        """Say why the run is not starting yet."""
        print(f"{self.prog}: {message}", file=sys.stderr, flush=True)

    def step(self, message: str) -> None:
        """Say what is being prepared."""
        print(f"{self.prog}: {message}", file=sys.stderr, flush=True)
