"""Runtimes compared on the example project: `dbt build --target prod`, the same argv each way.

- bare: `dbt build` started as a process by this script (the baseline);
- subprocess: the `subprocess` runtime (the dbt CLI in a child process, JSON logs parsed);
- local: `dbtRunner` in this process, warm (after a first invocation);
- local child: `local` with a timeout: a child forked from this warm process;
- local warm server: `local` with `warm=True`: children of a fork server that imported dbt once.

Rounds are interleaved (the order rotates), so drift on the machine hits every way alike. The
first invocation of each way is a warm-up and not counted (it also writes partial_parse).

Run: .venv/bin/python bench/runtimes.py [rounds]
"""

from __future__ import annotations

import contextlib
import io
import os
import sys
import time
from collections.abc import Callable

from common import BIN, machine, make_repo, median, run

from datum_dot.runtimes.local import LocalRuntime
from datum_dot.runtimes.subprocess import SubprocessRuntime


def main() -> None:
    """Print the median of each way and its ratio to a bare `dbt build`."""
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 7
    repo, env = make_repo(commits=1)
    os.environ.update(env)  # the in-process ways read DOT_EXAMPLE_DUCKDB from here
    os.chdir(repo)
    args = ["build", "--project-dir", str(repo), "--profiles-dir", str(repo), "--target", "prod"]
    warm_server = LocalRuntime(warm=True)
    warm_server.warm_up()
    ways: dict[str, Callable[[], object]] = {
        "bare dbt build": lambda: run([str(BIN / "dbt"), *args], cwd=repo, env=env),
        "subprocess": lambda: _ok(SubprocessRuntime().invoke(args, env={})),
        "local (in process)": lambda: _ok(LocalRuntime().invoke(args, env={})),
        "local child (--timeout)": lambda: _ok(LocalRuntime().invoke(args, env={}, timeout=600)),
        "local warm server": lambda: _ok(warm_server.invoke(args, env={}, timeout=600)),
    }
    times: dict[str, list[float]] = {name: [] for name in ways}
    for call in ways.values():  # warm-up, not counted
        _timed(call)
    for i in range(rounds):
        names = list(ways)
        for name in names[i % len(names) :] + names[: i % len(names)]:
            times[name].append(_timed(ways[name]))
    bare = median(times["bare dbt build"])
    print(f"{'way':<26}{'median':>9}{'vs bare':>9}")
    for name, values in times.items():
        m = median(values)
        print(f"{name:<26}{m:8.2f}s{m / bare:8.2f}x")
    print(f"rounds={rounds}; argv: dbt {' '.join(args)}")
    print(machine())


def _timed(call: Callable[[], object]) -> float:
    sink = io.StringIO()
    start = time.perf_counter()
    with contextlib.redirect_stdout(sink), contextlib.redirect_stderr(sink):
        call()
    return time.perf_counter() - start


def _ok(result: object) -> object:
    if not getattr(result, "success", False):
        raise SystemExit(f"a run failed: {getattr(result, 'error', result)}")
    return result


if __name__ == "__main__":
    main()
