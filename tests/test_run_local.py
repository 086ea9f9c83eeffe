"""Plain (working-tree) runs of real dbt on DuckDB, through the installed `dot`.

Real dbt is slow to start (~2 s a process), so the runs are shared: one project in a git
repository is built once per module (`built`), and one project outside any git repository holds
the models that fail, warn, log markup or sleep (`loose`). Each test asserts on the recorded
outcome and on the warehouse itself.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import pytest

from datum_dot.errors import ExitCode
from datum_dot.execute import execute
from datum_dot.history import RunStore, StoredRun
from datum_dot.home.settings import datum_home
from datum_dot.runs.run import RunRecord, RunRequest, RunStatus
from tests.helpers.example import BIN, EXAMPLE, ExampleProject, make_example
from tests.helpers.signals import default_sigint

pytestmark = pytest.mark.slow

NAPS = 12  # python models that each sleep; enough that a Ctrl-C lands mid-run
LOOSE_FILES = {
    "models/broken.sql": "select * from table_that_does_not_exist\n",
    "models/shouts.sql": "{{ log('[bold] and [/x]', info=True) }}\nselect 1 as x\n",
    "tests/always_warns.sql": "{{ config(severity='warn') }}\nselect 1 as failing_row\n",
    **{
        f"models/naps/nap_{i:02d}.py": (
            "import time\n\n\ndef model(dbt, session):\n"
            "    time.sleep(0.5)\n"
            "    return session.sql('select 1 as x')\n"
        )
        for i in range(NAPS)
    },
}


@dataclass(frozen=True)
class Built:
    """The example project after `dot deps`, `dot build`, `dot build prod` and a selected run.

    Attributes:
        project: The project (in a git repository).
        results: Each command's completed process, by a short name.
        run_results: `target/run_results.json` as it was right after each command.
    """

    project: ExampleProject
    results: dict[str, subprocess.CompletedProcess[str]]
    run_results: dict[str, dict[str, Any]]
    home: Path


@dataclass(frozen=True)
class Loose:
    """A copy of the example outside any git repository, with extra models, deps installed."""

    path: Path
    database: Path

    def dot(self, *args: str, program: str = "dot") -> subprocess.CompletedProcess[str]:
        """Run the installed program in the project, writing to this project's warehouse."""
        argv = [sys.executable, "-m", "datum_dot"] if program == "-m" else [str(BIN / program)]
        return subprocess.run(
            [*argv, *args],
            cwd=self.path,
            env=self.env(),
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )

    def env(self) -> dict[str, str]:
        """The process environment for a run here."""
        return {**os.environ, "DOT_EXAMPLE_DUCKDB": str(self.database)}


@pytest.fixture(scope="module")
def built(
    tmp_path_factory: pytest.TempPathFactory, module_monkeypatch: pytest.MonkeyPatch
) -> Built:
    """The example in a git repository, built for dev and prod, then run with a selection."""
    base = tmp_path_factory.mktemp("built")
    module_monkeypatch.setenv("DOT_EXAMPLE_DUCKDB", str(base / "warehouse.duckdb"))
    project = make_example(base, monkeypatch_env=False)
    commands = {
        "deps": ("deps",),
        "build": ("build",),
        "build prod": ("build", "prod"),
        "run selected": ("run", "dev", "--", "--select", "stg_orders+"),
    }
    results: dict[str, subprocess.CompletedProcess[str]] = {}
    run_results: dict[str, dict[str, Any]] = {}
    artifact = project.path / "target" / "run_results.json"
    for name, args in commands.items():
        results[name] = project.dot(*args)
        if artifact.is_file():
            run_results[name] = json.loads(artifact.read_text())
    return Built(project=project, results=results, run_results=run_results, home=datum_home())


@pytest.fixture(scope="module")
def loose(
    tmp_path_factory: pytest.TempPathFactory, module_monkeypatch: pytest.MonkeyPatch
) -> Loose:
    """The example copied outside any git repository, with extra models, after `dot deps`."""
    base = tmp_path_factory.mktemp("loose")
    path = base / "project"
    shutil.copytree(
        EXAMPLE, path, ignore=shutil.ignore_patterns("*.duckdb", "target", "logs", "dbt_packages")
    )
    for name, text in LOOSE_FILES.items():
        (path / name).parent.mkdir(parents=True, exist_ok=True)
        (path / name).write_text(text)
    project = Loose(path=path, database=base / "warehouse.duckdb")
    deps = project.dot("deps")
    assert deps.returncode == 0, deps.stdout + deps.stderr
    return project


