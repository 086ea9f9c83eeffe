"""The options that choose a run's deferred and compared state, for `dot build` and schedules."""

from __future__ import annotations

import argparse

from datum_dot.cli.durations import seconds_type


def add_state_options(cmd: argparse.ArgumentParser) -> None:
    """Add `--defer`, `--state-source`, `--state-from` and `--max-state-age` to a command."""
    cmd.add_argument(
        "--defer",
        metavar="ENV[@REF]",
        help="defer to the live environment (prod: its last successful run) or a build (prod@main)",
    )
    cmd.add_argument(
        "--state-source",
        choices=("history", "cloud"),
        default="history",
        help="where --defer ENV reads the live state: the run history, or its dbt Cloud job",
    )
    cmd.add_argument(
        "--state-from",
        metavar="ENV@REF",
        help="compare against a ref's parse (state:modified) without building it",
    )
    cmd.add_argument(
        "--max-state-age",
        type=seconds_type("--max-state-age", zero=False),
        metavar="DURATION",
        help="refuse deferred state older than this (12h, 2d)",
    )
