"""A child process that records runs through RunStore, for tests that need a second writer.

`python -m tests.helpers.run_writer many HOME COUNT TAG GO_FILE`
    waits for GO_FILE to exist (so that every writer starts at once), then records COUNT finished
    runs of project TAG, each with one output line.

`python -m tests.helpers.run_writer slow HOME`
    begins one run, prints its id, then writes numbered output lines (`line 0`, `line 1`, ...)
    every few milliseconds, printing each number once written, until it is killed.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from datum_dot.history import RunEnd, RunStart, RunStore
from datum_dot.runs.run import RunStatus


def write_many(home: Path, count: int, tag: str, go_file: Path) -> None:
    """Record `count` finished runs once `go_file` exists."""
    store = RunStore(home)
    while not go_file.exists():
        time.sleep(0.005)
    for n in range(count):
        run_id = store.begin(RunStart(project=tag, spec="prod@main", command=("build",)))
        with store.output(run_id) as out:
            out.line("stdout", f"{tag} run {n}")
        store.finish(run_id, RunEnd(status=RunStatus.SUCCESS, exit_code=0))


def write_slowly(home: Path) -> None:
    """Begin one run and write output lines until killed."""
    store = RunStore(home)
    run_id = store.begin(RunStart(project="victim", spec="prod", command=("build",)))
    print(run_id, flush=True)
    with store.output(run_id) as out:
        n = 0
        while True:
            out.line("stdout" if n % 2 == 0 else "stderr", f"line {n}")
            print(n, flush=True)
            n += 1
            time.sleep(0.002)


if __name__ == "__main__":
    mode, home = sys.argv[1], Path(sys.argv[2])
    if mode == "many":
        write_many(home, int(sys.argv[3]), sys.argv[4], Path(sys.argv[5]))
    else:
        write_slowly(home)
