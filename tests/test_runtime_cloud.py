"""The `cloud` runtime against a local double of the dbt Cloud Admin API v2 over real HTTP."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from datum_dot.errors import BadInputError, ConfigError, ExitCode, UsageError
from datum_dot.runs.runner import RetryPolicy, Runner
from datum_dot.runtimes.base import ErrorClass, RuntimeContext, RuntimeUnavailableError
from datum_dot.runtimes.cloud import CloudRuntime
from datum_dot.runtimes.cloudapi import CloudConfigError, CloudError, Run, RunStatus
from datum_dot.runtimes.cloudjob import build_step, parse_settings
from tests.helpers.cloud_double import (
    ACCOUNT,
    CANCELLED_JOB,
    ERROR_JOB,
    LOG_LINES,
    NEVER_JOB,
    SUCCESS_JOB,
    TOKEN,
    CloudDouble,
    serve,
)
from tests.helpers.example import BIN, ExampleProject
from tests.helpers.signals import default_sigint

TOKEN_ENV = "DBT_CLOUD_API_TOKEN"  # noqa: S105 - a variable name, not a token


class Sink:
    """An output sink that keeps every line."""

    def __init__(self) -> None:
        self.lines: list[tuple[str, str]] = []

    def line(self, stream: str, text: str) -> None:
        self.lines.append((stream, text))

    def texts(self) -> list[str]:
        return [text for _, text in self.lines]


@pytest.fixture
def cloud() -> Iterator[tuple[CloudDouble, str]]:
    double = CloudDouble()
    with serve(double) as url:
        yield double, url


def settings(url: str, **overrides: Any) -> dict[str, Any]:
    return {
        "account_id": ACCOUNT,
        "api_token_env": TOKEN_ENV,
        "job_ids": {"build": SUCCESS_JOB, "run": SUCCESS_JOB, "default": SUCCESS_JOB},
        "base_url": url,
        "poll_interval_seconds": 0.02,
        "poll_max_interval_seconds": 0.05,
        "retry_delays_seconds": [0.05, 0.1, 0.2],
        **overrides,
    }


def runtime(
    url: str,
    tmp_path: Path,
    *,
    token: str = TOKEN,
    environ: dict[str, str] | None = None,
    use_cache: bool = True,
    **overrides: Any,
) -> CloudRuntime:
    context = RuntimeContext(
        project_dir=tmp_path,
        environ={TOKEN_ENV: token, **(environ or {})},
        git_sha="c0ffee" * 6 + "abcd",
        schema="analytics_c0ffeec0",
        target="prod",
        threads=4,
        target_path=tmp_path / "target",
        use_cache=use_cache,
    )
    made = CloudRuntime.from_settings(settings(url, **overrides), context)
    assert isinstance(made, CloudRuntime)
    return made


BUILD = ["build", "--project-dir", "/local/p", "--profiles-dir", "/local/p", "--target", "prod",
         "--threads", "2", "--vars", '{"a":1}', "--select", "orders"]  # fmt: skip


# --- trigger, poll, logs, artifacts ----------------------------------------------------------


def test_cloud_success_run_triggers_polls_streams_and_fetches(
    cloud: tuple[CloudDouble, str], tmp_path: Path
) -> None:
    double, url = cloud
    sink, events = Sink(), []
    result = runtime(url, tmp_path).invoke(
        BUILD, env={}, output=sink, on_event=lambda n, d: events.append((n, dict(d)))
    )
    assert result.success
    assert result.dbt_exit_code == 0
    assert result.statuses == ("success", "success", "pass")
    [run] = double.runs.values()
    assert run.body == {
        "cause": "Triggered by datum-dot",
        "git_sha": "c0ffee" * 6 + "abcd",
        "schema_override": "analytics_c0ffeec0",
        "steps_override": ["dbt build --vars '{\"a\":1}' --select orders"],
        "threads_override": 2,
        "target_name_override": "prod",
    }
    assert run.polls >= 4  # queued, starting, running (twice), then success
    texts = sink.texts()
    for line in LOG_LINES:
        assert texts.count(line) == 1, texts  # each log line once, however many polls saw it
    assert [texts.index(line) for line in LOG_LINES] == sorted(
        texts.index(line) for line in LOG_LINES
    )
    assert any("dbt Cloud run" in t and "queued" in t.lower() for t in texts)
    names = [n for n, _ in events]
    assert names.count("NodeStart") == 2
    assert names.count("NodeFinished") == 2
    assert result.metadata["cloud_run_id"] == run.id
    assert result.metadata["cloud_job_id"] == SUCCESS_JOB
    cached = tmp_path / ".dot" / "cloud-cache" / str(run.id)
    assert json.loads((cached / "run_results.json").read_text())["metadata"]["run"] == run.id
    meta = json.loads((cached / "metadata.json").read_text())
    assert meta["run_id"] == str(run.id)
    assert meta["account_id"] == str(ACCOUNT)
    assert meta["job_id"] == str(SUCCESS_JOB)
    assert meta["artifacts"] == ["manifest.json", "run_results.json"]
    assert datetime.fromisoformat(meta["cached_at"]).utcoffset() == timedelta(0)
    assert (tmp_path / "target" / "manifest.json").is_file()  # copied to the local target
    assert (tmp_path / ".dot" / ".gitignore").read_text() == "*\n"


def test_cloud_error_run_fails_with_database_class(
    cloud: tuple[CloudDouble, str], tmp_path: Path
) -> None:
    _, url = cloud
    rt = runtime(url, tmp_path, job_ids={"build": ERROR_JOB})
    result = Runner(rt).invoke(["build"], env={})
    assert not result.success
    assert result.dbt_exit_code == 1
    assert "error" in result.statuses
    assert result.error == "Database Error in model orders"
    assert result.error_class is ErrorClass.DATABASE
    assert result.suggestion is not None
    assert "model.jaffle.orders" in result.suggestion
    assert result.attempts == 1  # a database error is not retried


def test_cloud_run_cancelled_remotely_is_interrupted(
    cloud: tuple[CloudDouble, str], tmp_path: Path
) -> None:
    _, url = cloud
    result = runtime(url, tmp_path, job_ids={"build": CANCELLED_JOB}).invoke(["build"], env={})
    assert result.interrupted
    assert not result.success
    assert not result.timed_out


def test_cloud_timeout_cancels_the_remote_run(
    cloud: tuple[CloudDouble, str], tmp_path: Path
) -> None:
    double, url = cloud
    started = time.monotonic()
    result = runtime(url, tmp_path, job_ids={"build": NEVER_JOB}).invoke(
        ["build"], env={}, timeout=0.5
    )
    assert result.timed_out
    assert not result.success
    assert time.monotonic() - started < 5
    [run] = double.runs.values()
    assert run.cancelled
    assert run.status == int(RunStatus.CANCELLED)
    assert double.count("POST", f"/runs/{run.id}/cancel/") == 1


def test_cloud_ctrl_c_while_polling_cancels_the_remote_run(
    cloud: tuple[CloudDouble, str], tmp_path: Path
) -> None:
    double, url = cloud
    polls = []

    def sleep(seconds: float) -> None:  # the user presses Ctrl-C during the third wait
        polls.append(seconds)
        if len(polls) == 3:
            raise KeyboardInterrupt

    rt = runtime(url, tmp_path, job_ids={"build": NEVER_JOB})
    rt = CloudRuntime(rt.settings, TOKEN, context=RuntimeContext(project_dir=tmp_path), sleep=sleep)
    result = rt.invoke(["build"], env={})
    assert result.interrupted
    assert not result.timed_out
    [run] = double.runs.values()
    assert run.cancelled
    assert polls[1] > polls[0]  # the poll interval backs off


def test_cloud_deps_runs_here_not_in_cloud(cloud: tuple[CloudDouble, str], tmp_path: Path) -> None:
    double, url = cloud
    sink = Sink()
    empty = tmp_path / "no_project"
    empty.mkdir()
    result = runtime(url, tmp_path).invoke(
        ["deps", "--project-dir", str(empty), "--log-path", str(tmp_path / "logs")],
        env={},
        output=sink,
    )
    assert not result.success  # dbt-core ran here, and found no dbt_project.yml
    assert result.error is not None
    assert "dbt_project.yml" in result.error
    assert double.requests == []
    assert "for the local isolation check" in sink.texts()[0]


# --- faults ------------------------------------------------------------------------------


def test_cloud_401_says_token_rejected(cloud: tuple[CloudDouble, str], tmp_path: Path) -> None:
    _, url = cloud
    with pytest.raises(CloudConfigError) as caught:
        runtime(url, tmp_path, token="wrong-token").invoke(["build"], env={})  # noqa: S106
    assert "401" in caught.value.message
    assert TOKEN_ENV in caught.value.message
    assert "wrong-token" not in caught.value.message + caught.value.hint
    assert caught.value.exit_code is ExitCode.BAD_INPUT


def test_cloud_403_says_permission(cloud: tuple[CloudDouble, str], tmp_path: Path) -> None:
    _, url = cloud
    with pytest.raises(CloudConfigError) as caught:
        runtime(url, tmp_path, account_id=ACCOUNT + 1).invoke(["build"], env={})
    assert "403 Forbidden" in caught.value.message
    assert "permission" in caught.value.hint


def test_cloud_404_names_the_job(cloud: tuple[CloudDouble, str], tmp_path: Path) -> None:
    _, url = cloud
    with pytest.raises(CloudConfigError) as caught:
        runtime(url, tmp_path, job_ids={"build": 999}).invoke(["build"], env={})
    assert "job 999" in caught.value.message
    assert "404" in caught.value.message
    assert "job_ids" in caught.value.hint


def test_cloud_429_waits_for_retry_after(cloud: tuple[CloudDouble, str], tmp_path: Path) -> None:
    double, url = cloud
    double.fail_next(429, path="/run/", headers={"Retry-After": "1"})
    started = time.monotonic()
    result = runtime(url, tmp_path).invoke(["build"], env={})
    assert result.success
    assert time.monotonic() - started >= 1.0  # Retry-After, not the 0.05 s backoff
    assert double.count("POST", f"/jobs/{SUCCESS_JOB}/run/") == 2


def test_cloud_500_then_success_is_retried(cloud: tuple[CloudDouble, str], tmp_path: Path) -> None:
    double, url = cloud
    double.fail_next(500, path="/runs/", method="GET", times=2)
    result = runtime(url, tmp_path).invoke(["build"], env={})
    assert result.success
    assert double.count("GET", "/runs/") >= 6  # two failed polls and the normal ones


def test_cloud_5xx_after_every_retry_is_transient(
    cloud: tuple[CloudDouble, str], tmp_path: Path
) -> None:
    double, url = cloud
    double.fail_next(503, path="/run/", times=50)
    result = runtime(url, tmp_path).invoke(["build"], env={})
    assert not result.success
    assert result.error_class is ErrorClass.CONNECTION
    assert result.error is not None
    assert "503" in result.error
    assert "after 4 attempts" in result.error
    assert double.count("POST", "/run/") == 4  # the first try and the 3 retries (2, 4, 8 s scaled)


def test_runner_retries_a_transient_cloud_failure(
    cloud: tuple[CloudDouble, str], tmp_path: Path
) -> None:
    double, url = cloud
    double.fail_next(502, path="/run/", times=4)  # every retry of the client's first attempt
    notices: list[str] = []
    runner = Runner(
        runtime(url, tmp_path), policy=RetryPolicy(retries=2, delay=0.05), on_notice=notices.append
    )
    result = runner.invoke(["build"], env={})
    assert result.success
    assert result.attempts == 2
    assert len(notices) == 1
    assert "attempt 1 of 3 failed (connection)" in notices[0]


def test_cloud_retry_uses_the_retry_endpoint(
    cloud: tuple[CloudDouble, str], tmp_path: Path
) -> None:
    double, url = cloud
    rt = runtime(url, tmp_path, job_ids={"build": ERROR_JOB})
    failed = rt.invoke(["build"], env={})
    assert not failed.success
    assert sorted(failed.statuses) == ["error", "skipped", "success"]
    again = rt.retry(failed, ["build"], env={})
    assert again.success
    assert again.metadata["cloud_run_id"] != failed.metadata["cloud_run_id"]
    assert double.count("POST", f"/runs/{failed.metadata['cloud_run_id']}/retry/") == 1
    assert double.count("POST", "/run/") == 1  # no second trigger of the job
    retried = double.runs[int(str(again.metadata["cloud_run_id"]))]
    assert retried.body["retry_of"] == failed.metadata["cloud_run_id"]


def test_cloud_response_with_wrong_shape_is_refused(
    cloud: tuple[CloudDouble, str], tmp_path: Path
) -> None:
    double, url = cloud
    double.fail_next(200, path="/run/")  # an envelope whose data is null
    with pytest.raises(CloudError) as caught:
        runtime(url, tmp_path).invoke(["build"], env={})
    assert "API v2 shape" in caught.value.message


# --- the artifact cache --------------------------------------------------------------------


def test_cloud_cache_hit_miss_and_expiry(cloud: tuple[CloudDouble, str], tmp_path: Path) -> None:
    double, url = cloud
    rt = runtime(url, tmp_path)
    run_id = rt.invoke(["build"], env={}).metadata["cloud_run_id"]
    assert isinstance(run_id, int)
    fetched = double.count("GET", "/artifacts/")
    folder = rt.artifacts_dir(run_id)  # hit: nothing fetched
    assert folder == tmp_path / ".dot" / "cloud-cache" / str(run_id)
    assert double.count("GET", "/artifacts/") == fetched
    meta_path = folder / "metadata.json"
    meta = json.loads(meta_path.read_text())
    meta["cached_at"] = (datetime.now(UTC) - timedelta(hours=25)).isoformat()
    meta_path.write_text(json.dumps(meta))
    assert rt.artifacts_dir(run_id) == folder  # expired: fetched again
    assert double.count("GET", "/artifacts/") == fetched + 3  # the list and two files
    renewed = datetime.fromisoformat(json.loads(meta_path.read_text())["cached_at"])
    assert datetime.now(UTC) - renewed < timedelta(minutes=1)
    (folder / "manifest.json").unlink()  # incomplete: a miss
    rt.artifacts_dir(run_id)
    assert double.count("GET", "/artifacts/") == fetched + 6


@pytest.mark.parametrize("how", ["DOT_DISABLE_CACHE", "--no-cache"])
def test_cloud_cache_bypassed(cloud: tuple[CloudDouble, str], tmp_path: Path, how: str) -> None:
    double, url = cloud
    if how == "DOT_DISABLE_CACHE":
        rt = runtime(url, tmp_path, environ={"DOT_DISABLE_CACHE": "true"})
    else:
        rt = runtime(url, tmp_path, use_cache=False)
    result = rt.invoke(["build"], env={})
    run_id = result.metadata["cloud_run_id"]
    assert isinstance(run_id, int)
    assert result.statuses == ("success", "success", "pass")
    fetched = double.count("GET", "/artifacts/")
    rt.artifacts_dir(run_id)
    assert double.count("GET", "/artifacts/") == fetched + 3
    assert not (tmp_path / ".dot" / "cloud-cache").exists()
    assert rt.get_runtime_metadata()["cache"] is False


def test_cloud_get_manifest_reads_the_jobs_latest_run(
    cloud: tuple[CloudDouble, str], tmp_path: Path
) -> None:
    double, url = cloud
    first = runtime(url, tmp_path).invoke(["build"], env={})
    fresh = runtime(url, tmp_path)  # a new session: no run of its own
    manifest = fresh.get_manifest(tmp_path)
    assert manifest["metadata"] == {"dbt_version": "1.11.0", "run": first.metadata["cloud_run_id"]}
    assert double.count("GET", "/runs/") >= 1
    assert fresh.get_run_results(tmp_path)["metadata"] == {"run": first.metadata["cloud_run_id"]}


# --- parallel and concurrent use -----------------------------------------------------------


def test_cloud_run_models_fan_out_in_parallel(
    cloud: tuple[CloudDouble, str], tmp_path: Path
) -> None:
    double, url = cloud
    runner = Runner(runtime(url, tmp_path, use_cache=False))
    results = runner.run_models(
        ["a", "b", "c", "d"],
        project_dir=tmp_path,
        profiles_dir=tmp_path,
        target="prod",
        parallel=True,
    )
    assert [r.success for r in results] == [True] * 4
    assert all(r.models_run == 2 and r.tests_run == 1 for r in results)
    assert double.max_active >= 2  # runs overlapped
    steps = sorted(run.body["steps_override"][0] for run in double.runs.values())
    assert steps == [f"dbt run --select {m}" for m in "abcd"]


def test_cloud_runner_concurrent_callers_share_nothing(
    cloud: tuple[CloudDouble, str], tmp_path: Path
) -> None:
    _, url = cloud
    runner = Runner(runtime(url, tmp_path, job_ids={"build": SUCCESS_JOB, "test": ERROR_JOB}))
    outcomes: dict[str, Any] = {}

    def call(command: str) -> None:
        sink = Sink()
        outcomes[command] = (runner.invoke([command], env={}, output=sink), sink)

    threads = [threading.Thread(target=call, args=(c,)) for c in ("build", "test")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    (built, built_sink), (tested, tested_sink) = outcomes["build"], outcomes["test"]
    assert built.success
    assert not tested.success
    assert built.metadata["cloud_run_id"] != tested.metadata["cloud_run_id"]
    assert all(str(tested.metadata["cloud_run_id"]) not in t for t in built_sink.texts())
    assert all(str(built.metadata["cloud_run_id"]) not in t for t in tested_sink.texts())


# --- settings and steps --------------------------------------------------------------------


def test_cloud_settings_missing_account_is_bad_input() -> None:
    with pytest.raises(ConfigError) as caught:
        parse_settings({"api_token_env": TOKEN_ENV, "job_id": 1})
    assert "runtimes.cloud.account_id" in caught.value.message
    assert caught.value.exit_code is ExitCode.BAD_INPUT


def test_cloud_settings_without_job_is_bad_input() -> None:
    with pytest.raises(ConfigError) as caught:
        parse_settings({"account_id": 1, "api_token_env": TOKEN_ENV})
    assert "job_ids" in caught.value.message


def test_cloud_settings_without_token_variable_is_bad_input() -> None:
    with pytest.raises(ConfigError) as caught:
        parse_settings({"account_id": 1, "job_id": 2})
    assert "api_token_env" in caught.value.message


def test_cloud_settings_refuse_an_inline_token() -> None:
    with pytest.raises(ConfigError) as caught:
        parse_settings({"account_id": 1, "job_id": 2, "api_token": "secret-value"})
    assert "never read from config files" in caught.value.message
    assert "secret-value" not in caught.value.message + caught.value.hint


def test_cloud_token_variable_unset_is_bad_input(tmp_path: Path) -> None:
    context = RuntimeContext(project_dir=tmp_path, environ={})
    with pytest.raises(RuntimeUnavailableError) as caught:
        CloudRuntime.from_settings(settings("http://127.0.0.1:9"), context)
    assert f"{TOKEN_ENV} (runtimes.cloud.api_token_env) is not set" in caught.value.message
    assert caught.value.hint == f"export {TOKEN_ENV}=<a dbt Cloud service token>"


def test_cloud_command_without_a_job_is_bad_input(
    cloud: tuple[CloudDouble, str], tmp_path: Path
) -> None:
    _, url = cloud
    with pytest.raises(BadInputError) as caught:
        runtime(url, tmp_path, job_ids={"build": SUCCESS_JOB}).invoke(["seed"], env={})
    assert "dbt seed" in caught.value.message
    assert "job_ids.seed" in caught.value.hint


def test_build_step_drops_local_paths_and_keeps_quoting() -> None:
    step, target, threads = build_step(BUILD)
    assert step == "dbt build --vars '{\"a\":1}' --select orders"
    assert (target, threads) == ("prod", 2)
    assert build_step(["run", "--target=dev", "--log-path=/l"]) == ("dbt run", "dev", None)


def test_build_step_refuses_local_defer_state() -> None:
    with pytest.raises(UsageError):
        build_step(["build", "--defer", "--state", "/local/target"])


def test_cloud_timestamps_with_a_space_parse() -> None:
    run = Run.model_validate(
        {"id": 1, "status": 10, "finished_at": "2021-11-26 16:48:41.431645+00:00", "run_steps": []}
    )
    assert run.finished_at == datetime(2021, 11, 26, 16, 48, 41, 431645, tzinfo=UTC)
    assert run.status is RunStatus.SUCCESS
    assert run.status.is_final


# --- end to end through the installed CLI --------------------------------------------------


def write_cloud_settings(project: ExampleProject, url: str, build_job: int) -> None:
    """Configure the cloud runtime in the user's override file (where local settings go)."""
    block = settings(url, job_ids={"build": build_job})
    project.path.joinpath("dot_environments.user.yml").write_text(
        "environment:\n  all:\n    runtimes:\n      cloud: " + json.dumps(block) + "\n"
    )


