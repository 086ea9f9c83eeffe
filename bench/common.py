"""Shared pieces of the benchmarks: an example repository, timing, and medians."""

from __future__ import annotations

import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / ".dot-example"
BIN = Path(sys.executable).parent
GIT_ENV = {
    "GIT_AUTHOR_NAME": "Bench",
    "GIT_AUTHOR_EMAIL": "bench@example.invalid",
    "GIT_COMMITTER_NAME": "Bench",
    "GIT_COMMITTER_EMAIL": "bench@example.invalid",
    "GIT_CONFIG_GLOBAL": "/dev/null",
    "GIT_CONFIG_NOSYSTEM": "1",
}


def environment(base: Path) -> dict[str, str]:
    """The environment every benchmarked command runs with."""
    return {
        **os.environ,
        **GIT_ENV,
        "DO_NOT_TRACK": "1",
        "DATUM_HOME": str(base / "datum_home"),
        "DOT_EXAMPLE_DUCKDB": str(base / "warehouse.duckdb"),
        "CI": "true",
    }


def make_repo(commits: int = 2) -> tuple[Path, dict[str, str]]:
    """Copy the example into a temporary git repository with `commits` commits."""
    base = Path(tempfile.mkdtemp(prefix="dot-bench-"))
    repo = base / "repo"
    shutil.copytree(EXAMPLE, repo, ignore=shutil.ignore_patterns("*.duckdb", "target", "logs"))
    env = environment(base)

    def git(*args: str) -> None:
        subprocess.run(["git", *args], cwd=repo, env=env, check=True, capture_output=True)

    git("init", "-q", "-b", "main")
    git("add", "-A")
    git("commit", "-q", "-m", "example")
    for n in range(1, commits):
        (repo / "README.md").write_text((repo / "README.md").read_text() + f"\nchange {n}\n")
        git("commit", "-q", "-am", f"change {n}")
    run([str(BIN / "dbt"), "deps"], cwd=repo, env=env)
    return repo, env


def run(argv: Sequence[str], *, cwd: Path, env: dict[str, str]) -> float:
    """Run a command to completion, failing loudly; return its wall time in seconds."""
    start = time.perf_counter()
    result = subprocess.run(list(argv), cwd=cwd, env=env, capture_output=True, text=True)
    elapsed = time.perf_counter() - start
    if result.returncode != 0:
        raise SystemExit(
            f"{' '.join(argv)} failed ({result.returncode}):\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
        )
    return elapsed


def timed(argv: Sequence[str], *, cwd: Path, env: dict[str, str]) -> tuple[float, float]:
    """Run a command to completion, failing loudly; return its wall and CPU seconds."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    wall = run(argv, cwd=cwd, env=env)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu


def median(values: Sequence[float]) -> float:
    """The median of the timings."""
    return statistics.median(values)


def machine() -> str:
    """One line describing the machine the numbers come from."""
    cpus = os.cpu_count()
    return f"{platform.machine()}, {cpus} cores, Python {platform.python_version()}, {platform.system()}"
