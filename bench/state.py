"""State from anywhere: what `--state-from` costs against building the commit, and what keeping
each run's artifacts costs.

1. `dot ls dev --state-from prod@main -- -s state:modified`, three ways: first (no `.dot/`:
   worktree, packages and a full parse of the commit), parse only (worktree and packages kept,
   the parse's cache removed) and cached (the commit and environment parsed before: no dbt
   parse of it at all). Against `dot build prod@main`: first (no `.dot/`) and later runs.
2. The artifact copy at the end of every run (`history.artifacts.keep_artifacts`: copy and
   sha256 of manifest.json, run_results.json, semantic_manifest.json of the example's build),
   timed in process; target under 20 ms.

Medians of N rounds. Run: .venv/bin/python bench/state.py [N]
"""

from __future__ import annotations

import shutil
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from common import BIN, machine, make_repo, median, run

from datum_dot.history.artifacts import keep_artifacts


def _state_dirs(repo: Path) -> list[Path]:
    return list((repo / ".dot" / "build").glob("*/env/prod/state"))


def _fresh(repo: Path, env: dict[str, str]) -> None:
    shutil.rmtree(repo / ".dot", ignore_errors=True)
    run(["git", "worktree", "prune"], cwd=repo, env=env)


def time_state_from(n: int) -> dict[str, float]:
    """Medians of the `--state-from` variants and of isolated builds of the same commit."""
    repo, env = make_repo()
    compare = [str(BIN / "dot"), "ls", "dev", "--state-from", "prod@main", "--disable-prompts",
               "--", "-s", "state:modified"]  # fmt: skip
    build = [str(BIN / "dot"), "build", "prod@main", "--disable-prompts"]
    times: dict[str, list[float]] = {
        k: [] for k in ("first", "parse", "cached", "bfirst", "blater")
    }
    run(compare, cwd=repo, env=env)  # warm the file cache and dbt's bytecode
    for _ in range(n):
        _fresh(repo, env)
        times["first"].append(run(compare, cwd=repo, env=env))
        for folder in _state_dirs(repo):
            shutil.rmtree(folder)
        times["parse"].append(run(compare, cwd=repo, env=env))
        times["cached"].append(run(compare, cwd=repo, env=env))
        _fresh(repo, env)
        times["bfirst"].append(run(build, cwd=repo, env=env))
        times["blater"].append(run(build, cwd=repo, env=env))
    shutil.rmtree(repo.parent, ignore_errors=True)
    return {key: median(values) for key, values in times.items()}


def time_artifact_copy(n: int) -> tuple[float, int]:
    """Median milliseconds of keeping one build's artifacts, and their total size in bytes."""
    repo, env = make_repo()
    run([str(BIN / "dbt"), "build", "--target", "prod"], cwd=repo, env=env)
    target = repo / "target"
    since = datetime(2000, 1, 1, tzinfo=UTC)
    times: list[float] = []
    size = 0
    with tempfile.TemporaryDirectory() as scratch:
        for i in range(max(n, 20)):
            run_dir = Path(scratch) / str(i)
            run_dir.mkdir()
            start = time.perf_counter()
            kept, failed = keep_artifacts(target, run_dir, since)
            times.append((time.perf_counter() - start) * 1000)
            assert not failed, failed
            size = sum(a.size for a in kept.values())
    shutil.rmtree(repo.parent, ignore_errors=True)
    return median(times), size


def main() -> None:
    """Print medians."""
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 3
    print(machine())
    ms, size = time_artifact_copy(n * 10)
    print(f"artifact copy + sha256 per run ({size / 1024:.0f} KiB)   median {ms:7.2f} ms")
    t = time_state_from(n)
    print(f"dot ls --state-from, first (no .dot/)       median {t['first']:6.2f} s")
    print(f"dot ls --state-from, parse only             median {t['parse']:6.2f} s")
    print(f"dot ls --state-from, cached                 median {t['cached']:6.2f} s")
    print(f"dot build prod@main, first (no .dot/)       median {t['bfirst']:6.2f} s")
    print(f"dot build prod@main, later                  median {t['blater']:6.2f} s")
    print(f"parse cost (parse only - cached)            {t['parse'] - t['cached']:6.2f} s")


if __name__ == "__main__":
    main()
