"""The tool's overhead on a plain run: `dot build prod` vs bare `dbt build` with the same settings.

Paired, interleaved runs on the example project (same vars, same target, same partial-parse
state), so drift on the machine hits both sides alike. Target: overhead at most 3% of the bare
run's wall time (median of the paired differences).

Run: .venv/bin/python bench/overhead.py [pairs]
"""

from __future__ import annotations

import json
import subprocess
import sys

from common import BIN, machine, make_repo, median, run


def main() -> None:
    """Print medians and the overhead."""
    pairs = int(sys.argv[1]) if len(sys.argv) > 1 else 7
    repo, env = make_repo()
    plan = json.loads(
        subprocess.run(
            [str(BIN / "dot"), "build", "prod", "--dry-run", "--json"],
            cwd=repo,
            env=env,
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    )
    bare = [str(BIN / "dbt"), *plan["argv"][1:]]
    dot = [str(BIN / "dot"), "build", "prod"]
    run(dot, cwd=repo, env=env)  # warm up: full parse once, then partial parses on both sides
    run(bare, cwd=repo, env=env)
    dot_times, bare_times = [], []
    for i in range(pairs):
        order = [(dot, dot_times), (bare, bare_times)]
        for argv, times in order if i % 2 == 0 else reversed(order):
            times.append(run(argv, cwd=repo, env=env))
    diffs = [d - b for d, b in zip(dot_times, bare_times, strict=True)]
    b = median(bare_times)
    print(f"bare dbt build   median {b:6.2f} s")
    print(f"dot build prod   median {median(dot_times):6.2f} s")
    print(
        f"overhead         median {median(diffs):+6.3f} s = {median(diffs) / b * 100:+.1f}% (pairs={pairs})"
    )
    print(f"bare argv: {' '.join(bare)}")
    print(machine())


if __name__ == "__main__":
    main()
