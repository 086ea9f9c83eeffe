"""`dot schedule run NAME`: what cron calls, and what a person may call by hand.

One firing: take the schedule's lock (so two firings never run the same schedule at once), fetch
if asked, turn the schedule into a `RunRequest` and hand it to `execute()`. Everything that ends
a firing before `execute()` records the run itself (a SKIPPED overlap, a TIMEOUT queue wait, a
FAILED fetch), so cron's firings always leave a record.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from datum_dot.errors import DotError, ExitCode, LockTimeoutError
from datum_dot.execute import Observer, execute
from datum_dot.history import RunEnd, RunStart, RunStore
from datum_dot.home.locks import file_lock
from datum_dot.runs import commits
from datum_dot.runs.planner import project_name
from datum_dot.runs.run import RunRecord, RunRequest, RunStatus, Trigger
from datum_dot.runs.spec import Spec, parse_defer_spec, parse_spec, parse_state_from_spec
from datum_dot.scheduling.schedules import Located, Overlap, Schedule

FETCH_TIMEOUT = 300.0
QUEUE_WAIT = 3600.0
LOCK_FOLDER = "locks/schedules"


@dataclass(frozen=True)
class Firing:
    """How one firing ended.

    Attributes:
        status: The recorded status (PLANNED for a dry run).
        exit_code: The exit code of `dot schedule run`.
        run_id: The history record, where one was written.
        record: What `execute()` returned, when it ran.
        message: A one-line account of anything that stopped the firing before dbt.
    """

    status: RunStatus
    exit_code: ExitCode
    run_id: str | None = None
    record: RunRecord | None = None
    message: str = ""


def fire(
    located: Located,
    *,
    home: Path,
    trigger: Trigger,
    dry_run: bool = False,
    observer: Observer | None = None,
    runtime: str | None = None,
) -> Firing:
    """Run a schedule once, as its settings say.

    Args:
        located: The schedule and its project.
        home: `$DATUM_HOME`.
        trigger: CRON when cron fired it, MANUAL by hand.
        dry_run: Plan only: no lock, no fetch, no record.
        observer: Progress hooks for `execute()`.
        runtime: The runtime to run dbt with, where no registration names it (an embedded
            definition's); None: the environment's, the registration's, or local.

    Returns:
        How it ended.

    Raises:
        DotError: Planning failed (also recorded as FAILED for a cron firing), or preparing the
            run failed after it was recorded.
    """
    schedule = located.schedule
    project_dir = Path(located.project.path)
    store = RunStore(home)
    if dry_run:
        record = execute(
            _request(located, home, trigger, dry_run=True, runtime=runtime), observer=observer
        )
        return Firing(record.status, record.exit_code, record=record)
    wait = 0.0 if schedule.overlap is Overlap.SKIP else (schedule.timeout or QUEUE_WAIT)
    lock = home / LOCK_FOLDER / f"{located.project_id}.{schedule.name}.lock"
    with contextlib.ExitStack() as stack:
        try:
            stack.enter_context(file_lock(lock, timeout=wait))
            # every host sharing a PostgreSQL history: one firing of a schedule at a time
            shared = ("schedule", located.project_id, schedule.name)
            stack.enter_context(
                store.shared_lock(shared, name=f"schedule {schedule.name}", timeout=wait)
            )
        except LockTimeoutError as e:
            return _overlapped(store, located, trigger, project_dir, wait, e)
        notes: tuple[str, ...] = ()
        if schedule.fetch:
            try:
                commits.fetch(project_dir, timeout=_fetch_timeout(schedule))
            except DotError as e:
                if not schedule.fetch_optional:
                    return _failed_fetch(store, located, trigger, project_dir, e)
                notes = (f"warning: {e.message}; building the refs as they are (--fetch-optional)",)
        record = execute(
            _request(located, home, trigger, notes=notes, runtime=runtime), observer=observer
        )
        return Firing(record.status, record.exit_code, run_id=record.run_id, record=record)
    raise AssertionError("unreachable")  # pragma: no cover - the with block always returns


def spec_to_build(schedule: Schedule) -> Spec:
    """What a firing builds: the spec, with a pinned schedule's ref replaced by its commit."""
    spec = parse_spec(schedule.spec)
    if schedule.pinned_commit is not None:
        return Spec(env=spec.env, ref=schedule.pinned_commit)
    return spec


def _request(
    located: Located,
    home: Path,
    trigger: Trigger,
    *,
    dry_run: bool = False,
    notes: tuple[str, ...] = (),
    runtime: str | None = None,
) -> RunRequest:
    schedule = located.schedule
    project_dir = Path(located.project.path)
    spec = spec_to_build(schedule)
    dbt_args = list(schedule.dbt_args)
    return RunRequest(
        command=tuple(schedule.command),
        spec=spec,
        project_dir=project_dir,
        dbt_args=tuple(dbt_args),
        dry_run=dry_run,
        timeout=schedule.timeout,
        trigger=trigger,
        runtime=runtime,
        schedule=schedule.name,
        notes=notes,
        **state_options(schedule),
    )


def state_options(schedule: Schedule) -> dict[str, Any]:
    """The `RunRequest` fields of a schedule's deferred and compared state."""
    return {
        "defer": parse_defer_spec(schedule.defer) if schedule.defer else None,
        "state_source": schedule.state_source,
        "state_from": parse_state_from_spec(schedule.state_from) if schedule.state_from else None,
        "max_state_age": schedule.max_state_age,
    }


def _fetch_timeout(schedule: Schedule) -> float:
    return min(FETCH_TIMEOUT, schedule.timeout) if schedule.timeout else FETCH_TIMEOUT


def _overlapped(
    store: RunStore,
    located: Located,
    trigger: Trigger,
    project_dir: Path,
    waited: float,
    error: LockTimeoutError,
) -> Firing:
    name = located.schedule.name
    holder = _holder(error)
    if located.schedule.overlap is Overlap.SKIP:
        message = f"skipped: the previous run of schedule '{name}'{holder} is still running"
        end = RunEnd(RunStatus.SKIPPED, int(ExitCode.OK), error_class="overlap",
                     error_message=message,
                     suggestion="nothing to do; use --overlap queue to wait for it instead")  # fmt: skip
        run_id = _record(store, located, trigger, project_dir, end)
        return Firing(RunStatus.SKIPPED, ExitCode.OK, run_id=run_id, message=message)
    message = (
        f"waited {waited:g}s for the previous run of schedule '{name}'{holder} to finish; "
        "this firing did not run"
    )
    end = RunEnd(RunStatus.TIMEOUT, int(ExitCode.TIMEOUT), error_class="LockTimeoutError",
                 error_message=message,
                 suggestion="raise the schedule's --timeout, or find why runs take so long: "
                 "dot logs --status running")  # fmt: skip
    run_id = _record(store, located, trigger, project_dir, end)
    return Firing(RunStatus.TIMEOUT, ExitCode.TIMEOUT, run_id=run_id, message=message)


def _failed_fetch(
    store: RunStore, located: Located, trigger: Trigger, project_dir: Path, error: DotError
) -> Firing:
    message = f"{error.message}; nothing was built (the refs were not updated)"
    hint = f"{error.hint}; or mark the fetch optional: dot schedule add ... --fetch-optional"
    end = RunEnd(RunStatus.FAILED, int(ExitCode.RUNTIME_FAILURE), error_class="FetchError",
                 error_message=message, suggestion=hint)  # fmt: skip
    run_id = _record(store, located, trigger, project_dir, end)
    return Firing(RunStatus.FAILED, ExitCode.RUNTIME_FAILURE, run_id=run_id, message=message)


def _record(
    store: RunStore, located: Located, trigger: Trigger, project_dir: Path, end: RunEnd
) -> str:
    schedule = located.schedule
    spec = spec_to_build(schedule)
    start = RunStart(
        project=project_name(project_dir),
        spec=str(spec),
        command=tuple(schedule.command),
        argv=tuple(schedule.dbt_args),
        env=spec.env,
        ref=spec.ref,
        commit=schedule.pinned_commit,
        runtime=located.project.runtime,
        trigger=trigger.value,
        started_at=datetime.now(UTC),
        schedule=schedule.name,
    )
    run_id = store.begin(start)
    with store.output(run_id) as out:
        out.line("stderr", f"dot: {end.error_message}")
        if end.suggestion:
            out.line("stderr", f"hint: {end.suggestion}")
    store.finish(run_id, end)
    return run_id


def _holder(error: LockTimeoutError) -> str:
    # The lock's message names the holder's pid ("process 1234, by its own record").
    marker = "(process "
    if marker not in error.message:
        return ""
    pid = error.message.split(marker, 1)[1].split(",", 1)[0].split(")", 1)[0]
    if "held by host " in error.message:  # a lock shared by the hosts of a PostgreSQL history
        host = error.message.split("held by host ", 1)[1].split(" ", 1)[0]
        return f" (on {host}, pid {pid})" if pid.isdigit() else f" (on {host})"
    return f" (pid {pid})" if pid.isdigit() else ""
