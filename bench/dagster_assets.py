"""A Dagster materialization of `dot_assets` against the same `project.build` called directly, on
the example project at a pinned commit (median wall time per run, local runtime).

Both sides build every model, seed and test at the same commit through `execute()`. The
materialization adds Dagster's run in process (an ephemeral instance, its event log) and one
event per node; it is split into the build itself, the step around it and Dagster around the
step. Each side is warmed up once first (worktree, packages, the manifest's parse). Target: the
materialization costs under 10% more than the build.

Run: .venv-dagster/bin/python bench/dagster_assets.py [runs]
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from typing import Any

import dagster as dg
from common import machine, make_repo, median

from datum_dot.dagster import DagsterProject, DatumDotResource, dot_assets


def main() -> None:
    """Print the medians and the overhead."""
    runs = int(sys.argv[1]) if len(sys.argv) > 1 else 10
    repo, env = make_repo()
    os.environ.update(env)
    sha = subprocess.run(["git", "rev-parse", "HEAD"], cwd=repo, capture_output=True, text=True,
                         check=True).stdout.strip()  # fmt: skip
    spec = f"prod@{sha}"
    dot = DatumDotResource(project_dir=str(repo))
    started = time.perf_counter()
    assets = dot_assets(dot, spec)
    load = time.perf_counter() - started
    started = time.perf_counter()
    dot_assets(dot, spec)
    reload = time.perf_counter() - started
    project = dot.project()
    assert project.build(spec).ok  # warm up
    inner: list[float] = []
    original = DagsterProject.build

    def timed(self: DagsterProject, *args: Any, **kwargs: Any) -> Any:
        start = time.perf_counter()
        result = original(self, *args, **kwargs)
        inner.append(time.perf_counter() - start)
        return result

    direct, materialized, steps = [], [], []
    for _ in range(runs):
        start = time.perf_counter()
        assert project.build(spec).ok
        direct.append(time.perf_counter() - start)
        DagsterProject.build = timed  # type: ignore[method-assign]
        instance = dg.DagsterInstance.ephemeral()
        start = time.perf_counter()
        done = dg.materialize([assets], resources={"dot": dot}, instance=instance)
        materialized.append(time.perf_counter() - start)
        DagsterProject.build = original  # type: ignore[method-assign]
        assert done.success
        stamps = {
            entry.dagster_event.event_type_value: entry.timestamp
            for entry in instance.all_logs(done.run_id)
            if entry.dagster_event is not None
        }
        steps.append(stamps["STEP_SUCCESS"] - stamps["STEP_START"])
        instance.dispose()
    build, whole = median(direct), median(materialized)
    print(f"machine: {machine()}, load average {os.getloadavg()[0]:.1f}")
    print(
        f"dot_assets: first load (parses the commit) {load:.2f} s, a reload {reload * 1000:.0f} ms"
    )
    print(f"project.build, median of {runs}:    {build:.2f} s")
    print(f"dg.materialize, median of {runs}:   {whole:.2f} s")
    print(
        f"  inside it: the build {median(inner):.2f} s, the step "
        f"{median(steps):.2f} s, Dagster around the step "
        f"{median([w - s for w, s in zip(materialized, steps, strict=True)]):.2f} s"
    )
    print(f"overhead: {whole - build:.2f} s = {(whole - build) / build:.0%} of the build")


if __name__ == "__main__":
    main()
