"""The Python API on real dbt and DuckDB: builds at refs with defer, failures, warnings, bad input,
threads, the history and the runtime contract.

One example project per module: `v1.0` and `main` (orders.sql changed), `broken` (a model that
fails) and `warned` (a test that warns). Its prod target writes to a DuckDB file of its own, so
that runs of dev and prod never wait for each other's warehouse lock: only the API's own turn
taking (local runtime) can keep them apart.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import duckdb
import pytest

import datum_dot
from tests.helpers.example import BIN, ExampleProject, make_example

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("api")]

BROKEN_MODEL = "select id, no_such_column from {{ ref('stg_orders') }}\n"
WARNING_TEST = "{{ config(severity='warn') }}\nselect * from {{ ref('stg_orders') }}\n"


@dataclass(frozen=True)
class Built:
    """The project, its history folder, and the two builds every test reads."""

    example: ExampleProject
    project: datum_dot.Project
    home: Path
    main: str
    baseline: datum_dot.Result
    deferred: datum_dot.Result


@pytest.fixture(scope="module")
def built(
    module_monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory
) -> Built:
    base = tmp_path_factory.mktemp("api")
    module_monkeypatch.setenv("DOT_EXAMPLE_DUCKDB", str(base / "dev.duckdb"))
    module_monkeypatch.setenv("API_PROD_DUCKDB", str(base / "prod.duckdb"))
    example = make_example(base, monkeypatch_env=False)
    repo = example.repo
    profiles = (example.path / "profiles.yml").read_text()
    prod = profiles.split("    prod:")[1].replace("DOT_EXAMPLE_DUCKDB", "API_PROD_DUCKDB")
    repo.commit({"profiles.yml": profiles.split("    prod:")[0] + "    prod:" + prod}, "own file")
    repo.tag("v1.0")
    orders = (example.path / "models/marts/orders.sql").read_text()
    main = repo.commit({"models/marts/orders.sql": orders + "-- v2\n"}, "v2")
    repo.git("checkout", "--quiet", "-b", "broken")
    repo.commit({"models/marts/broken.sql": BROKEN_MODEL}, "broken model")
    repo.git("checkout", "--quiet", "-b", "warned", "main")
    repo.commit({"tests/warn_on_orders.sql": WARNING_TEST}, "warning test")
    repo.git("checkout", "--quiet", "-b", "planned", "main")
    repo.commit({}, "only ever planned")
    repo.checkout("main")
    home = base / "home"
    project = datum_dot.Project(example.path, home=home)
    baseline = project.build("prod@v1.0")
    assert baseline.status == "success", baseline.errors
    deferred = project.build("prod@main", select="orders+", defer="prod@v1.0")
    return Built(example, project, home, main, baseline, deferred)


def test_api_build_at_ref_with_defer(built: Built) -> None:
    result = built.deferred
    assert (result.status, result.exit_code, result.ok) == ("success", 0, True)
    assert result.environment == "prod"
    assert result.commit == built.main
    assert result.schema == f"analytics_{built.main[:8]}"
    assert result.run_id is not None
    assert result.spec == "prod@main"
    # only orders and what follows it ran; its unchanged parents were read from v1.0's build
    models = {n.unique_id for n in result.nodes if n.resource_type == "model"}
    assert models == {"model.jaffle_dot.orders", "model.jaffle_dot.customers"}
    assert result.metrics["models"] == 2
    assert result.metrics["passed"] == len(result.nodes)
    assert result.metrics["failed"] == result.metrics["warned"] == 0
    sql = "select table_name from information_schema.tables where table_schema = ?"
    with duckdb.connect(str(built.home.parent / "prod.duckdb"), read_only=True) as con:
        tables = con.execute(sql, [result.schema]).fetchall()
    assert sorted(str(t[0]) for t in tables) == ["customers", "orders"]
    for name in ("manifest", "run_results", "log"):
        path = result.artifacts[name]
        assert path is not None, name
        assert path.is_file(), name
    assert result.artifacts["catalog"] is None
    session = result.logs["session_id"]
    assert result.logs == {"log_file": result.artifacts["log"], "session_id": session,
                           "run_id": result.run_id}  # fmt: skip


def test_api_result_round_trips_through_json(built: Built) -> None:
    data = built.deferred.to_dict()
    again = json.loads(json.dumps(data))
    assert again == data
    assert set(data) >= {"status", "execution_time", "metrics", "artifacts", "globals",
                         "warnings", "errors", "logs", "exit_code", "run_id", "nodes"}  # fmt: skip
    assert data["logs"]["run_id"] == built.deferred.run_id  # type: ignore[index]


def test_api_result_dict_has_every_key_of_the_seed_shape(built: Built) -> None:
    data = built.deferred.to_dict()
    # the seeds' keys first, in their order
    assert list(data)[:8] == ["status", "execution_time", "metrics", "artifacts", "globals",
                              "warnings", "errors", "logs"]  # fmt: skip
    # globals: what a next step of a pipeline needs to find this run's tables
    assert data["globals"] == {"spec": "prod@main", "commit": built.main, "environment": "prod",
                               "schema": f"analytics_{built.main[:8]}"}  # fmt: skip
    logs = data["logs"]
    assert isinstance(logs, dict)
    assert list(logs) == ["log_file", "session_id", "run_id"]
    # one session per Python process: both builds of this process share it
    session = logs["session_id"]
    assert isinstance(session, str)
    assert session.startswith(f"sdk-{os.getpid()}-")
    assert built.baseline.logs["session_id"] == session
    assert data["warnings"] == data["errors"] == []


def test_api_session_id_differs_between_processes() -> None:
    from datum_dot.api.session import session_id

    code = "from datum_dot.api.session import session_id; print(session_id())"
    other = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.strip()
    assert other.startswith("sdk-")
    assert other != session_id()
    assert session_id() == session_id()


def test_api_runs_are_the_history_dot_logs_shows(built: Built) -> None:
    runs = built.project.runs(last=50)
    ids = [run["run_id"] for run in runs]
    assert built.deferred.run_id in ids
    assert built.baseline.run_id in ids
    assert {run["trigger"] for run in runs} == {"sdk"}
    shown = subprocess.run(
        [str(BIN / "dot"), "logs", "--json", "--last", "50"],
        cwd=built.example.path,
        env={**os.environ, "DATUM_HOME": str(built.home)},
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    assert [run["run_id"] for run in json.loads(shown.stdout)] == ids


def test_api_failing_model_is_an_error_result(built: Built) -> None:
    result = built.project.build("dev@broken", select="+broken")
    assert (result.status, result.exit_code, result.ok) == ("error", 30, False)
    assert result.errors
    assert result.errors[0].startswith("model.jaffle_dot.broken: ")
    assert "no_such_column" in result.errors[0]
    assert "\n" not in result.errors[0]
    assert result.metrics["failed"] == 1
    with pytest.raises(datum_dot.RunFailed) as raised:
        result.raise_for_status()
    assert raised.value.exit_code == 30
    assert raised.value.result is result
    assert isinstance(raised.value, datum_dot.DotError)
    failed = built.project.runs(status="failed", last=50)
    assert result.run_id in [run["run_id"] for run in failed]


def test_api_warning_test_gives_status_warning(built: Built) -> None:
    result = built.project.build("dev@warned", select="+warn_on_orders")
    assert (result.status, result.exit_code, result.ok) == ("warning", 10, True)
    assert result.metrics["warned"] == 1
    assert [w for w in result.warnings if w.startswith("test.jaffle_dot.warn_on_orders: ")]
    assert result.raise_for_status() is result


def test_api_bad_input_raises_and_is_recorded(built: Built) -> None:
    project = built.project
    with pytest.raises(datum_dot.BadInput) as raised:
        project.build("prod", vars={"sample_rate": 7})
    assert raised.value.exit_code == 20
    assert "sample_rate" in raised.value.message
    assert raised.value.hint
    last = project.runs(last=1)[0]
    assert (last["status"], last["trigger"], last["spec"]) == ("FAILED", "sdk", "prod")
    assert "sample_rate" in str(last["error_message"])
    with pytest.raises(TypeError, match="selct"):
        project.build("prod", selct="orders")  # type: ignore[call-arg]
    with pytest.raises(TypeError, match="full_refresh"):
        project.test("prod", full_refresh=True)  # type: ignore[call-arg]
    with pytest.raises(datum_dot.BadInput, match="threads must be 1 or more"):
        project.build("prod", threads=0)
    with pytest.raises(datum_dot.BadInput):
        project.build("prod@@main")
    with pytest.raises(datum_dot.BadInput, match="status 'gone'"):
        project.runs(status="gone")


def _interval(project: datum_dot.Project, run_id: str | None) -> tuple[datetime, datetime]:
    run = next(r for r in project.runs(last=50) if r["run_id"] == run_id)
    return datetime.fromisoformat(str(run["started_at"])), datetime.fromisoformat(
        str(run["finished_at"])
    )


def _two_at_once(project: datum_dot.Project, runtime: str) -> list[datum_dot.Result]:
    results: dict[str, datum_dot.Result] = {}
    start = threading.Barrier(2)

    def build(spec: str) -> None:
        start.wait()
        results[spec] = project.build(spec, select="+stg_orders", runtime=runtime)

    threads = [threading.Thread(target=build, args=(spec,)) for spec in ("dev@main", "prod@main")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=600)
    return [results["dev@main"], results["prod@main"]]


def test_api_local_runs_in_threads_take_turns(
    built: Built, capfd: pytest.CaptureFixture[str]
) -> None:
    first, second = _two_at_once(built.project, "local")
    assert (first.status, second.status) == ("success", "success")
    assert first.runtime == second.runtime == "local"
    (a_start, a_end), (b_start, b_end) = (
        _interval(built.project, r.run_id) for r in (first, second)
    )
    assert a_end <= b_start or b_end <= a_start, "local runs of one process overlapped"
    out, err = capfd.readouterr()
    assert (out, err) == ("", ""), "the API printed without echo=True"


def test_api_subprocess_runs_in_threads_overlap(
    built: Built, capfd: pytest.CaptureFixture[str]
) -> None:
    first, second = _two_at_once(built.project, "subprocess")
    assert (first.status, second.status) == ("success", "success")
    assert first.runtime == second.runtime == "subprocess"
    (a_start, a_end), (b_start, b_end) = (
        _interval(built.project, r.run_id) for r in (first, second)
    )
    assert a_start < b_end, "subprocess runs did not overlap"
    assert b_start < a_end, "subprocess runs did not overlap"
    assert capfd.readouterr() == ("", ""), "the dbt processes' output reached the terminal"


def test_api_runtime_contract_on_the_planned_build(built: Built) -> None:
    runtime = built.project.runtime("local", spec="prod@v1.0")
    assert runtime.supports_parallel_execution() is False
    assert built.project.runtime("subprocess").supports_parallel_execution() is True
    metadata = runtime.get_runtime_metadata()
    assert metadata["type"] == "local"
    assert metadata["dbt_version"]
    manifest = runtime.compile_project()
    build_dir = built.example.path / ".dot" / "build"
    assert manifest.is_file()
    assert build_dir in manifest.parents
    nodes = runtime.get_manifest()["nodes"]
    assert isinstance(nodes, dict)
    assert "model.jaffle_dot.orders" in nodes
    outcome = runtime.run_models(select="stg_orders")
    assert outcome.success
    assert outcome.models_run == 1
    assert outcome.failures == 0
    results = runtime.get_run_results()["results"]
    assert isinstance(results, list)
    assert len(results) == 1
    run_id = outcome.metadata["run_id"]
    runs = built.project.runs(last=50)
    assert {r["run_id"]: r["command"] for r in runs}[run_id] == ["run"]


def test_api_plan_touches_nothing(built: Built) -> None:
    plan = built.project.plan("dev@planned", command="test", select="orders")
    assert plan.command == ("test",)
    assert plan.isolated is not None
    assert not plan.isolated.worktree.exists()
    assert "orders" in plan.dbt_args
    envs = built.project.environments()
    assert list(envs) == ["dev", "prod", "ci"]
    assert envs["dev"]["default"] is True
    assert envs["prod"]["flags"] == {
        "indirect-selection": "buildable",
        "target": "prod",
        "threads": 2,
    }
    rows = built.project.builds()
    assert {row["short_hash"] for row in rows} >= {built.main[:8]}


def test_api_import_is_light() -> None:
    code = (
        "import sys, time; t = time.perf_counter(); import datum_dot; "
        "print(time.perf_counter() - t); "
        "print(sorted(m for m in ('dbt', 'pydantic', 'fastapi', 'rich', 'git', 'yaml') "
        "if m in sys.modules))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    seconds, heavy = done.stdout.splitlines()
    assert heavy == "[]"
    assert float(seconds) < 0.05


def test_api_on_event_and_echo(built: Built, capfd: pytest.CaptureFixture[str]) -> None:
    events: list[dict[str, object]] = []
    result = built.project.seed("prod@v1.0", select="raw_orders", on_event=events.append, echo=True)
    assert result.status == "success"
    names = {str(event["name"]) for event in events}
    assert "NodeFinished" in names
    finished = [e for e in events if e["name"] == "NodeFinished"]
    assert json.loads(json.dumps(finished[0]["data"]))  # plain, JSON-ready data
    out, err = capfd.readouterr()
    assert "1 of 1 OK loaded seed file" in out
    assert "Completed successfully" in out
    assert "dot: checking that every node lands in the isolated schema" in err


def test_api_local_turn_waits_at_most_the_timeout(built: Built) -> None:
    running, release = threading.Event(), threading.Event()
    results: list[datum_dot.Result] = []

    def hold(_: dict[str, object]) -> None:
        # the first dbt event: this call holds the process's turn until the test lets it go
        running.set()
        release.wait(timeout=300)

    def first() -> None:
        results.append(built.project.build("prod@v1.0", select="orders", on_event=hold))

    thread = threading.Thread(target=first)
    thread.start()
    try:
        assert running.wait(timeout=300), "the first build never reached dbt"
        with pytest.raises(datum_dot.DotError) as raised:
            built.project.parse("dev", timeout=0.5)
        assert raised.value.exit_code == 40
        assert "did not finish within 0.5s" in raised.value.message
        assert "runtime='subprocess'" in raised.value.hint
    finally:
        release.set()
        thread.join(timeout=600)
    assert results[0].status == "success"
