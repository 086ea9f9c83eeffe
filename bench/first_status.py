"""Time from starting `dot build prod` on a terminal to the first thing on its screen.

The command runs on a pseudo-terminal, as in a terminal window; the time is taken when the
first bytes arrive (the status line), and again when the run's summary does, for scale. The
build itself is the example's; each round waits for it to end.

Run: .venv/bin/python bench/first_status.py [N]
"""

from __future__ import annotations

import os
import pty
import select
import sys
import time

from common import BIN, machine, make_repo, median

_UNSET = ("NO_COLOR", "FORCE_COLOR", "DBT_USE_COLORS", "TTY_COMPATIBLE", "TTY_INTERACTIVE")


def one(repo: str, env: dict[str, str]) -> tuple[float, float, str]:
    """Seconds to the first bytes and to the end, and the first bytes."""
    started = time.perf_counter()
    pid, fd = pty.fork()
    if pid == 0:
        os.chdir(repo)
        argv = [str(BIN / "dot"), "build", "prod", "--disable-prompts"]
        os.execve(argv[0], argv, env)  # noqa: S606 - the program and its words, no shell
    first_at = 0.0
    first = ""
    while True:
        ready, _, _ = select.select([fd], [], [], 300)
        if not ready:
            break
        try:
            data = os.read(fd, 65536)
        except OSError:
            break
        if not data:
            break
        if not first:
            first_at = time.perf_counter() - started
            first = data.decode("utf-8", "replace")
    os.waitpid(pid, 0)
    os.close(fd)
    return first_at, time.perf_counter() - started, first


def main() -> None:
    """Print the medians."""
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 9
    repo, env = make_repo()
    env = {k: v for k, v in env.items() if k not in _UNSET}
    env["TERM"] = "xterm-256color"
    one(str(repo), env)  # deps, partial parse state: not what is measured
    firsts, ends = [], []
    shown = ""
    for _ in range(n):
        first_at, end, shown = one(str(repo), env)
        firsts.append(first_at)
        ends.append(end)
    print(f"first bytes on screen  median {median(firsts) * 1000:7.1f} ms  (n={n}): {shown!r}")
    print(f"whole build            median {median(ends) * 1000:7.1f} ms")
    print(machine())


if __name__ == "__main__":
    main()
