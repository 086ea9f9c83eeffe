"""A dbt command's own pre-flight: the cheap checks of `dot validate`, before the run starts."""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from datum_dot.runs.spec import Spec

SKIPPED_COMMANDS = frozenset({"deps", "debug"})
"""dbt commands without a pre-flight: `deps` needs no profile, `debug` is a check itself."""


def takes_preflight(command: str) -> bool:
    """Whether runs of this dbt command make the pre-flight checks (and take --no-preflight)."""
    return command not in SKIPPED_COMMANDS


def check_before_run(
    project_dir: Path, spec: Spec, dbt_args: Sequence[str], *, prog: str, debug: bool
) -> None:
    """Make the cheap checks for a working-tree run; the first failure stops it.

    An isolated build (`prod@main`) reads its config files from the commit, where the planner
    checks them, so only working-tree runs are checked here.

    Raises:
        PreflightError: A check failed (exit 20), with `dot validate`'s message and fix.
    """
    if spec.is_isolated:
        return
    # lazy: loaded once the status line is up, as the rest of the run is
    from datum_dot.home.settings import datum_home
    from datum_dot.preflight.quick import raise_for_failure, run_cheap_preflight

    started = time.perf_counter()
    report = run_cheap_preflight(
        project_dir,
        home=datum_home(),
        environ=os.environ,
        env_name=spec.env,
        target=_value_of(dbt_args, "--target", "-t"),
        profiles_dir=_path(_value_of(dbt_args, "--profiles-dir")),
    )
    if debug:
        took = (time.perf_counter() - started) * 1000
        print(f"pre-flight: {len(report.checks)} checks in {took:.0f} ms", file=sys.stderr)
    raise_for_failure(report, prog=prog)


def _value_of(words: Sequence[str], *names: str) -> str | None:
    """The last value given to one of `names` (`--target x` or `--target=x`), as dbt reads it."""
    found = None
    for i, word in enumerate(words):
        name, _, value = word.partition("=")
        if name in names:
            found = value if value else (words[i + 1] if i + 1 < len(words) else None)
    return found


def _path(text: str | None) -> Path | None:
    return None if text is None else Path(text).expanduser()
