"""`execute()`: the one path by which every run (CLI, scheduler, webhook, SDK) reaches dbt."""

from __future__ import annotations

import logging
import os
import traceback
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from datum_dot import telemetry
from datum_dot.builds import state, workspace
from datum_dot.errors import DbtError, DotError, ExitCode, UsageError
from datum_dot.history import RunEnd, RunRecorder, RunStart, RunStore, dbartifacts
from datum_dot.history.states import HistoryStates
from datum_dot.home.settings import datum_home
from datum_dot.runs import commands, isolation, parents, warehouse
from datum_dot.runs.plan import BuildPlan
from datum_dot.runs.planner import make_plan, project_name, working_tree_commit
from datum_dot.runs.run import RunRecord, RunRequest, RunStatus, Trigger
from datum_dot.runs.runner import RetryPolicy, Runner, runtime_for
from datum_dot.runs.served import is_served
from datum_dot.runs.workdir import project_cwd
from datum_dot.runtimes.base import EventHandler, InvocationResult, OutputSink, Runtime

# Runtimes that run dbt-core against the profile here, so the warehouse can be asked beforehand.
_LOCAL_DBT_RUNTIMES = frozenset({"local", "subprocess"})


class Observer:
    """Hooks the caller may override to show progress or ask questions; all do nothing here."""

    def planned(self, plan: BuildPlan) -> None:
        """Called once the plan is valid, before anything on disk changes."""

    def starting(self, plan: BuildPlan, runtime: Runtime) -> None:
        """Called after `planned`, with the runtime chosen, before the run is recorded.

        It may wait (the Python API takes turns here for a runtime that cannot run two
        invocations in one process) or raise a `DotError`, which ends the call unrecorded.
        """

    def waiting(self, message: str) -> None:
        """Called when another process holds a lock this run needs."""

    def step(self, message: str) -> None:
        """Called at each preparation step (worktree, deps, isolation check)."""

    def event(self, name: str, data: Mapping[str, Any]) -> None:
        """Called with each dbt event, where the runtime reports events."""

    def wants_events(self) -> bool:
        """Whether `event` should be called at all: by default, where a subclass overrides it.

        dbt fires about 900 events in a build of the example project; a run in a child process
        converts and sends each one over a pipe (about 0.1 s), which nobody needs when nothing
        reads them.
        """
        return type(self).event is not Observer.event

    def line(self, stream: str, text: str) -> None:
        """Called with each line of the run's output as the history records it (dbt's lines and
        dot's notes), on the thread that reads it; `stream` is "stdout" or "stderr"."""

    def history_warning(self, message: str) -> None:
        """Called once, as the run ends, when the history could not save all of it.

        The run itself went on (a full disk under `$DATUM_HOME` does not stop dbt); `message`
        says what is missing from the history, and why.
        """

    def telemetry_warning(self, message: str) -> None:
        """Called when the run's traces cannot be sent (see `datum_dot.telemetry`).

        The run itself goes on; here the message goes to the `datum_dot.telemetry` log.
        """
        logging.getLogger("datum_dot.telemetry").warning("%s", message)


