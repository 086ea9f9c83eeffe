"""The parsers of `builds` and `clean`, and their dispatch.

Only argparse is imported here (the module is loaded for `dot --help`); `cli/builds.py` is
imported when one of the commands runs.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from datum_dot.cli.durations import age_type

BUILD_COMMANDS = {
    "builds": "isolated builds on disk: commit, refs, environments, size, last use, schemas",
    "clean": "remove old isolated builds (a dry run unless --yes); --drop-schemas drops schemas",
}

P = TypeVar("P", bound=argparse.ArgumentParser)
AddOptions = Callable[[argparse.ArgumentParser], None]


def add_build_parsers(sub: argparse._SubParsersAction[P], *, common: AddOptions) -> None:
    """Add `builds` and `clean` to the top-level sub-parsers."""
    builds = sub.add_parser(
        "builds",
        help=BUILD_COMMANDS["builds"],
        description="List the isolated builds in .dot/build: short and full hash, the branches "
        "and tags pointing at the commit, the environments built and their schemas, size on "
        "disk, when each was last used and how its last run ended. Broken builds (worktree "
        "folder gone, commit no longer in the repository) are flagged.",
        epilog="examples: %(prog)s | %(prog)s --json",
    )
    builds.add_argument("--json", action="store_true", help="print the builds as JSON")
    builds.add_argument("--project-dir", type=Path, help="the dbt project (default: search up)")
    common(builds)
    clean = sub.add_parser(
        "clean",
        help=BUILD_COMMANDS["clean"],
        description="Remove isolated builds: the worktree and the build folder (no link is "
        "ever followed), then package cache entries no remaining build uses. Without --yes it "
        "only shows what it would remove and the space freed. Builds in use by a running job, "
        "and builds a schedule builds or defers to, are kept unless --force. Anything under "
        ".dot/build that dot cannot prove it made is left alone, even with --force. --keep "
        "and --older-than each protect builds on their own: together, a build goes when it is "
        "outside the newest N and older than AGE.",
        epilog="examples: %(prog)s --older-than 14d --keep 5 | %(prog)s 1a2b3c4d --yes | "
        "%(prog)s --older-than 14d --drop-schemas --yes | %(prog)s --all --yes",
    )
    clean.add_argument(
        "hashes", nargs="*", metavar="HASH", help="builds to remove, by short or full hash"
    )
    clean.add_argument(
        "--older-than",
        type=age_type("--older-than"),
        metavar="AGE",
        help="builds last used more than AGE ago (14d, 12h, 2w)",
    )
    clean.add_argument("--keep", metavar="N", help="keep the N most recently used builds")
    clean.add_argument("--all", action="store_true", help="every build")
    clean.add_argument(
        "--drop-schemas",
        action="store_true",
        help="also drop each build's <schema>_<hash> schemas in the warehouse, through dbt",
    )
    clean.add_argument("-y", "--yes", action="store_true", help="remove (default: a dry run)")
    clean.add_argument(
        "--force",
        action="store_true",
        help="also remove builds in use or needed by a schedule (never what dot did not make)",
    )
    clean.add_argument("--json", action="store_true", help="print the plan or result as JSON")
    clean.add_argument("--project-dir", type=Path, help="the dbt project (default: search up)")
    common(clean)


def run_build_command(args: argparse.Namespace, *, prog: str) -> int:
    """Run `builds` or `clean`; returns the exit code."""
    # lazy: the command's modules load when it runs, not for `dot --help`
    from datum_dot.cli import builds

    if args.command == "builds":
        return builds.run_builds(args, prog=prog)
    return builds.run_clean(args, prog=prog)
