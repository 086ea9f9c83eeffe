"""Make a plan's state real before dbt runs: parse a `--state-from` commit, fetch a dbt Cloud
job's manifest for `--defer ENV --state-source cloud`.

The parse runs in the commit's own worktree with its isolated profile (`workspace.prepared`),
into `.dot/build/<hash>/env/<env>/state/`; a parse with the same argv is not repeated. Only the
parse sees placeholders for credentials its profile reads from unset variables
(`stateparse`); the run itself never does.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

from datum_dot.builds import workspace
from datum_dot.errors import DbtError
from datum_dot.runs import stateparse
from datum_dot.runs.deferplan import describe
from datum_dot.runs.plan import BuildPlan, StateFrom
from datum_dot.runtimes.base import InvocationResult
from datum_dot.vcs import ownership

Invoke = Callable[[Sequence[str], Mapping[str, str]], InvocationResult]
"""Runs one dbt invocation (argv, environment) through the run's runner."""
Note = Callable[[str], None]


def prepare_state(
    plan: BuildPlan,
    *,
    invoke: Invoke,
    run_deps: workspace.DepsRunner,
    note: Note,
    on_wait: Callable[[str], None] | None,
    environ: Mapping[str, str],
    use_cache: bool = True,
) -> None:
    """Parse the `--state-from` commit and fetch dbt Cloud state, where the plan needs them.

    Raises:
        DbtError: The parse failed (its error in the message; exit 30).
        KeyboardInterrupt: The parse was cancelled.
        BaselineError: The dbt Cloud run has no manifest.
        CloudError: dbt Cloud could not be reached.
    """
    base = plan.baseline
    if base is not None:
        note(f"deferring to {describe(base)}")
    if base is not None and base.source == "cloud" and base.run_id is not None:
        # lazy: httpx and the API models load only for a cloud state source
        from datum_dot.config.environments import load_environments
        from datum_dot.runtimes.cloudstate import CloudState, fetch_cloud_state

        cloud = base.cloud or {}
        note(f"fetching the manifest of dbt Cloud run {base.run_id} (job {cloud.get('job_id')})")
        fetch_cloud_state(
            CloudState(
                account_id=int(cloud.get("account_id", 0)),
                job_id=int(cloud.get("job_id", 0)),
                run_id=int(base.run_id),
                finished_at=base.finished_at,
                git_sha=base.commit,
                folder=base.state_dir,
            ),
            str(base.env_name),
            # the live environment's settings are the checkout's, as its plain runs use them
            load_environments(plan.source_project_dir).resolve(base.env_name).runtimes,
            environ,
            plan.source_project_dir,
            use_cache=use_cache,
        )
    state = plan.state_from
    if state is None:
        return
    # dbt writes the parse there and its cache marker is read from there: a link under .dot
    # (to a folder of the user's, or one holding a planted manifest) is refused, not followed
    parts = state.state_dir.relative_to(plan.source_project_dir).parts
    ownership.require_real_dirs(plan.source_project_dir, *parts, create=True)
    if stateparse.is_cached(state.state_dir, state.key):
        note(f"comparing against {state.spec} (commit {state.commit[:8]}), parsed earlier")
        return
    _parse(state, invoke=invoke, run_deps=run_deps, note=note, on_wait=on_wait, environ=environ)


def _parse(
    state: StateFrom,
    *,
    invoke: Invoke,
    run_deps: workspace.DepsRunner,
    note: Note,
    on_wait: Callable[[str], None] | None,
    environ: Mapping[str, str],
) -> None:
    parse = state.parse
    note(f"parsing {state.spec} (commit {state.commit[:8]}) to compare against; nothing is built")
    with workspace.prepared(parse, run_deps=run_deps, on_wait=on_wait):
        if stateparse.is_cached(state.state_dir, state.key):
            return  # another run parsed it while this one waited for the build's lock
        profile = (parse.profiles_dir / "profiles.yml").read_text(encoding="utf-8")
        extra = stateparse.placeholder_env(profile, environ)
        result = _invoke_with_placeholders(parse, extra, invoke, note)
        if result.interrupted:
            raise KeyboardInterrupt
        if not result.success:
            raise DbtError(
                f"--state-from {state.spec}: dbt parse of commit {state.commit[:8]} failed"
                + (f": {result.error}" if result.error else ""),
                f"see the parse's output above; fix the project at {state.spec.ref}, or compare "
                "against another ref",
            )
        stateparse.mark_cached(state.state_dir, state.key, state.commit, parse.env.name)


def _invoke_with_placeholders(
    parse: BuildPlan, extra: dict[str, str], invoke: Invoke, note: Note
) -> InvocationResult:
    if extra:
        note(f"placeholders for the parse only (unset, read by the profile): {', '.join(extra)}")
    for _ in range(stateparse.MAX_PLACEHOLDER_ROUNDS):
        result = invoke(parse.dbt_args, {**parse.dbt_env, **extra})
        missing = stateparse.missing_env_var(result.error)
        if result.success or missing is None or missing in extra:
            return result
        note(f"placeholder for the parse only: {missing} (dbt needs it set; it is not)")
        extra[missing] = stateparse.PLACEHOLDER
    return result