@pytest.mark.slow
def test_cli_isolated_build_on_cloud_sends_commit_and_schema(
    cloud: tuple[CloudDouble, str], example: ExampleProject
) -> None:
    double, url = cloud
    write_cloud_settings(example, url, SUCCESS_JOB)
    commit = example.repo.head()
    result = example.dot(
        "build", "prod@main", "--runtime", "cloud", env={TOKEN_ENV: TOKEN, "CI": "true"}
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr
    [run] = double.runs.values()
    assert run.body["git_sha"] == commit
    assert run.body["schema_override"] == f"analytics_{commit[:8]}"
    assert run.body["target_name_override"] == "prod"
    assert run.body["threads_override"] == 2
    [step] = run.body["steps_override"]
    assert step.startswith("dbt build --indirect-selection buildable --vars ")
    assert "--project-dir" not in step
    assert "--profiles-dir" not in step
    target = example.path / ".dot" / "build" / commit[:8] / "env" / "prod" / "target"
    assert json.loads((target / "run_results.json").read_text())["metadata"]["run"] == run.id
    assert "Done." in result.stdout
    assert "SUCCESS: dbt build prod@main" in result.stderr


@pytest.mark.slow
def test_cli_ctrl_c_cancels_cloud_run_and_exits_50(
    cloud: tuple[CloudDouble, str], example: ExampleProject
) -> None:
    double, url = cloud
    write_cloud_settings(example, url, NEVER_JOB)
    proc = subprocess.Popen(
        [str(BIN / "dot"), "build", "--runtime", "cloud"],
        cwd=example.path,
        env={**os.environ, TOKEN_ENV: TOKEN},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=default_sigint,
    )
    try:
        deadline = time.monotonic() + 60
        while double.count("GET", "/runs/") < 3 and time.monotonic() < deadline:
            time.sleep(0.05)
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 50, err
    [run] = double.runs.values()
    assert run.cancelled
    assert "cancelled dbt Cloud run" in err + out
    assert "Traceback" not in err