def execute(
    request: RunRequest,
    *,
    runtime: Runtime | None = None,
    observer: Observer | None = None,
    store: RunStore | None = None,
    choose_runtime: Callable[[RunRequest, BuildPlan], Runtime] | None = None,
) -> RunRecord:
    """Plan, prepare and run one dbt command, record it in the history, and say what happened.

    Args:
        request: What to run.
        runtime: What runs dbt; the one the request or environment names by default.
        choose_runtime: Chooses the runtime from the plan, where `runtime` is None (default
            `runtime_for`): an integration that must be able to stop dbt picks it without
            planning twice.
        observer: Progress and question hooks.
        store: The run history; the one in `$DATUM_HOME` by default.

    Returns:
        The record of the run. A dbt failure is a FAILED record, not an exception.

    Raises:
        DotError: Bad input (exit 20) found while planning, or a failure preparing the run;
            once the run is recorded, the record is finalized before the error propagates.
        Exception: Anything else raised once the run is recorded (a bug, an OSError, a plugin
            runtime that raises) ends the record FAILED, with the traceback in the run's log,
            and then propagates.
    """
    observer = observer or Observer()
    started = datetime.now(UTC)
    try:
        store = store or RunStore(datum_home(request.environ))
        to_db = dbartifacts.wanted(
            request.artifacts_to_db,
            os.environ if request.environ is None else request.environ,
            home=store.home,
            in_postgres=store.in_postgres,
            history=store.where,
        )
        states = HistoryStates(store)
        plan = make_plan(request, options_for=commands.command_options, states=states)
        choose = choose_runtime or runtime_for
        runtime = runtime or choose(request, plan)  # bad runtime settings fail a dry run too
    except DotError as e:
        if request.trigger is not Trigger.MANUAL and not request.dry_run:
            # Nobody watches a cron or webhook run: a spec that no longer resolves must leave a
            # FAILED record, not just a line in a log nobody reads.
            _record_planning_failure(
                store or RunStore(datum_home(request.environ)), request, started, e
            )
        raise
    if request.dry_run:
        return RunRecord(
            request=request,
            plan=plan,
            status=RunStatus.PLANNED,
            exit_code=ExitCode.OK,
            started_at=started,
            finished_at=datetime.now(UTC),
            warnings=plan.warnings,
            runtime=runtime.name,
        )
    observer.planned(plan)
    observer.starting(plan, runtime)
    # the run proper starts now: time spent answering the start-up questions is not its duration
    started = datetime.now(UTC)
    store = store or RunStore(datum_home(request.environ))
    start = _run_start(request, plan, runtime, started)
    recorder = RunRecorder(store, start, run_id=request.run_id)
    recorder.begin()
    environ = os.environ if request.environ is None else request.environ
    trace = telemetry.start_run(
        start, plan=plan, run_id=recorder.run_id, environ=environ, warn=observer.telemetry_warning
    )
    with recorder, trace:
        for note in request.notes:
            recorder.line("stderr", f"dot: {note}")
        try:
            out = _Lines(trace.sink(recorder), observer)
            on_event = trace.events(observer.event if observer.wants_events() else None)
            result = _run(request, plan, runtime, observer, out, on_event)
        except KeyboardInterrupt:
            end = RunEnd(RunStatus.CANCELLED, int(ExitCode.CANCELLED))
            _finish(recorder, end, observer, trace)
            raise
        except DotError as e:
            status = RunStatus.TIMEOUT if e.exit_code == ExitCode.TIMEOUT else RunStatus.FAILED
            recorder.line("stderr", f"error: {e.message}")
            end = RunEnd(status, int(e.exit_code), error_class=type(e).__name__,
                         error_message=e.message, suggestion=e.hint)  # fmt: skip
            _finish(recorder, end, observer, trace)
            raise
        except BaseException as e:
            # A bug, an OSError or a plugin runtime that raises: the record still ends (ABORTED
            # is for a process that was killed), and the traceback goes to the run's log.
            recorder.line("stderr", traceback.format_exc())
            end = RunEnd(RunStatus.FAILED, int(ExitCode.RUNTIME_FAILURE),
                         error_class=type(e).__name__, error_message=str(e) or None)  # fmt: skip
            _finish(recorder, end, observer, trace)
            raise
        status, code = _outcome(result)
        end = RunEnd(
            status,
            int(code),
            dbt_exit_code=result.dbt_exit_code,
            error_class=result.error_class,
            error_message=result.error,
            suggestion=result.suggestion,
            run_results=plan.target_path / "run_results.json",
            artifacts_to_db=to_db,
        )
        _finish(recorder, end, observer, trace)
        finished = datetime.now(UTC)  # before the trace is sent, which may take a while
    return RunRecord(
        request=request,
        plan=plan,
        status=status,
        exit_code=code,
        started_at=started,
        finished_at=finished,
        node_statuses=result.statuses,
        dbt_exit_code=result.dbt_exit_code,
        warnings=plan.warnings,
        error=result.error,
        error_class=result.error_class,
        suggestion=result.suggestion,
        attempts=result.attempts,
        runtime=runtime.name,
        run_id=recorder.run_id,
    )


class _Lines:
    """The history's sink for the run's output, showing each line to the observer as well."""

    def __init__(self, sink: OutputSink, observer: Observer) -> None:
        self._sink = sink
        self._observer = observer

    def line(self, stream: str, text: str) -> None:
        self._sink.line(stream, text)
        self._observer.line(stream, text)


def _finish(
    recorder: RunRecorder, end: RunEnd, observer: Observer, trace: telemetry.RunTrace
) -> None:
    recorder.finish(end)
    trace.finish(end)
    unsaved = recorder.unsaved()
    if unsaved is not None:
        observer.history_warning(unsaved)


def _run(
    request: RunRequest,
    plan: BuildPlan,
    runtime: Runtime,
    observer: Observer,
    out: OutputSink,
    on_event: EventHandler | None,
) -> InvocationResult:
    policy = RetryPolicy(retries=request.retries, delay=request.retry_delay)

    def note(message: str) -> None:
        observer.step(message)
        out.line("stderr", f"dot: {message}")

    runner = Runner(runtime, policy=policy, on_notice=note)

    def run_deps(args: Sequence[str]) -> None:
        note(f"installing dbt packages in {plan.project_dir}")
        result = runner.invoke(args, env=plan.dbt_env, on_event=on_event, output=out)
        if result.interrupted:
            raise KeyboardInterrupt  # a cancellation, recorded as one below, not a deps failure
        if not result.success:
            raise DbtError(
                f"dbt deps failed in {plan.project_dir}"
                + (f": {result.error}" if result.error else ""),
                f"run it by hand to see why: dbt {' '.join(args)}",
            )

    def wait(message: str) -> None:
        observer.waiting(message)
        out.line("stderr", f"dot: {message}")

    environ = os.environ if request.environ is None else request.environ
    if plan.state_from is not None or plan.baseline is not None:
        _prepare_state(request, plan, runtime, runner, out, note, run_deps, wait, environ)
    # dbt resolves a profile's relative paths (a DuckDB file) from the project folder
    with (
        project_cwd(plan.source_project_dir),
        workspace.prepared(plan, run_deps=run_deps, on_wait=wait),
        warehouse.writing(
            warehouse.single_writer_file(plan, environ),
            locks_dir=datum_home(request.environ) / "locks",
            timeout=request.timeout,
            on_wait=wait,
        ) as waited,
    ):
        if plan.check_isolation:
            _check_isolation(plan, runtime, note, environ)
        if parents.needs_check(plan) and runtime.name in _LOCAL_DBT_RUNTIMES:
            _check_parents(plan, note)
        timeout = None if request.timeout is None else max(request.timeout - waited, 0.01)
        return runner.invoke(
            plan.dbt_args,
            env=plan.dbt_env,
            on_event=on_event,
            output=out,
            timeout=timeout,
        )


