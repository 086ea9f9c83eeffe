"""Plan `--defer`: an isolated build (`env@ref`), or the live environment (`env`) from the run
history or its dbt Cloud job; and check how old the state is (`--max-state-age`)."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path

from datum_dot.config.environments import EnvironmentsConfig
from datum_dot.errors import BaselineError, UsageError
from datum_dot.runs import isolatedplan
from datum_dot.runs.plan import Baseline
from datum_dot.runs.run import RunRequest
from datum_dot.runs.state import StateHistory, check_age, human_age


def plan_defer(
    request: RunRequest,
    envs: EnvironmentsConfig,
    project_dir: Path,
    repo_root: Path | None,
    *,
    project: str,
    states: StateHistory | None,
    environ: Mapping[str, str],
) -> Baseline | None:
    """The state `--defer` names, with where it came from and how old it is.

    Raises:
        UsageError: `--state-source cloud` with an `env@ref`, or no history to read.
        ConfigError: The environment is not defined, or names no dbt Cloud job.
        BaselineError: No such build or run, or it is older than `--max-state-age`.
        NotARepositoryError: An `env@ref` outside a git repository.
    """
    defer = request.defer
    if defer is None:
        if request.state_source != "history":
            raise UsageError(
                "--state-source says where --defer ENV reads its state, and --defer is not given",
                "add --defer ENV (for example --defer prod --state-source cloud)",
            )
        if request.max_state_age is not None:
            raise UsageError(
                "--max-state-age limits the age of deferred state, and --defer is not given",
                "add --defer ENV, or drop --max-state-age",
            )
        return None
    now = datetime.now(UTC)
    if defer.ref is not None:
        if request.state_source != "history":
            raise UsageError(
                f"--state-source cloud reads a dbt Cloud job's state; --defer {defer} names a build",
                f"defer to the environment: --defer {defer.env or 'prod'} --state-source cloud",
            )
        base = isolatedplan.plan_baseline(defer, project_dir, repo_root)
        assert base is not None  # noqa: S101 - the spec has a ref
        built = datetime.fromtimestamp((base.state_dir / "manifest.json").stat().st_mtime, UTC)
        age = (now - built).total_seconds()
        check_age(f"baseline {defer}", age, request.max_state_age, f"dot build {defer}")
        return dataclasses.replace(base, finished_at=built, age_seconds=age)
    env = envs.resolve(defer.env)
    name = env.name or str(defer.env)
    if request.state_source == "cloud":
        return _cloud_baseline(request, name, env.runtimes, environ, project_dir, now)
    if states is None:
        raise UsageError(
            f"--defer {defer} reads the run history, which this caller does not give",
            f"defer to an isolated build instead: --defer {defer}@main",
        )
    search = states.live_state(project, name)
    skipped = "; ".join(search.skipped)
    found = search.found
    if found is None:
        passed = f" (passed over: {skipped})" if skipped else ""
        raise BaselineError(
            f"--defer {defer}: no successful run of {name} is in the run history with its "
            f"manifest{passed}",
            f"run one first: dot build {name} (or defer to a build: --defer {name}@main)",
        )
    age = (now - found.finished_at).total_seconds()
    check_age(
        f"the state of {name} (run {found.run_id}, finished {found.finished_at:%Y-%m-%d %H:%M} "
        "UTC)",
        age,
        request.max_state_age,
        f"dot build {name}",
    )
    return Baseline(
        spec=defer,
        commit=found.commit,
        state_dir=found.state_dir,
        env_name=name,
        source="history",
        run_id=found.run_id,
        finished_at=found.finished_at,
        age_seconds=age,
        skipped=search.skipped,
    )


def _cloud_baseline(
    request: RunRequest,
    name: str,
    runtimes: Mapping[str, Mapping[str, object]],
    environ: Mapping[str, str],
    project_dir: Path,
    now: datetime,
) -> Baseline:
    # lazy: httpx and the API models load only for a cloud state source
    from datum_dot.runtimes.cloudstate import find_cloud_state

    assert request.defer is not None  # noqa: S101 - the caller checked
    state = find_cloud_state(name, runtimes, environ, project_dir)
    age = (now - state.finished_at).total_seconds() if state.finished_at else None
    if age is not None:
        check_age(
            f"the state of {name} (dbt Cloud run {state.run_id} of job {state.job_id})",
            age,
            request.max_state_age,
            "run the job in dbt Cloud",
        )
    elif request.max_state_age is not None:
        raise BaselineError(
            f"dbt Cloud run {state.run_id} has no finish time, so its age is unknown",
            "drop --max-state-age, or run the job again",
        )
    return Baseline(
        spec=request.defer,
        commit=state.git_sha,
        state_dir=state.folder,
        env_name=name,
        source="cloud",
        run_id=str(state.run_id),
        finished_at=state.finished_at,
        age_seconds=age,
        cloud=state.provenance(),
    )


def describe(base: Baseline) -> str:
    """One line for the plan: where the deferred state came from and how old it is."""
    age = f", {human_age(base.age_seconds)} old" if base.age_seconds is not None else ""
    commit = f" at commit {base.commit[:8]}" if base.commit else ""
    if base.source == "history":
        return f"live {base.env_name}: run {base.run_id}{commit}{age}"
    if base.source == "cloud":
        cloud = base.cloud or {}
        return (
            f"live {base.env_name}: dbt Cloud run {base.run_id} of job {cloud.get('job_id')}"
            f"{commit}{age}"
        )
    return f"isolated build {base.spec}{commit}{age}"
