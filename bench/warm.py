"""The warm runner (`dot warm`) against a bare `dbt build` with the same argv (median of N).

Ways, interleaved round by round after one warm-up run of each:
- bare dbt: `dbt <argv>` as a new process, the argv `dot build prod --dry-run --json` reports;
- cold dot: `dot build prod --no-warm` (the normal path, for the overhead on the plain run);
- warm dot: `dot build prod` with a runner up (`dot warm start` beforehand);
- warm isolated: `dot build prod@main` with a runner up (worktree and packages already there);
- cold isolated: `dot build prod@main --no-warm`.

Then, with no runner up: `dot build prod` against `dot build prod --no-warm`, interleaved (what
looking for a runner costs a cold run); the first run that starts a runner (`DOT_WARM=1` with none up: the run
goes the normal way while a runner starts beside it; the runner is stopped after each), and
`dot --help` / `dot --version` with a runner up and without one.
Targets (issue 21): warm <= 0.5x bare, warm isolated <= 0.55x bare, first run <= 1.1x cold dot,
--help and --version under 100 ms either way.

Run: .venv/bin/python bench/warm.py [rounds]
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

from common import BIN, machine, make_repo, median, run


def main() -> None:
    """Print each way's median and its ratio to the bare dbt build."""
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 5
    repo, env = make_repo(commits=1)
    dot = str(BIN / "dot")
    plan = json.loads(
        subprocess.run(
            [dot, "build", "prod", "--dry-run", "--json"],
            cwd=repo, env=env, capture_output=True, text=True, check=True,
        ).stdout
    )  # fmt: skip
    ways = {
        "bare dbt build": [str(BIN / "dbt"), *plan["argv"][1:]],
        "cold dot build prod": [dot, "build", "prod", "--no-warm"],
        "warm dot build prod": [dot, "build", "prod"],
        "warm dot build prod@main": [dot, "build", "prod@main"],
        "cold dot build prod@main": [dot, "build", "prod@main", "--no-warm"],
    }
    run([dot, "warm", "stop"], cwd=repo, env=env)
    run([dot, "warm", "start"], cwd=repo, env=env)
    try:
        for argv in ways.values():
            run(argv, cwd=repo, env=env)  # warm-up: full parses, worktree, packages
        times: dict[str, list[float]] = {name: [] for name in ways}
        for i in range(rounds):
            names = list(ways)
            for name in names[i % len(names) :] + names[: i % len(names)]:
                times[name].append(run(ways[name], cwd=repo, env=env))
        help_up = _quick(repo, env, rounds * 4)
    finally:
        run([dot, "warm", "stop"], cwd=repo, env=env)
    _wait_down(repo, env)
    # What the hand-off costs a run when no runner is up (a connect that fails, config read).
    none_up = {
        "no runner: dot build prod": [dot, "build", "prod"],
        "no runner: --no-warm": ways["cold dot build prod"],
    }
    for name in none_up:
        times[name] = []
    for i in range(rounds):
        for name in list(none_up)[:: 1 if i % 2 == 0 else -1]:
            times[name].append(run(none_up[name], cwd=repo, env=env))
    first = _first_runs(repo, env, rounds)
    help_down = _quick(repo, env, rounds * 4)
    bare = median(times["bare dbt build"])
    for name, values in times.items():
        print(f"{name:<28} median {median(values):6.2f} s  = {median(values) / bare:4.2f}x bare")
    cold = median(times["cold dot build prod"])
    print(
        f"{'first run (starts runner)':<28} median {median(first):6.2f} s  = "
        f"{median(first) / cold:4.2f}x cold dot build prod"
    )
    for label, quick in (("runner up", help_up), ("no runner", help_down)):
        print(
            f"dot --help {median(quick['--help']) * 1000:5.0f} ms, dot --version "
            f"{median(quick['--version']) * 1000:5.0f} ms ({label})"
        )
    print(f"rounds={rounds}; bare argv: {' '.join(ways['bare dbt build'])}")
    print(machine())


def _quick(repo: Path, env: dict[str, str], n: int) -> dict[str, list[float]]:
    out: dict[str, list[float]] = {"--help": [], "--version": []}
    for _ in range(n):
        for flag, values in out.items():
            values.append(run([str(BIN / "dot"), flag], cwd=repo, env=env))
    return out


def _first_runs(repo: Path, env: dict[str, str], rounds: int) -> list[float]:
    """`dot build prod` with no runner up and DOT_WARM=1: it starts one beside the run."""
    dot = str(BIN / "dot")
    times = []
    for _ in range(rounds):
        times.append(run([dot, "build", "prod"], cwd=repo, env={**env, "DOT_WARM": "1"}))
        _wait_up(repo, env)
        run([dot, "warm", "stop"], cwd=repo, env=env)
        _wait_down(repo, env)
    return times


def _wait_up(repo: Path, env: dict[str, str]) -> None:
    for _ in range(600):
        if "warm runner: up" in _version(repo, env):
            return
        time.sleep(0.1)
    raise SystemExit("the runner did not start")


def _wait_down(repo: Path, env: dict[str, str]) -> None:
    for _ in range(600):
        if "warm runner: not running" in _version(repo, env):
            time.sleep(0.5)  # let its process end, so it takes no CPU from the next run
            return
        time.sleep(0.1)
    raise SystemExit("the runner did not stop")


def _version(repo: Path, env: dict[str, str]) -> str:
    return subprocess.run(
        [str(BIN / "dot"), "--version"], cwd=repo, env=env, capture_output=True, text=True,
        check=True,
    ).stdout  # fmt: skip


if __name__ == "__main__":
    main()
