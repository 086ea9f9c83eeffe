"""`dot --help` wall time (and `dbt --help` for comparison): median of N runs.

Run: .venv/bin/python bench/help_time.py [N]
"""

from __future__ import annotations

import os
import sys

from common import BIN, machine, median, run


def main() -> None:
    """Print the medians."""
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 21
    env = {**os.environ, "DO_NOT_TRACK": "1"}
    cwd = BIN
    for argv in (
        [str(BIN / "dot"), "--help"],
        [str(BIN / "dot"), "build", "--help"],
        [str(BIN / "dbt"), "--help"],
    ):
        times = [run(argv, cwd=cwd, env=env) for _ in range(n)]
        print(
            f"{' '.join(a.rsplit('/', 1)[-1] for a in argv):<20} median {median(times) * 1000:7.1f} ms  (n={n})"
        )
    print(machine())


if __name__ == "__main__":
    main()
