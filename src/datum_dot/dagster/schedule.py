"""`dot_schedule`: a dot schedule as a Dagster job and schedule (`dot schedule export --to dagster`).

The job has one op that runs the schedule's dbt command through the API (trigger `dagster`), at
the spec a firing builds (a pinned schedule's full commit hash). The Dagster schedule fires on
the same cron expression in the same time zone. Overlap `skip`: a firing while a run of the job
is still queued or running is skipped, with the reason in Dagster's tick log, as cron's firing
would be; every run carries the tag `datum_dot/schedule=<name>`, so a run-queue limit of 1 on it
(dagster.yaml) also holds back runs launched by hand. Overlap `queue`: only that tag limit.
The schedule's timeout is dot's own (it stops dbt and records TIMEOUT); `dagster/max_runtime`
adds a grace period over it for Dagster's run monitoring.
"""

# mypy: allow-subclassing-any, allow-untyped-decorators
# The main environment type-checks this package without Dagster installed (Dagster's types
# are Any there); scripts/test-dagster checks it against Dagster's own types.
# No `from __future__ import annotations` here: Dagster reads the type of a decorated function's
# `context` parameter at definition time and refuses a string.

from collections.abc import Sequence
from typing import Literal

import dagster as dg  # type: ignore[import-not-found, unused-ignore]
from dagster import (  # type: ignore[import-not-found, unused-ignore]
    OpExecutionContext,
    ScheduleEvaluationContext,
)

from datum_dot.dagster.assets import RESOURCE_KEY
from datum_dot.dagster.resource import DatumDotResource

SCHEDULE_TAG = "datum_dot/schedule"
TIMEOUT_GRACE = 300
"""Seconds Dagster's deadline adds to dot's timeout: dot stops dbt first and records TIMEOUT."""
_ACTIVE = [
    dg.DagsterRunStatus.QUEUED,
    dg.DagsterRunStatus.NOT_STARTED,
    dg.DagsterRunStatus.STARTING,
    dg.DagsterRunStatus.STARTED,
    dg.DagsterRunStatus.CANCELING,
]


def dot_schedule(
    name: str,
    *,
    cron: str,
    timezone: str,
    spec: str,
    command: Sequence[str] = ("build",),
    args: Sequence[str] = (),
    defer: str | None = None,
    timeout: float | None = None,
    overlap: Literal["skip", "queue"] = "skip",
    enabled: bool = True,
    resource_key: str = RESOURCE_KEY,
) -> dg.ScheduleDefinition:
    """A Dagster schedule and its one-op job that run a dbt command as a dot schedule does.

    Args:
        name: The dot schedule's name (the job is `dot_<name>`).
        cron: The cron expression.
        timezone: The IANA zone it is read in.
        spec: What each run builds: `env@<full hash>` for a pinned schedule.
        command: The dbt command words.
        args: The schedule's dbt arguments.
        defer: The schedule's `--defer` spec.
        timeout: Seconds before dot stops dbt (status TIMEOUT); None: no limit.
        overlap: `skip` a firing while a run is active, or `queue` it (the run queue's tag limit).
        enabled: False: the schedule starts stopped, as a paused dot schedule.
        resource_key: The key the definitions bind a `DatumDotResource` to.

    Returns:
        The schedule; its job is `schedule.job`.
    """
    job_name = "dot_" + "".join(ch if ch.isalnum() else "_" for ch in name)
    tags = {SCHEDULE_TAG: name}
    if timeout is not None:
        tags["dagster/max_runtime"] = str(int(timeout) + TIMEOUT_GRACE)
    words = tuple(command)

    @dg.op(name=f"{job_name}_op", required_resource_keys={resource_key})
    def _run(context: OpExecutionContext) -> None:
        dot: DatumDotResource = getattr(context.resources, resource_key)
        result = dot.project().dbt(*words, spec=spec, args=args, defer=defer, timeout=timeout,
                                   runtime=dot.runtime)  # fmt: skip
        context.log.info(f"dot logs {result.run_id}: {result.status}, commit {result.commit}")
        if not result.ok:
            first = result.errors[0] if result.errors else f"exit code {result.exit_code}"
            raise dg.Failure(
                description=f"dbt {' '.join(words)} {spec} failed: {first}",
                metadata={
                    "run_id": result.run_id or "",
                    "exit_code": result.exit_code,
                    "dot_logs": f"dot logs {result.run_id}",
                },
                allow_retries=False,
            )

    @dg.job(name=job_name, tags=tags)
    def _job() -> None:
        _run()

    @dg.schedule(
        cron_schedule=cron,
        execution_timezone=timezone,
        job=_job,
        name=f"{job_name}_schedule",
        default_status=dg.DefaultScheduleStatus.RUNNING
        if enabled
        else dg.DefaultScheduleStatus.STOPPED,
    )
    def _schedule(context: ScheduleEvaluationContext) -> dg.RunRequest | dg.SkipReason:
        if overlap == "skip":
            active = context.instance.get_run_records(
                filters=dg.RunsFilter(job_name=job_name, statuses=_ACTIVE), limit=1
            )
            if active:
                return dg.SkipReason(
                    f"overlap skip: run {active[0].dagster_run.run_id} of {job_name} is still "
                    "active"
                )
        return dg.RunRequest(tags=tags)

    return _schedule
