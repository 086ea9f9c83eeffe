"""The `local` runtime: dbtRunner in process (serialized), in a forked child, and warm."""

from __future__ import annotations

import itertools
import re
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path

import pytest

from datum_dot.runs.runner import Runner
from datum_dot.runtimes.base import DbtExecutionTimeoutError, ErrorClass, RunResult
from datum_dot.runtimes.local import LocalRuntime
from tests.helpers.example import ExampleProject
from tests.helpers.runtime_project import (
    is_alive,
    make_runtime_project,
    placement,
    sleepers,
)

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("runtime_local")]


class Sink:
    """An output sink that keeps every line."""

    def __init__(self) -> None:
        self.lines: list[tuple[str, str]] = []

    def line(self, stream: str, text: str) -> None:
        self.lines.append((stream, text))


@pytest.fixture(scope="module")
def project(
    tmp_path_factory: pytest.TempPathFactory, module_monkeypatch: pytest.MonkeyPatch
) -> ExampleProject:
    base = tmp_path_factory.mktemp("local")
    module_monkeypatch.setenv("DOT_EXAMPLE_DUCKDB", str(base / "warehouse.duckdb"))
    made = make_runtime_project(base)
    seeded = LocalRuntime().invoke(["seed", *placement(made), "--target", "prod"], env={})
    assert seeded.success, seeded.error
    return made


def args(project: ExampleProject, *extra: str) -> list[str]:
    return [*placement(project), "--target", "prod", *extra]


def test_local_in_process_tees_output_and_reports_nodes(
    project: ExampleProject, capfd: pytest.CaptureFixture[str]
) -> None:
    sink, events = Sink(), []
    result = LocalRuntime().invoke(
        ["run", *args(project, "-s", "stg_customers")],
        env={},
        output=sink,
        on_event=lambda name, data: events.append(name),
    )
    assert result.success
    assert result.dbt_exit_code == 0
    assert [(n.unique_id, n.status) for n in result.nodes] == [
        ("model.jaffle_dot.stg_customers", "success")
    ]
    texts = [text for _, text in sink.lines]
    assert any(t.endswith("Running with dbt=1.11.16") or "Running with dbt=" in t for t in texts)
    assert not any("\x1b[" in t for t in texts)  # no colour codes reach the sink
    assert "Running with dbt=" in capfd.readouterr().out  # and the terminal still gets it all
    assert {"NodeStart", "NodeFinished", "LogStartLine"} <= set(events)
    # the adapter let go of the DuckDB file: another process can open it
    other = subprocess.run(
        [sys.executable, "-c", f"import duckdb; duckdb.connect({str(project.database)!r}).close()"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert other.returncode == 0, other.stderr


def test_local_concurrent_invocations_serialize(project: ExampleProject) -> None:
    runtime = LocalRuntime()
    order: list[int] = []
    order_lock = threading.Lock()
    results: dict[int, tuple[bool, Sink]] = {}

    def call(number: int) -> None:
        sink = Sink()

        def on_event(name: str, data: object) -> None:
            with order_lock:
                order.append(number)

        got = runtime.invoke(
            ["ls", *args(project, "-s", "stg_orders")], env={}, on_event=on_event, output=sink
        )
        results[number] = (got.success, sink)

    threads = [threading.Thread(target=call, args=(n,)) for n in range(10)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=300)
    assert sorted(results) == list(range(10))
    assert all(ok for ok, _ in results.values())
    # No interleaving: each invocation's events form one unbroken block.
    blocks = [n for i, n in enumerate(order) if i == 0 or order[i - 1] != n]
    assert sorted(blocks) == list(range(10))
    for _, sink in results.values():  # each caller's output holds its own invocation only
        texts = [text for _, text in sink.lines]
        assert sum("Running with dbt=" in t for t in texts) == 1
        assert texts.count("jaffle_dot.staging.stg_orders") == 1


def test_local_waiting_past_the_timeout_for_the_lock_is_a_timeout(project: ExampleProject) -> None:
    runtime = LocalRuntime()
    with LocalRuntime._execution_lock:  # another invocation holds the process's lock
        started = time.monotonic()
        with pytest.raises(DbtExecutionTimeoutError) as caught:
            runtime.invoke(["ls", *args(project)], env={}, timeout=0.3)
        assert 0.25 < time.monotonic() - started < 5
        result = Runner(runtime).invoke(["ls", *args(project)], env={}, timeout=0.3)
    assert caught.value.exit_code == 40
    assert result.timed_out
    assert result.error_class is ErrorClass.TIMEOUT


def test_local_timeout_runs_in_a_child_and_stops_it(
    project: ExampleProject, tmp_path: Path
) -> None:
    marker = tmp_path / "marker"
    started = time.monotonic()
    result = LocalRuntime(grace=1).invoke(
        ["run", *args(project, "-s", "slow")],
        env={"DOT_TEST_MARKER": str(marker), "DOT_TEST_SLEEP": "313.43"},
        timeout=8,
    )
    assert result.timed_out
    assert not result.success
    assert time.monotonic() - started < 8 + 1 + 6
    assert marker.is_file(), "the slow model never started; raise the timeout"
    assert not is_alive(int(marker.read_text()))
    assert sleepers("313.43") == []
    # dbt's threads died with the child: the warehouse is free and this process can run again
    again = LocalRuntime().invoke(["run", *args(project, "-s", "stg_customers")], env={})
    assert again.success, again.error


def test_local_warm_fork_server_runs_and_relays(project: ExampleProject) -> None:
    runtime = LocalRuntime(warm=True)
    runtime.warm_up()
    outcomes = []
    for _ in range(2):
        sink, events = Sink(), list[str]()
        result = runtime.invoke(
            ["run", *args(project, "-s", "stg_orders")],
            env={},
            output=sink,
            on_event=lambda name, data, seen=events: seen.append(name),
        )
        outcomes.append((result, sink, events))
    for result, sink, events in outcomes:
        assert result.success
        assert result.statuses == ("success",)
        assert any(re.search(r"1 of 1 OK created sql view model", t) for _, t in sink.lines)
        assert "NodeFinished" in events
    assert runtime.get_runtime_metadata()["warm"] is True


def test_local_warm_fork_server_survives_a_full_parse(project: ExampleProject) -> None:
    # a full parse uses dbt's static parser, whose worker threads must not be inherited by a fork
    runtime = LocalRuntime(warm=True)
    runtime.warm_up()
    result = runtime.invoke(["parse", *args(project, "--no-partial-parse")], env={}, timeout=120)
    assert result.success, result.error
    assert runtime.get_runtime_metadata()["warm"] is True


def test_local_parallel_request_still_serializes(project: ExampleProject) -> None:
    spans: list[tuple[float, float]] = []

    class Timed(LocalRuntime):
        def run_models(
            self,
            project_dir: Path,
            profiles_dir: Path,
            target: str,
            select: str | None = None,
            exclude: str | None = None,
            full_refresh: bool = False,
        ) -> RunResult:
            start = time.monotonic()
            try:
                return super().run_models(
                    project_dir, profiles_dir, target, select, exclude, full_refresh
                )
            finally:
                spans.append((start, time.monotonic()))

    runner = Runner(Timed())
    models: Sequence[str] = ["stg_customers", "stg_orders", "stg_payments"]
    results = runner.run_models(
        models, project_dir=project.path, profiles_dir=project.path, target="prod", parallel=True
    )
    assert [r.success for r in results] == [True, True, True]
    assert [r.models_run for r in results] == [1, 1, 1]
    spans.sort()
    assert all(end <= nxt for (_, end), (nxt, _) in itertools.pairwise(spans))