def _prepare_state(
    request: RunRequest,
    plan: BuildPlan,
    runtime: Runtime,
    runner: Runner,
    out: OutputSink,
    note: Callable[[str], None],
    run_deps: Callable[[Sequence[str]], None],
    wait: Callable[[str], None],
    environ: Mapping[str, str],
) -> None:
    """Parse the `--state-from` commit and fetch dbt Cloud state before dbt runs."""
    if plan.state_from is not None and runtime.name not in _LOCAL_DBT_RUNTIMES:
        raise UsageError(
            f"--state-from parses {plan.state_from.spec} with dbt-core here; runtime "
            f"{runtime.name} runs dbt elsewhere",
            "run with --runtime local (or subprocess), or drop --state-from",
        )

    def invoke(args: Sequence[str], env: Mapping[str, str]) -> InvocationResult:
        return runner.invoke(args, env=env, on_event=None, output=out)

    with project_cwd(plan.source_project_dir):
        state.prepare_state(
            plan,
            invoke=invoke,
            run_deps=run_deps,
            note=note,
            on_wait=wait,
            environ=environ,
            use_cache=request.cache,
        )


def _record_planning_failure(
    store: RunStore, request: RunRequest, started: datetime, error: DotError
) -> None:
    start = RunStart(
        project=project_name(request.project_dir),
        spec=str(request.spec),
        command=request.command,
        env=request.spec.env,
        ref=request.spec.ref,
        runtime=request.runtime or "local",
        trigger=request.trigger.value,
        started_at=started,
        schedule=request.schedule,
        retry_of=request.retry_of,
    )
    with RunRecorder(store, start, run_id=request.run_id) as recorder:
        recorder.begin()
        recorder.line("stderr", f"error: {error.message}")
        if error.hint:
            recorder.line("stderr", f"hint: {error.hint}")
        recorder.finish(
            RunEnd(RunStatus.FAILED, int(error.exit_code), error_class=type(error).__name__,
                   error_message=error.message, suggestion=error.hint),
        )  # fmt: skip


def _run_start(
    request: RunRequest, plan: BuildPlan, runtime: Runtime, started: datetime
) -> RunStart:
    iso = plan.isolated
    return RunStart(
        project=project_name(plan.source_project_dir),
        spec=str(request.spec),
        command=request.command,
        argv=plan.dbt_args,
        env=plan.env.name,
        ref=request.spec.ref,
        commit=iso.commit if iso is not None else working_tree_commit(plan.source_project_dir),
        runtime=runtime.name,
        trigger=request.trigger.value,
        started_at=started,
        schedule=request.schedule,
        state=plan.state_json(),
        warm=is_served(),
        retry_of=request.retry_of,
    )


def _check_isolation(
    plan: BuildPlan,
    runtime: Runtime,
    note: Callable[[str], None],
    environ: Mapping[str, str],
) -> None:
    iso = plan.isolated
    assert iso is not None  # noqa: S101 - only isolated plans are checked
    note("checking that every node lands in the isolated schema")
    targets = runtime.parse_targets(plan.parse_args, env=plan.dbt_env)
    schema = isolation.expected_schema(iso.profile.schema_after, environ)
    offenders = isolation.find_offenders(targets, schema=schema, short_hash=iso.short_hash)
    isolation.raise_for_offenders(offenders, schema=schema or iso.profile.schema_after)


def _check_parents(plan: BuildPlan, note: Callable[[str], None]) -> None:
    note("checking that the selection's parents are built")
    missing = parents.missing_parents(plan)
    if missing is None:
        note("could not tell whether the selection's parents are built; dbt will say")
        return
    parents.raise_for_missing(plan, missing)


def _outcome(result: InvocationResult) -> tuple[RunStatus, ExitCode]:
    if result.timed_out:
        return RunStatus.TIMEOUT, ExitCode.TIMEOUT
    if result.interrupted:
        return RunStatus.CANCELLED, ExitCode.CANCELLED
    if not result.success:
        return RunStatus.FAILED, ExitCode.RUNTIME_FAILURE
    if "warn" in result.statuses:
        return RunStatus.SUCCESS, ExitCode.WARNINGS
    return RunStatus.SUCCESS, ExitCode.OK
