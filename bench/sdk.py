"""The Python API against the command line: ten `project.build("prod")` in one process, against ten
`dot build prod` processes, on the example project (median wall time per run).

Both go through `execute()`: plan, history record, the same dbt argv and partial-parse state.
Each side is warmed up once first (a full parse; for the API also the import of dbt), so the
medians compare a run in a long-lived Python process with a run in a fresh one. Target: an
in-process run costs well under half a fresh process.

Run: .venv/bin/python bench/sdk.py [runs]
"""

from __future__ import annotations

import os
import sys
import time

from common import BIN, machine, make_repo, median, run

import datum_dot


def main() -> None:
    """Print the medians and their ratio."""
    runs = int(sys.argv[1]) if len(sys.argv) > 1 else 10
    repo, env = make_repo()
    dot = [str(BIN / "dot"), "build", "prod"]
    run(dot, cwd=repo, env=env)  # warm up: the full parse, the deps
    os.environ.update(env)  # the API reads DATUM_HOME and the profile's variables from here
    project = datum_dot.Project(repo)
    started = time.perf_counter()
    first = project.build("prod")
    first_seconds = time.perf_counter() - started
    assert first.ok, first.errors
    in_process = []
    for _ in range(runs):
        started = time.perf_counter()
        result = project.build("prod")
        in_process.append(time.perf_counter() - started)
        assert result.ok, result.errors
    fresh = [run(dot, cwd=repo, env=env) for _ in range(runs)]
    api, cli = median(in_process), median(fresh)
    print(f"machine: {machine()}")
    print(f"first project.build('prod') in this process (imports dbt): {first_seconds:.2f} s")
    print(f"project.build('prod'), median of {runs}: {api:.2f} s")
    print(f"dot build prod, median of {runs}:        {cli:.2f} s")
    print(f"in process / fresh process: {api / cli:.0%}")


if __name__ == "__main__":
    main()
