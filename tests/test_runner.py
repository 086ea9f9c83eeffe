"""The runner: retries of real transient faults, `dbt retry`, classification, progress, bad input."""

from __future__ import annotations

import json
import random
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from datum_dot.errors import UsageError
from datum_dot.runs.failures import classify, is_partial
from datum_dot.runs.progress import ProgressTracker
from datum_dot.runs.runner import RetryPolicy, Runner
from datum_dot.runtimes.base import ErrorClass, InvocationResult, NodeOutcome, retry_args
from datum_dot.runtimes.local import LocalRuntime
from tests.helpers.example import BIN, ExampleProject, make_example
from tests.helpers.runtime_project import hold_lock, make_runtime_project, placement

ARGS = ["build", "--project-dir", "/p", "--profiles-dir", "/home/me/.dbt", "--target", "prod"]


# --- real transient faults (slow) ----------------------------------------------------------


@pytest.fixture(scope="module")
def project(
    tmp_path_factory: pytest.TempPathFactory, module_monkeypatch: pytest.MonkeyPatch
) -> ExampleProject:
    base = tmp_path_factory.mktemp("runner")
    module_monkeypatch.setenv("DOT_EXAMPLE_DUCKDB", str(base / "warehouse.duckdb"))
    module_monkeypatch.setenv("DOT_SIDE_DB", str(base / "side.duckdb"))
    made = make_runtime_project(base)
    seeded = LocalRuntime().invoke(["seed", *placement(made), "--target", "prod"], env={})
    assert seeded.success, seeded.error
    return made


def run_args(project: ExampleProject, *extra: str) -> list[str]:
    return [*placement(project), "--target", "prod", *extra]


