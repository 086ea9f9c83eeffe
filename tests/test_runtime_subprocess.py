"""The `subprocess` runtime on the example project: real dbt CLI child processes on DuckDB."""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import pytest

from datum_dot.runs.runner import Runner
from datum_dot.runtimes import artifacts
from datum_dot.runtimes.base import ErrorClass, RunResult, RuntimeUnavailableError
from datum_dot.runtimes.local import LocalRuntime
from datum_dot.runtimes.subprocess import SubprocessRuntime
from tests.helpers.example import BIN, ExampleProject
from tests.helpers.runtime_project import (
    EXCLUDE,
    is_alive,
    make_runtime_project,
    placement,
    sleepers,
    wait_for,
)
from tests.helpers.signals import ignore_sigint, is_sigint_ignored, parent_pid

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("runtime_subprocess")]


class Sink:
    """An output sink that keeps every line."""

    def __init__(self) -> None:
        self.lines: list[tuple[str, str]] = []

    def line(self, stream: str, text: str) -> None:
        self.lines.append((stream, text))


@dataclass(frozen=True)
class Built:
    """The project built once in process (local) and once with the dbt CLI (subprocess)."""

    project: ExampleProject
    local: RunResult
    subprocess: RunResult
    local_statuses: Counter[str]
    subprocess_statuses: Counter[str]
    sink: Sink


@pytest.fixture(scope="module")
def built(
    tmp_path_factory: pytest.TempPathFactory, module_monkeypatch: pytest.MonkeyPatch
) -> Built:
    base = tmp_path_factory.mktemp("subprocess")
    module_monkeypatch.setenv("DOT_EXAMPLE_DUCKDB", str(base / "warehouse.duckdb"))
    module_monkeypatch.setenv("DOT_TEST_MARKER", str(base / "marker"))
    project = make_runtime_project(base)
    args = ["build", *placement(project), "--target", "prod", *EXCLUDE]
    target = project.path / "target"
    results: list[RunResult] = []
    statuses: list[Counter[str]] = []
    sink = Sink()
    for rt in (LocalRuntime(), SubprocessRuntime()):
        started = time.perf_counter()
        got = rt.invoke(args, env={}, output=sink if isinstance(rt, SubprocessRuntime) else None)
        assert got.success, got.error
        results.append(
            artifacts.run_result(
                success=got.success,
                target=target,
                seconds=time.perf_counter() - started,
                metadata={},
            )
        )
        statuses.append(Counter(got.statuses))
    return Built(project, results[0], results[1], statuses[0], statuses[1], sink)


def test_local_and_subprocess_build_agree_on_counts(built: Built) -> None:
    local, sub = built.local, built.subprocess
    assert (local.models_run, local.tests_run, local.failures) == (
        sub.models_run,
        sub.tests_run,
        sub.failures,
    )
    assert local.models_run >= 5
    assert local.tests_run >= 20
    assert local.failures == 0
    assert built.local_statuses == built.subprocess_statuses
    assert built.project.query("select count(*) from analytics.orders")[0][0] > 0


def test_subprocess_sends_every_line_to_sink_and_terminal(
    built: Built, capfd: pytest.CaptureFixture[str]
) -> None:
    texts = [text for _, text in built.sink.lines]
    assert any(t.startswith("Running with dbt=") for t in texts)
    assert any(re.match(r"\d+ of \d+ OK created", t) for t in texts)
    assert not any(t.startswith("{") for t in texts)  # JSON log lines are shown as their text
    sink = Sink()
    result = SubprocessRuntime().invoke(
        ["ls", *placement(built.project), "--target", "prod", "-s", "stg_orders"],
        env={},
        output=sink,
    )
    assert result.success
    out = capfd.readouterr().out.splitlines()
    assert out
    assert all(re.match(r"\[\d\d:\d\d:\d\d\] ", line) for line in out)
    assert [line[11:] for line in out] == [text for _, text in sink.lines]


def test_subprocess_run_models_and_run_tests_report_counts(built: Built) -> None:
    rt = SubprocessRuntime()
    path = built.project.path
    models = rt.run_models(path, path, "prod", select="stg_orders+", exclude="path:models/extra")
    assert models.success
    assert models.models_run == 4
    assert models.tests_run == 0
    assert models.run_results_path == path / "target" / "run_results.json"
    tests = rt.run_tests(path, path, "prod", select="stg_customers")
    assert tests.success
    assert tests.tests_run >= 3
    assert tests.models_run == 0
    assert tests.failures == 0
    assert rt.get_run_results(path)["results"]
    assert rt.compile_project(path, path, "prod") == path / "target" / "manifest.json"


def test_subprocess_reads_256k_of_stderr_without_deadlock(built: Built) -> None:
    sink = Sink()
    result = SubprocessRuntime().invoke(
        ["run", *placement(built.project), "--target", "prod", "-s", "noisy"],
        env={},
        output=sink,
        timeout=120,
    )
    assert result.success, result.error
    longest = max(len(text) for stream, text in sink.lines if stream == "stderr")
    assert longest >= 262144