def query(database: Path, sql: str) -> list[tuple[Any, ...]]:
    """Run a read-only query on a warehouse file."""
    con = duckdb.connect(str(database), read_only=True)
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


def assert_exit(result: subprocess.CompletedProcess[str], code: int) -> None:
    """The process ended with `code` and no traceback of ours."""
    assert result.returncode == code, result.stdout[-3000:] + result.stderr
    assert "Traceback" not in result.stderr


# --- built: the example in a git repository -------------------------------------------------


def test_deps_installs_local_package(built: Built) -> None:
    assert_exit(built.results["deps"], 0)
    assert (built.project.path / "dbt_packages" / "dot_utils" / "dbt_project.yml").is_file()


def test_build_default_environment_writes_dev_schema(built: Built) -> None:
    result = built.results["build"]
    assert_exit(result, 0)
    assert "Running with dbt=" in result.stdout  # dbt's own output reaches our stdout
    assert "SUCCESS: dbt build" in result.stderr
    # The summary counts what dbt numbered (`N of TOTAL`): never past its own total.
    total = re.findall(r"\b\d+ of (\d+) ", result.stdout)[-1]
    assert f"; {total} nodes: {total} passed; details: dot logs" in result.stderr
    [(count,)] = built.project.query("select count(*) from dev.orders")
    assert count > 0
    assert built.project.query("select distinct sample_rate from dev.orders") == [(10,)]


def test_build_prod_writes_analytics_schema(built: Built) -> None:
    assert_exit(built.results["build prod"], 0)
    [(count,)] = built.project.query("select count(*) from analytics.orders")
    assert count > 0
    assert built.project.query("select distinct sample_rate from analytics.orders") == [(100,)]
    # feature_flag is true in prod only: the flagged-returns column can be true there alone.
    assert built.project.query("select bool_or(is_flagged_return) from analytics.orders") == [
        (True,)
    ]
    assert built.project.query("select bool_or(is_flagged_return) from dev.orders") == [(False,)]


def test_run_passthrough_select_runs_only_descendants(built: Built) -> None:
    assert_exit(built.results["run selected"], 0)
    ran = {r["unique_id"] for r in built.run_results["run selected"]["results"]}
    assert ran == {
        "model.jaffle_dot.stg_orders",
        "model.jaffle_dot.orders",
        "model.jaffle_dot.customers",
        "model.jaffle_dot.order_events",
    }
    build_ran = {r["unique_id"] for r in built.run_results["build"]["results"]}
    assert "model.jaffle_dot.stg_payments" in build_ran  # the selection, not the project, is small


@pytest.fixture(scope="module")
def in_process(built: Built) -> RunRecord:
    """A run through `execute()` in this process (dbt-core's dbtRunner), after `built`."""
    request = RunRequest(
        command=("run",),
        project_dir=built.project.path,
        dbt_args=("--select", "stg_customers"),
    )
    return execute(request)


def test_execute_in_process_returns_success_record(in_process: RunRecord) -> None:
    assert in_process.status is RunStatus.SUCCESS
    assert in_process.exit_code is ExitCode.OK
    assert in_process.dbt_exit_code == 0
    assert in_process.node_statuses == ("success",)
    assert in_process.plan is not None
    assert in_process.plan.env.name == "dev"
    assert in_process.duration_seconds is not None
    assert in_process.duration_seconds > 0


