"""`dot diff LEFT RIGHT`: what changed between two builds, from the manifest down to the rows.

```
dot diff prod@v1.0 prod@main                       every model both builds have
dot diff prod@v1.0 prod@main -s customer_orders+ --key customer_id
dot diff prod prod@HEAD --build                    the live schema against the working commit
dot diff prod@v1.0 prod@main --json | --markdown
dot diff prod@v1.0 prod@main --fail-on removed,changed-rows
```
"""

from __future__ import annotations

import argparse
import contextlib
import sys
from pathlib import Path
from typing import Any

from datum_dot.errors import UsageError

DIFF_HELP = "what changed between two builds: manifest, columns, row counts and rows"


def run_diff_command(args: argparse.Namespace, *, prog: str) -> int:
    """`dot diff ...`: plan both sides, build what is missing (`--build`), diff, render."""
    # lazy: planning, the history and dbt load only when a diff runs
    from datum_dot.diff.compare import DiffRequest, exit_code, parse_fail_on, run_diff
    from datum_dot.diff.sides import plan_sides, require_built
    from datum_dot.history import RunStore
    from datum_dot.history.states import HistoryStates
    from datum_dot.home.settings import datum_home
    from datum_dot.runs.planner import find_project_dir
    from datum_dot.runs.spec import parse_spec

    if args.sample < 0:
        raise UsageError(f"--sample {args.sample} is negative", "pass --sample 0 or more")
    if args.json and args.markdown:
        raise UsageError("--json and --markdown both say how to print", "keep one")
    request = DiffRequest(
        select=tuple(args.select or ()),
        exclude=tuple(args.exclude or ()),
        key=tuple(k.strip() for k in (args.key or "").split(",") if k.strip()),
        rows=not args.no_rows,
        sample=args.sample,
        fail_on=parse_fail_on(args.fail_on) if args.fail_on else frozenset(),
    )
    specs = (parse_spec(args.left), parse_spec(args.right))
    project_dir = find_project_dir(args.project_dir or Path.cwd())
    store = RunStore(datum_home())
    states = HistoryStates(store)
    left, right = plan_sides(*specs, project_dir, states=states)
    missing = [side for side in (left, right) if not side.built]
    if missing and args.build:
        for side in missing:
            code = _build(side.spec, project_dir, prog=prog, debug=bool(args.debug))
            if code != 0:
                return code
        left, right = plan_sides(*specs, project_dir, states=states)
    for side in (left, right):
        require_built(side, prog=prog, other=f"{prog} diff {args.left} {args.right} --build")
    result = run_diff(left, right, request, store=store)
    # lazy: rich loads only for what is shown
    from datum_dot.cli import diffview

    if args.json:
        from datum_dot.cli.render import print_json

        print_json(result.to_json())
    elif args.markdown:
        diffview.print_markdown(result)
    else:
        diffview.print_summary(result)
    return int(exit_code(result))


def _build(spec: object, project_dir: Path, *, prog: str, debug: bool) -> int:
    """Build a missing side through the one run path, as `dot build SPEC` would."""
    from datum_dot.cli import render
    from datum_dot.cli.runobserver import CliObserver
    from datum_dot.execute import execute
    from datum_dot.runs.run import RunRequest
    from datum_dot.runs.spec import Spec

    assert isinstance(spec, Spec)  # noqa: S101 - a planned side's spec
    render.warn(f"{spec or '(default)'} is not built: building it ({prog} build {spec})")
    # stdout is the diff's (its JSON, its Markdown): the build's output goes to stderr
    with contextlib.redirect_stdout(sys.stderr):
        record = execute(
            RunRequest(command=("build",), spec=spec, project_dir=project_dir),
            observer=CliObserver(prog=prog, debug=debug, prompts=False, progress=None),
        )
        render.print_outcome(record)
    return int(record.exit_code)


def add_diff_parser(sub: argparse._SubParsersAction[Any]) -> None:
    """The `diff` sub-command's arguments."""
    cmd = sub.add_parser(
        "diff",
        help=DIFF_HELP,
        description="Compare two builds: nodes added, removed and modified (manifests), columns "
        "and row counts (the warehouse's catalog), and rows (joined on a key, in the "
        "warehouse). A side is env@ref (an isolated build) or env (the live schema).",
        epilog="examples: %(prog)s prod@v1.0 prod@main | %(prog)s prod@v1.0 prod@main -s "
        "customer_orders+ --key customer_id | %(prog)s prod prod@HEAD --build | "
        "%(prog)s prod@v1.0 prod@main --fail-on removed,changed-rows",
    )
    cmd.add_argument("left", metavar="LEFT", help="the side compared from: env@ref or env")
    cmd.add_argument("right", metavar="RIGHT", help="the side compared to: env@ref or env")
    cmd.add_argument("-s", "--select", action="append", metavar="SELECTOR",
                     help="only these nodes (names, tag:, path:, +, @; as dbt's -s)")  # fmt: skip
    cmd.add_argument("--exclude", action="append", metavar="SELECTOR",
                     help="leave these nodes out (same syntax as -s)")  # fmt: skip
    cmd.add_argument("--key", help="the key columns to join rows on (comma-separated)")
    cmd.add_argument("--no-rows", action="store_true", help="skip the row comparison")
    cmd.add_argument("--sample", type=int, default=5, metavar="N",
                     help="example rows of each kind (default 5)")  # fmt: skip
    cmd.add_argument("--fail-on", metavar="CATEGORIES",
                     help="exit 11 when one occurs: added, removed, modified, columns, row-count, "
                     "changed-rows, any (comma-separated)")  # fmt: skip
    cmd.add_argument("--build", action="store_true", help="build a side that is not built")
    cmd.add_argument("--json", action="store_true", help="print the diff as JSON")
    cmd.add_argument("--markdown", action="store_true", help="print a pull-request comment")
    cmd.add_argument("--project-dir", type=Path, help="the dbt project (default: search up)")