def test_subprocess_keeps_dbts_exit_code_and_classifies(built: Built) -> None:
    result = Runner(SubprocessRuntime()).invoke(
        ["run", *placement(built.project), "--target", "prod", "-s", "broken"], env={}
    )
    assert not result.success
    assert result.dbt_exit_code == 1
    assert result.statuses == ("error",)
    assert result.error_class is ErrorClass.DATABASE


def test_subprocess_uses_the_dbt_next_to_python_not_path(built: Built, tmp_path: Path) -> None:
    decoy = tmp_path / "bin" / "dbt"
    decoy.parent.mkdir()
    decoy.write_text(f"#!/bin/sh\ntouch {tmp_path / 'decoy-ran'}\nexit 3\n")
    decoy.chmod(0o755)
    old_path = os.environ["PATH"]
    os.environ["PATH"] = f"{decoy.parent}:{old_path}"
    try:
        rt = SubprocessRuntime()
        result = rt.invoke(["parse", *placement(built.project), "--target", "prod"], env={})
    finally:
        os.environ["PATH"] = old_path
    assert result.success
    assert not (tmp_path / "decoy-ran").exists()
    assert rt.executable == Path(sys.executable).parent / "dbt"
    assert rt.get_runtime_metadata()["executable"] == str(Path(sys.executable).parent / "dbt")


def test_subprocess_missing_dbt_path_is_bad_input(tmp_path: Path) -> None:
    from datum_dot.runtimes.base import RuntimeContext

    with pytest.raises(RuntimeUnavailableError) as caught:
        SubprocessRuntime.from_settings({"dbt_path": str(tmp_path / "nope")}, RuntimeContext())
    assert str(tmp_path / "nope") in caught.value.message
    assert "dbt_path" in caught.value.hint


def test_cli_subprocess_timeout_stops_silent_model_and_children(
    built: Built, tmp_path: Path
) -> None:
    marker = tmp_path / "marker"
    started = time.monotonic()
    result = built.project.dot(
        "run", "prod", "--runtime", "subprocess", "--timeout", "15", "--", "-s", "slow",
        env={"DOT_TEST_MARKER": str(marker), "DOT_TEST_SLEEP": "313.41", "CI": "true"},
    )  # fmt: skip
    elapsed = time.monotonic() - started
    assert result.returncode == 40, result.stdout[-2000:] + result.stderr
    assert "TIMEOUT: dbt run prod" in result.stderr
    assert "Traceback" not in result.stderr
    assert elapsed < 15 + 5 + 10  # the timeout, the grace period, start-up
    assert marker.is_file(), "the slow model never started; raise the timeout"
    grandchild = int(marker.read_text())
    assert not is_alive(grandchild)
    assert sleepers("313.41") == []


def test_cli_sigterm_stops_dbt_and_children_with_exit_50(built: Built, tmp_path: Path) -> None:
    marker = tmp_path / "marker"
    proc = subprocess.Popen(
        [str(BIN / "dot"), "run", "prod", "--runtime", "subprocess", "--", "-s", "slow"],
        cwd=built.project.path,
        env={
            **os.environ,
            "DOT_TEST_MARKER": str(marker),
            "DOT_TEST_SLEEP": "313.42",
            "CI": "true",
        },
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert wait_for(marker, 120), "the slow model never started"
        proc.send_signal(signal.SIGTERM)  # to `dot` alone: it must pass it on
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 50, err
    assert "CANCELLED: dbt run prod" in err
    assert not is_alive(int(marker.read_text()))
    assert sleepers("313.42") == []
    run_results = built.project.path / "target" / "run_results.json"
    assert "model.jaffle_dot.slow" not in json.dumps(json.loads(run_results.read_text()))


def test_cli_started_with_sigint_ignored_ignores_it_and_sigterm_stops_dbt(
    built: Built, tmp_path: Path
) -> None:
    marker = tmp_path / "marker"
    proc = subprocess.Popen(
        [str(BIN / "dot"), "run", "prod", "--runtime", "subprocess", "--", "-s", "slow"],
        cwd=built.project.path,
        env={
            **os.environ,
            "DOT_TEST_MARKER": str(marker),
            "DOT_TEST_SLEEP": "313.44",
            "CI": "true",
        },
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=ignore_sigint,
    )
    dbt = None
    try:
        assert wait_for(marker, 120), "the slow model never started"
        sleeper = int(marker.read_text())
        dbt = parent_pid(sleeper)
        # dot stops dbt with SIGINT when it is cancelled: dbt must not inherit the ignore.
        assert not is_sigint_ignored(dbt)
        proc.send_signal(signal.SIGINT)
        time.sleep(1.0)
        assert proc.poll() is None, "dot must honour the SIGINT it was told to ignore"
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            if dbt is not None:
                with contextlib.suppress(OSError):
                    os.killpg(dbt, signal.SIGKILL)  # dbt leads its own process group
    assert proc.returncode == 50, err
    assert "CANCELLED: dbt run prod" in err
    assert not is_alive(sleeper)
    assert sleepers("313.44") == []