def test_execute_in_process_releases_duckdb_file_lock(in_process: RunRecord, built: Built) -> None:
    # Regression: dbt-duckdb keeps its database open after the invocation (`keep_open`), which
    # held the file's lock, so no other process (and no read-only connection here) could open it.
    assert in_process.status is RunStatus.SUCCESS
    assert built.project.query("select count(*) from dev.stg_customers")[0][0] > 0
    other = subprocess.run(
        [
            sys.executable,
            "-c",
            f"import duckdb; duckdb.connect({str(built.project.database)!r}).close()",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert other.returncode == 0, other.stderr


# --- loose: outside any git repository ------------------------------------------------------


def test_run_outside_git_repository_succeeds(loose: Loose) -> None:
    probe = subprocess.run(
        ["git", "rev-parse", "--is-inside-work-tree"],
        cwd=loose.path,
        capture_output=True,
        text=True,
        check=False,
    )
    assert probe.returncode != 0, "the loose project must not be inside a git repository"
    result = loose.dot("seed")
    assert_exit(result, 0)
    [(count,)] = query(loose.database, "select count(*) from dev.raw_orders")
    assert count > 0


def test_run_failing_model_exits_30(loose: Loose) -> None:
    result = loose.dot("run", "--", "--select", "broken")
    assert_exit(result, 30)
    assert "table_that_does_not_exist" in result.stdout
    assert "FAILED: dbt run" in result.stderr
    assert "; 1 node: 1 failed; details" in result.stderr


def test_python_m_failing_model_exits_30(loose: Loose) -> None:
    result = loose.dot("run", "--", "--select", "broken", program="-m")
    assert_exit(result, 30)
    assert "FAILED: dbt run" in result.stderr


def test_run_model_logging_markup_prints_it_literally(loose: Loose) -> None:
    result = loose.dot("run", "--", "--select", "shouts")
    assert_exit(result, 0)
    assert "[bold] and [/x]" in result.stdout


def test_test_warn_severity_failure_exits_10(loose: Loose) -> None:
    result = loose.dot("test", "--", "--select", "always_warns")
    assert_exit(result, 10)
    assert "WARN" in result.stdout


def test_ctrl_c_cancels_run_with_exit_50(loose: Loose) -> None:
    proc = subprocess.Popen(
        [str(BIN / "dot"), "run", "--", "--select", "path:models/naps"],
        cwd=loose.path,
        env=loose.env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
        preexec_fn=default_sigint,
    )
    out: list[str] = []
    err: list[str] = []
    started = threading.Event()

    def pump_stdout() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            out.append(line)
            if " START " in line:
                started.set()

    def pump_stderr() -> None:
        assert proc.stderr is not None
        err.extend(proc.stderr)

    readers = [threading.Thread(target=f, daemon=True) for f in (pump_stdout, pump_stderr)]
    for reader in readers:
        reader.start()
    try:
        # Output arrives while dbt runs (it is streamed, not buffered until the end).
        assert started.wait(timeout=120), "".join(out) + "".join(err)
        assert proc.poll() is None
        time.sleep(0.3)
        os.killpg(proc.pid, signal.SIGINT)
        code = proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    for reader in readers:
        reader.join(timeout=10)
    stdout, stderr = "".join(out), "".join(err)
    assert code == 50, stdout[-3000:] + stderr
    assert "Traceback" not in stderr
    assert "CANCELLED: dbt run" in stderr
    finished = stdout.count("OK created python table model")
    assert finished < NAPS, stdout


def _runs(home: Path | None = None) -> list[StoredRun]:
    return RunStore(home or datum_home()).query(last=None)


def test_history_records_real_build_end_to_end(built: Built) -> None:
    prod = [
        r for r in _runs(built.home) if r.start.spec == "prod" and r.start.command == ("build",)
    ]
    assert len(prod) == 1
    run = prod[0]
    assert run.status is RunStatus.SUCCESS
    assert run.exit_code == 0
    assert run.dbt_exit_code == 0
    assert run.start.env == "prod"
    assert run.start.commit == built.project.repo.head()
    assert run.start.trigger == "manual"
    assert run.counts is not None
    assert (run.counts.models, run.counts.seeds, run.counts.tests) == (6, 3, 29)
    assert run.counts.failures == 0
    output = (run.run_dir / "output.log").read_text()
    assert re.search(r"^\[\d\d:\d\d:\d\d\] .*Done\. PASS=38", output, re.M), output[-2000:]
    copied = json.loads((run.run_dir / "run_results.json").read_text())
    assert copied == built.run_results["build prod"]
    metadata = json.loads((run.run_dir / "metadata.json").read_text())
    assert "Done. PASS" not in json.dumps(metadata)


def test_history_records_every_manual_run_once(built: Built) -> None:
    # The module's in-process execute() adds a run of its own (this process's pid).
    # (and the module's project outside git records its `dot deps` in the same history).
    head = built.project.repo.head()
    runs = [r for r in _runs(built.home) if r.start.pid != os.getpid() and r.start.commit == head]
    assert len(runs) == len(built.results)
    assert len({r.run_id for r in runs}) == len(runs)
    assert {r.status for r in runs} == {RunStatus.SUCCESS}


def test_ctrl_c_leaves_a_cancelled_record_with_partial_output(loose: Loose) -> None:
    test_ctrl_c_cancels_run_with_exit_50(loose)
    cancelled = [r for r in _runs() if r.status is RunStatus.CANCELLED]
    assert cancelled, [(r.run_id, r.status) for r in _runs()]
    output = (cancelled[-1].run_dir / "output.log").read_text()
    assert " START " in output
    assert cancelled[-1].exit_code == 50
