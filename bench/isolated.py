"""Isolated builds: `dot build prod@<ref>` first run and later runs vs a bare `dbt build`.

First run: no `.dot/` (worktree created, packages installed, full parse). Later runs reuse the
worktree, the installed packages and the partial-parse state. Targets: later runs within 10% of
the bare build, first run within 25%. Medians of N rounds; each round runs every variant once,
in turn, so drift on the machine hits them alike.

An isolated build's first run must parse the project in full: its schema is new, and dbt
discards saved parse state when the target's connection settings change. So the bare build is
timed twice: as it usually runs (partial parse, the project parsed before) and cold
(`--no-partial-parse`), which is what a bare build pays after any profile change.

Run: .venv/bin/python bench/isolated.py [N]
"""

from __future__ import annotations

import shutil
import sys

from common import BIN, machine, make_repo, median, run


def main() -> None:
    """Print medians and ratios."""
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 5
    repo, env = make_repo()
    bare = [str(BIN / "dbt"), "build", "--target", "prod"]
    bare += ["--vars", '{"feature_flag":true,"sample_rate":100}']
    cold = [*bare, "--no-partial-parse"]
    dot = [str(BIN / "dot"), "build", "prod@main", "--disable-prompts"]
    run(bare, cwd=repo, env=env)
    times: dict[str, list[float]] = {"bare": [], "cold": [], "first": [], "later": []}
    for _ in range(n):
        times["bare"].append(run(bare, cwd=repo, env=env))
        times["cold"].append(run(cold, cwd=repo, env=env))
        run(bare, cwd=repo, env=env)  # leave the checkout's partial-parse state warm again
        shutil.rmtree(repo / ".dot", ignore_errors=True)
        run(["git", "worktree", "prune"], cwd=repo, env=env)
        times["first"].append(run(dot, cwd=repo, env=env))
        times["later"].append(run(dot, cwd=repo, env=env))
    b, c = median(times["bare"]), median(times["cold"])
    first, later = median(times["first"]), median(times["later"])
    print(f"bare dbt build (partial parse)       median {b:6.2f} s")
    print(f"bare dbt build (--no-partial-parse)  median {c:6.2f} s")
    print(
        f"dot build prod@main, first run       median {first:6.2f} s"
        f"  ({first / b * 100 - 100:+.0f}% vs bare, {first / c * 100 - 100:+.0f}% vs cold bare)"
    )
    print(
        f"dot build prod@main, later runs      median {later:6.2f} s  ({later / b * 100 - 100:+.0f}%)"
    )
    print(f"n={n}; {machine()}")


if __name__ == "__main__":
    main()
