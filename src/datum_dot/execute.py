"""`execute()`: the one path by which every run (CLI, scheduler, webhook, SDK) reaches dbt."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from datum_dot import dbtcore, isolation, workspace
from datum_dot.errors import DbtError, ExitCode
from datum_dot.plan import BuildPlan
from datum_dot.planner import make_plan
from datum_dot.run import RunRecord, RunRequest, RunStatus
from datum_dot.runtimes.base import InvocationResult, Runtime


class Observer:
    """Hooks the caller may override to show progress or ask questions; all do nothing here."""

    def planned(self, plan: BuildPlan) -> None:
        """Called once the plan is valid, before anything on disk changes."""

    def waiting(self, message: str) -> None:
        """Called when another process holds a lock this run needs."""

    def step(self, message: str) -> None:
        """Called at each preparation step (worktree, deps, isolation check)."""

    def event(self, name: str, data: Mapping[str, Any]) -> None:
        """Called with each dbt event, where the runtime reports events."""


def execute(
    request: RunRequest,
    *,
    runtime: Runtime | None = None,
    observer: Observer | None = None,
) -> RunRecord:
    """Plan, prepare and run one dbt command, and say what happened.

    Args:
        request: What to run.
        runtime: What runs dbt; dbt-core in process by default.
        observer: Progress and question hooks.

    Returns:
        The record of the run. A dbt failure is a FAILED record, not an exception.

    Raises:
        DotError: Bad input (exit 20) found while planning, or a failure preparing the run.
    """
    observer = observer or Observer()
    started = datetime.now(UTC)
    plan = make_plan(request, options_for=dbtcore.command_options)
    if request.dry_run:
        return RunRecord(
            request=request,
            plan=plan,
            status=RunStatus.PLANNED,
            exit_code=ExitCode.OK,
            started_at=started,
            finished_at=datetime.now(UTC),
            warnings=plan.warnings,
        )
    if runtime is None:
        from datum_dot.runtimes.local import LocalRuntime

        runtime = LocalRuntime()
    observer.planned(plan)

    def run_deps(args: Sequence[str]) -> None:
        observer.step(f"installing dbt packages in {plan.project_dir}")
        result = runtime.invoke(args, env=plan.dbt_env, on_event=observer.event)
        if not result.success:
            raise DbtError(
                f"dbt deps failed in {plan.project_dir}"
                + (f": {result.error}" if result.error else ""),
                f"run it by hand to see why: dbt {' '.join(args)}",
            )

    with workspace.prepared(plan, run_deps=run_deps, on_wait=observer.waiting):
        if plan.check_isolation:
            _check_isolation(plan, runtime, observer, request.environ)
        result = runtime.invoke(plan.dbt_args, env=plan.dbt_env, on_event=observer.event)
    status, code = _outcome(result)
    return RunRecord(
        request=request,
        plan=plan,
        status=status,
        exit_code=code,
        started_at=started,
        finished_at=datetime.now(UTC),
        node_statuses=result.statuses,
        dbt_exit_code=result.dbt_exit_code,
        warnings=plan.warnings,
        error=result.error,
    )


def _check_isolation(
    plan: BuildPlan,
    runtime: Runtime,
    observer: Observer,
    environ: Mapping[str, str] | None,
) -> None:
    iso = plan.isolated
    assert iso is not None  # noqa: S101 - only isolated plans are checked
    observer.step("checking that every node lands in the isolated schema")
    targets = runtime.parse_targets(plan.parse_args, env=plan.dbt_env)
    schema = isolation.expected_schema(
        iso.profile.schema_after, os.environ if environ is None else environ
    )
    offenders = isolation.find_offenders(targets, schema=schema, short_hash=iso.short_hash)
    isolation.raise_for_offenders(offenders, schema=schema or iso.profile.schema_after)


def _outcome(result: InvocationResult) -> tuple[RunStatus, ExitCode]:
    if result.interrupted:
        return RunStatus.CANCELLED, ExitCode.CANCELLED
    if not result.success:
        return RunStatus.FAILED, ExitCode.RUNTIME_FAILURE
    if "warn" in result.statuses:
        return RunStatus.SUCCESS, ExitCode.WARNINGS
    return RunStatus.SUCCESS, ExitCode.OK