class Locker:
    """Another process holding a DuckDB file's lock until the runner announces a retry."""

    def __init__(self, database: Path) -> None:
        self.proc = hold_lock(database, 300)
        self.notices: list[str] = []

    def notice(self, message: str) -> None:
        self.notices.append(message)
        self.release()  # the fault goes away after the first failure, as transient faults do

    def release(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
        self.proc.wait(timeout=30)


@pytest.mark.slow
def test_runner_retries_while_another_process_locks_the_warehouse(project: ExampleProject) -> None:
    locker = Locker(project.database)
    try:
        runner = Runner(
            LocalRuntime(), policy=RetryPolicy(retries=4, delay=1), on_notice=locker.notice
        )
        result = runner.invoke(["run", *run_args(project, "-s", "stg_customers")], env={})
    finally:
        locker.release()
    notices = locker.notices
    assert result.success, result.error
    assert result.attempts == 2
    assert len(notices) == 1
    assert "attempt 1 of 5 failed (connection)" in notices[0]
    assert "Could not set lock" in notices[0]
    assert "retrying with the same command" in notices[0]  # nothing ran: no partial state


@pytest.mark.slow
def test_runner_partial_failure_resumes_with_dbt_retry(project: ExampleProject) -> None:
    locker = Locker(Path(project.database).with_name("side.duckdb"))
    try:
        runner = Runner(
            LocalRuntime(), policy=RetryPolicy(retries=3, delay=1), on_notice=locker.notice
        )
        result = runner.invoke(["run", *run_args(project, "-s", "stg_customers", "side")], env={})
    finally:
        locker.release()
    notices = locker.notices
    assert result.success, (result.error, notices)
    assert result.attempts == 2
    assert "dbt retry (only the unfinished nodes)" in notices[0]
    assert sorted((n.unique_id, n.status) for n in result.nodes) == [
        ("model.jaffle_dot.side", "success"),
        ("model.jaffle_dot.stg_customers", "success"),
    ]
    last = json.loads((project.path / "target" / "run_results.json").read_text())
    assert [r["unique_id"] for r in last["results"]] == ["model.jaffle_dot.side"]  # not rebuilt


@pytest.mark.slow
def test_runner_never_retries_a_failing_test(project: ExampleProject) -> None:
    notices: list[str] = []
    runner = Runner(
        LocalRuntime(), policy=RetryPolicy(retries=3, delay=0), on_notice=notices.append
    )
    result = runner.invoke(["test", *run_args(project, "-s", "extra_fails")], env={})
    assert not result.success
    assert result.attempts == 1
    assert notices == []
    assert result.error_class is ErrorClass.DATA_QUALITY
    assert result.suggestion is not None
    assert "test.jaffle_dot.extra_fails" in result.suggestion


@pytest.mark.slow
def test_runner_never_retries_a_compilation_error(project: ExampleProject) -> None:
    bad = project.path / "models" / "extra" / "bad_jinja.sql"
    bad.write_text("select {{ this_macro_does_not_exist() }} as x\n")
    try:
        runner = Runner(LocalRuntime(), policy=RetryPolicy(retries=3, delay=0))
        result = runner.invoke(["run", *run_args(project, "-s", "bad_jinja")], env={})
    finally:
        bad.unlink()
    assert not result.success
    assert result.attempts == 1
    assert result.error_class is ErrorClass.COMPILATION
    assert result.suggestion is not None
    assert result.suggestion.startswith("Compilation failed")


# --- classification (pure) -----------------------------------------------------------------


def failed(**kwargs: object) -> InvocationResult:
    return InvocationResult(success=False, dbt_exit_code=1, **kwargs)  # type: ignore[arg-type]


def test_classify_structured_exception_class_wins_over_text() -> None:
    result = failed(error="Compilation Error somewhere", error_class=ErrorClass.CONNECTION)
    kind, hint = classify(result, ARGS)
    assert kind is ErrorClass.CONNECTION
    assert hint == (
        "Database connection failed -> check profiles.yml credentials for target prod: "
        "/home/me/.dbt/profiles.yml; if the database was busy or locked, run again with --retries 3"
    )


def test_classify_node_statuses() -> None:
    compile_error = NodeOutcome(
        "model.p.a", "error", "Compilation Error in model a\n  'x' is undefined"
    )
    db_error = NodeOutcome(
        "model.p.b", "error", "Database Error in model b\n  relation does not exist"
    )
    lock = NodeOutcome(
        "model.p.c", "error", "Runtime Error in model c\n  IO Error: Could not set lock"
    )
    test_fail = NodeOutcome("test.p.t", "fail", "Got 3 results", failures=3)
    ok = NodeOutcome("model.p.ok", "success", "OK")
    assert classify(failed(nodes=(ok, compile_error, db_error)), ARGS)[0] is ErrorClass.COMPILATION
    assert classify(failed(nodes=(ok, db_error, lock)), ARGS)[0] is ErrorClass.DATABASE
    assert classify(failed(nodes=(ok, lock)), ARGS)[0] is ErrorClass.CONNECTION
    kind, hint = classify(failed(nodes=(ok, test_fail)), ARGS)
    assert kind is ErrorClass.DATA_QUALITY
    assert hint is not None
    assert "test.p.t" in hint
    assert is_partial(failed(nodes=(ok, lock)))
    assert not is_partial(failed(nodes=(lock,)))


def test_classify_falls_back_to_text_then_output() -> None:
    assert classify(failed(error="could not connect to server: Connection refused"), ARGS)[0] is (
        ErrorClass.CONNECTION
    )
    tail = ("Encountered an error:", "Compilation Error", "  macro 'x' is undefined")
    assert classify(failed(output_tail=tail), ARGS)[0] is ErrorClass.COMPILATION
    assert classify(failed(error="something odd"), ARGS)[0] is ErrorClass.INTERNAL


def test_classify_deps_failure_is_dependency_unless_connection() -> None:
    assert classify(failed(error="Package x was not found"), ["deps"])[0] is ErrorClass.DEPENDENCY
    assert classify(failed(error="Connection reset by peer"), ["deps"])[0] is ErrorClass.CONNECTION


def test_classify_timeout_success_and_cancel() -> None:
    kind, hint = classify(failed(timed_out=True), ARGS)
    assert kind is ErrorClass.TIMEOUT
    assert hint is not None
    assert "--timeout" in hint
    assert classify(InvocationResult(success=True, dbt_exit_code=0), ARGS) == (None, None)
    assert classify(failed(interrupted=True), ARGS) == (None, None)


def test_retry_args_keep_placement_only() -> None:
    got = retry_args([*ARGS, "--vars", "{a: 1}", "--select", "x", "--threads=4", "--full-refresh"])
    assert got == ["retry", "--project-dir", "/p", "--profiles-dir", "/home/me/.dbt", "--target",
                   "prod", "--vars", "{a: 1}", "--threads=4"]  # fmt: skip


# --- policy and progress (pure) ------------------------------------------------------------


def test_retry_policy_backs_off_exponentially_with_bounded_jitter() -> None:
    policy = RetryPolicy(retries=5, delay=2, max_delay=10, jitter=0.1)
    rng = random.Random(7)
    waits = [policy.wait(n, rng) for n in range(1, 6)]
    for wait, base in zip(waits, [2, 4, 8, 10, 10], strict=True):
        assert base <= wait <= base * 1.1
    assert len({round(w, 6) for w in waits[3:]}) == 2  # jitter: the capped waits differ


def test_retry_policy_and_runner_refuse_bad_values() -> None:
    with pytest.raises(UsageError) as caught:
        RetryPolicy(retries=-1)
    assert caught.value.exit_code == 20
    with pytest.raises(UsageError):
        Runner(LocalRuntime()).invoke(["parse"], env={}, timeout=0)


def test_progress_tracker_counts_each_node_once() -> None:
    now = [100.0]
    tracker = ProgressTracker(clock=lambda: now[0])
    node = {"node_info": {"unique_id": "model.p.a"}}
    started = tracker.on_event("LogStartLine", {**node, "index": 1, "total": 2})
    assert started is not None
    assert (started.done, started.total, started.current) == (0, 2, "model.p.a")
    now[0] = 101.5
    tracker.on_event("NodeFinished", {**node, "run_result": {"status": "success"}})
    state = tracker.on_event("LogModelResult", {**node, "status": "success", "total": 2})
    assert state is None  # the same node again: nothing changed
    tracker.on_event("NodeStart", {"node_info": {"unique_id": "test.p.t"}})
    state = tracker.on_event(
        "LogTestResult", {"node_info": {"unique_id": "test.p.t"}, "status": "fail"}
    )
    assert state is not None
    assert (state.done, state.total, state.failed, state.current) == (2, 2, 1, None)
    assert state.last_finished == ("test.p.t", "fail")
    assert state.elapsed == 1.5
    assert tracker.on_event("MainReportVersion", {}) is None


def test_progress_leaves_ephemeral_models_out_of_the_count() -> None:
    tracker = ProgressTracker(clock=lambda: 0.0)
    table = {"node_info": {"unique_id": "model.p.a", "materialized": "table"}}
    ephemeral = {"node_info": {"unique_id": "model.p.e", "materialized": "ephemeral"}}
    tracker.on_event("LogStartLine", {**table, "index": 1, "total": 1})
    tracker.on_event("NodeStart", ephemeral)
    assert (
        tracker.on_event("NodeFinished", {**ephemeral, "run_result": {"status": "success"}}) is None
    )
    state = tracker.on_event("LogModelResult", {**table, "status": "success", "total": 1})
    assert state is not None
    assert (state.done, state.total) == (1, 1)


# --- the CLI: bad input and `dot runtimes` -------------------------------------------------


@pytest.fixture(scope="module")
def cli_project(
    tmp_path_factory: pytest.TempPathFactory, module_monkeypatch: pytest.MonkeyPatch
) -> Iterator[ExampleProject]:
    base = tmp_path_factory.mktemp("runner_cli")
    module_monkeypatch.setenv("DOT_EXAMPLE_DUCKDB", str(base / "warehouse.duckdb"))
    module_monkeypatch.delenv("DBT_CLOUD_API_TOKEN", raising=False)
    made = make_example(base, monkeypatch_env=False)
    made.path.joinpath("dot_environments.user.yml").write_text(
        "environment:\n"
        "  noaccount:\n    runtime: cloud\n    runtimes: {cloud: {api_token_env: T, job_id: 1}}\n"
        "  nojob:\n    runtime: cloud\n    runtimes: {cloud: {account_id: 1, api_token_env: T}}\n"
        "  notoken:\n    runtime: cloud\n    runtimes: {cloud: {account_id: 1, job_id: 2}}\n"
        "  unset:\n    runtime: cloud\n    runtimes: {cloud: {account_id: 1, job_id: 2, api_token_env: DOT_TEST_UNSET_TOKEN}}\n"
        "  fast:\n    runtime: subprocess\n"
    )
    return made


BAD_INPUT = [
    (["--runtime", "nope"], "unknown runtime 'nope'; installed: cloud, fusion, local, subprocess"),
    (["noaccount"], "the cloud runtime needs runtimes.cloud.account_id"),
    (["nojob"], "runtimes.cloud.job_ids (or job_id) is not set"),
    (["notoken"], "the cloud runtime needs runtimes.cloud.api_token_env"),
    (
        ["unset"],
        "environment variable DOT_TEST_UNSET_TOKEN (runtimes.cloud.api_token_env) is not set",
    ),
    (["--runtime", "fusion"], "dbt Fusion is not installed"),
    (["--retries", "-1"], "--retries must be a whole number 0 or more, got '-1'"),
    (["--timeout", "0"], "--timeout must be more than 0, got '0'"),
    (["--timeout", "-5"], "--timeout '-5' is not a duration"),
    (["--timeout", "1M"], "--timeout '1M': units are lower-case"),
]


@pytest.mark.parametrize(("options", "message"), BAD_INPUT, ids=[" ".join(o) for o, _ in BAD_INPUT])
def test_cli_runtime_bad_input_exits_20(
    cli_project: ExampleProject, options: list[str], message: str
) -> None:
    result = cli_project.dot("build", *options, "--dry-run")
    assert result.returncode == 20, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 2, result.stderr
    assert lines[0].startswith("error: ")
    assert lines[1].startswith("hint: ")
    assert message in lines[0]
    assert "Traceback" not in result.stderr


def test_cli_runtimes_lists_installed_with_default(cli_project: ExampleProject) -> None:
    result = cli_project.dot("runtimes")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith("local *")
    assert "dbt-core 1.11" in lines[0]
    assert "serial" in lines[0]
    assert any(line.startswith("subprocess") and "environments: fast" in line for line in lines)
    assert any(line.startswith("fusion") and "unavailable" in line for line in lines)
    data = json.loads(cli_project.dot("runtimes", "--json").stdout)
    assert data["default"] == "local"
    by_name = {row["name"]: row for row in data["runtimes"]}
    assert set(by_name) == {"local", "subprocess", "cloud", "fusion"}
    assert by_name["subprocess"]["parallel"] is True
    assert by_name["local"]["parallel"] is False
    assert by_name["cloud"]["environments"] == ["noaccount", "nojob", "notoken", "unset"]
    assert by_name["local"]["entry_point"] == "datum_dot.runtimes.local:LocalRuntime"


def test_cli_help_lists_runtime_options() -> None:
    result = subprocess.run(
        [str(BIN / "dot"), "build", "--help"],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    for option in (
        "--runtime NAME",
        "--retries N",
        "--retry-delay DURATION",
        "--timeout DURATION",
        "--no-cache",
    ):
        assert option in result.stdout
