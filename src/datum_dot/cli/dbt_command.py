"""`dot <dbt command> [spec]`: turn arguments into a RunRequest, execute it, render the result."""

from __future__ import annotations

import argparse
from pathlib import Path

from datum_dot.cli import terminal
from datum_dot.cli.progress import ProgressView


def run_dbt_command(args: argparse.Namespace, passthrough: list[str], *, prog: str) -> int:
    """Run one dbt command for a spec; returns the exit code."""
    command: tuple[str, ...] = (args.command,)
    if getattr(args, "verb", None):
        command = (args.command, args.verb)
    elif getattr(args, "macro", None):
        command = (args.command, args.macro)
    progress = None
    if not args.dry_run:
        # Before the run's modules load (a few tenths of a second, then dbt's seconds): on a
        # terminal the screen says what is happening from the start.
        screen = terminal.configure(command, passthrough)
        progress = ProgressView(live=screen.live, prog=prog)
        progress.status("planning")
    try:
        return _run(args, passthrough, command, prog, progress)
    finally:
        if progress is not None:
            progress.stop()


def _run(
    args: argparse.Namespace,
    passthrough: list[str],
    command: tuple[str, ...],
    prog: str,
    progress: ProgressView | None,
) -> int:
    # lazy: planning, execution and rendering load after the status line is up
    from datum_dot.cli import render
    from datum_dot.cli.preflightrun import check_before_run
    from datum_dot.cli.projectarg import apply_project
    from datum_dot.cli.runobserver import CliObserver, reader_may_be_gone
    from datum_dot.config.variables import parse_cli_vars
    from datum_dot.execute import execute
    from datum_dot.runs.planner import find_project_dir
    from datum_dot.runs.run import RunRequest
    from datum_dot.runs.spec import parse_defer_spec, parse_spec, parse_state_from_spec

    apply_project(args, prog=prog)
    spec = parse_spec(args.spec)
    defer = parse_defer_spec(args.defer) if args.defer is not None else None
    project_dir = find_project_dir(args.project_dir or Path.cwd())
    if not args.dry_run and not getattr(args, "no_preflight", True):
        if progress is not None:
            progress.status("pre-flight checks")
        check_before_run(project_dir, spec, passthrough, prog=prog, debug=args.debug)
    request = RunRequest(
        command=command,
        spec=spec,
        project_dir=project_dir,
        dbt_args=tuple(passthrough),
        cli_vars=parse_cli_vars(args.vars) if args.vars is not None else {},
        defer=defer,
        state_source=args.state_source,
        state_from=parse_state_from_spec(args.state_from) if args.state_from else None,
        max_state_age=args.max_state_age,
        dry_run=args.dry_run,
        deps=not args.no_deps,
        allow_unisolated=args.allow_unisolated,
        timeout=args.timeout,
        runtime=args.runtime,
        retries=args.retries,
        retry_delay=args.retry_delay,
        cache=not args.no_cache,
        artifacts_to_db=args.artifacts_to_db,
    )
    debug = bool(getattr(args, "debug", False))
    observer = CliObserver(
        prog=prog, debug=debug, prompts=not args.disable_prompts, progress=progress
    )
    record = execute(request, observer=observer)
    if progress is not None:
        progress.stop()  # before the summary: the bar must not sit under it
    if record.plan is not None and request.dry_run:
        if args.json:
            render.print_json(record.plan.to_json())
        else:
            render.print_plan(record.plan, debug=debug)
        return int(record.exit_code)
    with reader_may_be_gone():
        render.print_outcome(record)
    return int(record.exit_code)
