"""The tool's overhead on a plain run: `dot build prod` vs bare `dbt build` with the same settings.

Paired, interleaved runs on the example project (same vars, same target, same partial-parse
state), so drift on the machine hits both sides alike. Target: overhead at most 3% of the bare
run's wall time (median of the paired differences). The CPU time of each process (user + system)
is reported too: on a shared machine it varies less than the wall time.

Run: .venv/bin/python bench/overhead.py [pairs]
"""

from __future__ import annotations

import json
import subprocess
import sys

from common import BIN, machine, make_repo, median, run, timed


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
    dot_times: list[tuple[float, float]] = []
    bare_times: list[tuple[float, float]] = []
    for i in range(pairs):
        order = [(dot, dot_times), (bare, bare_times)]
        for argv, times in order if i % 2 == 0 else reversed(order):
            times.append(timed(argv, cwd=repo, env=env))
    for label, index in (("wall", 0), ("CPU ", 1)):
        diffs = sorted(d[index] - x[index] for d, x in zip(dot_times, bare_times, strict=True))
        base = median([x[index] for x in bare_times])
        low, high = diffs[len(diffs) // 4], diffs[(3 * len(diffs)) // 4]
        print(
            f"{label}: bare median {base:5.2f} s, dot median {median([d[index] for d in dot_times]):5.2f} s;"
            f" overhead median {median(diffs):+.3f} s = {median(diffs) / base * 100:+.1f}%"
            f" (middle half of the pairs {low:+.3f} .. {high:+.3f} s; pairs={pairs})"
        )
    print(f"bare argv: {' '.join(bare)}")
    print(machine())


if __name__ == "__main__":
    main()
