"""Isolated builds: `dot build prod@<ref>` first run and later runs vs a bare `dbt build`.

First run: no `.dot/` (worktree created, packages installed, full parse). Later runs reuse the
worktree, the installed packages and the partial-parse state. Targets: later runs within 10% of
the bare build, first run within 25%. Medians of N runs each.

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
    bare = [
        str(BIN / "dbt"),
        "build",
        "--target",
        "prod",
        "--vars",
        '{"feature_flag":true,"sample_rate":100}',
    ]
    dot = [str(BIN / "dot"), "build", "prod@main", "--disable-prompts"]
    run(bare, cwd=repo, env=env)
    bare_times = [run(bare, cwd=repo, env=env) for _ in range(n)]
    first, later = [], []
    for _ in range(n):
        shutil.rmtree(repo / ".dot", ignore_errors=True)
        run(
            [str(BIN / "git"), "worktree", "prune"]
            if (BIN / "git").exists()
            else ["git", "worktree", "prune"],
            cwd=repo,
            env=env,
        )
        first.append(run(dot, cwd=repo, env=env))
    later = [run(dot, cwd=repo, env=env) for _ in range(n)]
    b = median(bare_times)
    print(f"bare dbt build (partial parse)   median {b:6.2f} s")
    print(
        f"dot build prod@main, first run   median {median(first):6.2f} s  ({median(first) / b * 100 - 100:+.0f}%)"
    )
    print(
        f"dot build prod@main, later runs  median {median(later):6.2f} s  ({median(later) / b * 100 - 100:+.0f}%)"
    )
    print(f"n={n}; {machine()}")


if __name__ == "__main__":
    main()
