"""`datum_dot.DbtRunner`, the runner story's interface, against the story's acceptance criteria on
real dbt and DuckDB: a command that succeeds, streamed output, retries of a transient failure,
compilation vs execution vs data-quality errors, vars injected into a command, models in
parallel, and every call recorded in the history.

One example project for the module; its working tree is built once (`built`), and the tests
that break it put it back.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

import datum_dot
from tests.helpers.example import BIN, ExampleProject, make_example

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("dbt_runner")]


@dataclass(frozen=True)
class Built:
    """The project, a runner on it, and the `dbt build` every test starts from."""

    example: ExampleProject
    runner: datum_dot.DbtRunner
    home: Path
    deps: datum_dot.DbtResult
    build: datum_dot.DbtResult
    streamed: list[str]


@pytest.fixture(scope="module")
def built(
    module_monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory
) -> Built:
    base = tmp_path_factory.mktemp("runner")
    module_monkeypatch.setenv("DOT_EXAMPLE_DUCKDB", str(base / "warehouse.duckdb"))
    example = make_example(base, monkeypatch_env=False)
    home = base / "home"
    runner = datum_dot.DbtRunner(example.path, threads=2, home=home)
    # dbt deps takes no --threads: the runner leaves it out rather than failing the command
    deps = runner.execute_command("deps")
    streamed: list[str] = []
    build = runner.execute_command("build", stream_output=True, on_line=streamed.append)
    return Built(example, runner, home, deps, build, streamed)


@contextmanager
def written(project: Path, files: dict[str, str]) -> Iterator[None]:
    """The working tree with `files` added for the length of the block."""
    for name, text in files.items():
        (project / name).write_text(text)
    try:
        yield
    finally:
        for name in files:
            (project / name).unlink()


def test_dbt_runner_successful_command_execution(built: Built) -> None:
    assert built.deps.success, built.deps.result.errors
    assert built.deps.command == ["deps"]
    res = built.build
    assert (res.success, res.exit_code, res.return_code) == (True, 0, 0)
    assert res.command == ["build"]
    assert res.error is None
    assert res.raise_for_status() is res
    assert "Completed successfully" in res.stdout
    assert res.execution_time > 0
    assert res.run_results is not None
    results = res.run_results["results"]
    assert isinstance(results, list)
    assert len(results) == len(res.result.nodes) > 6
    # threads=2 reached dbt
    args = res.run_results["args"]
    assert isinstance(args, dict)
    assert args["threads"] == 2
    # the tables are there, in the profile's dev schema
    tables = built.example.query(
        "select table_name from information_schema.tables where table_schema = 'dev'"
    )
    assert {"orders", "customers"} <= {str(t[0]) for t in tables}


def test_dbt_runner_streaming_output_capture(
    built: Built, capfd: pytest.CaptureFixture[str]
) -> None:
    # every line reached the callback as it came, and nothing was printed for it
    assert built.streamed
    assert "\n".join(built.streamed).count("OK created") >= 6
    assert [line for line in built.streamed if "Completed successfully" in line]
    stdout_lines = built.build.stdout.splitlines()
    assert set(stdout_lines) <= set(built.streamed)
    # stream_output without a callback prints each line; without either, nothing
    res = built.runner.execute_command(["ls", "--select", "orders"], stream_output=True)
    out, _ = capfd.readouterr()
    assert res.success
    assert "jaffle_dot.marts.orders" in out
    quiet = built.runner.execute_command(["ls", "--select", "orders"])
    out, err = capfd.readouterr()
    assert "jaffle_dot.marts.orders" in quiet.stdout
    assert (out, err) == ("", "")
    # the story's example: a callback that prints each line shows it once, and the run's own
    # output does not get the printed copies
    printed = built.runner.execute_command(
        ["ls", "--select", "orders"], stream_output=True, on_line=lambda line: print(f"> {line}")
    )
    out, _ = capfd.readouterr()
    assert printed.success
    shown = [line for line in out.splitlines() if line.endswith("jaffle_dot.marts.orders")]
    assert len(shown) == 1
    assert shown[0].startswith("> ")
    assert "> " not in printed.stdout


def test_dbt_runner_callback_that_raises_does_not_stop_the_run(built: Built) -> None:
    def broken(line: str) -> None:
        raise RuntimeError("callback broke")

    res = built.runner.execute_command(["ls", "--select", "orders"], on_line=broken)
    assert res.success
    assert [w for w in res.result.warnings if "on_line raised RuntimeError: callback broke" in w]


def test_retry_logic_transient_failures(built: Built) -> None:
    # another process holds the DuckDB file (a lock dbt reports as a connection failure) for a
    # moment: the first attempt fails, the retry after the backoff succeeds
    holder = (
        "import duckdb, sys, time\n"
        "con = duckdb.connect(sys.argv[1])\n"
        "print('holding', flush=True)\n"
        "time.sleep(float(sys.argv[2]))\n"
        "con.close()\n"
    )
    database = os.environ["DOT_EXAMPLE_DUCKDB"]
    runner = datum_dot.DbtRunner(built.example.path, retries=3, home=built.home)
    with subprocess.Popen(
        [sys.executable, "-c", holder, database, "2.5"], stdout=subprocess.PIPE, text=True
    ) as proc:
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "holding"
        res = runner.run_model("stg_orders")
    assert res.success, res.result.errors
    assert "attempt 1 of 4 failed (connection)" in res.stderr
    assert "retrying with the same command in" in res.stderr


def test_error_classification_compilation_vs_execution(built: Built) -> None:
    runner = built.runner
    path = built.example.path
    with written(path, {"models/bad_sql.sql": "select no_such_column from {{ ref('orders') }}\n"}):
        database = runner.run_model("bad_sql")
    assert not database.success
    assert database.exit_code == 30
    assert isinstance(database.error, datum_dot.DbtExecutionError)
    assert "model.jaffle_dot.bad_sql" in database.error.message
    with pytest.raises(datum_dot.DbtExecutionError) as raised:
        database.raise_for_status()
    assert raised.value.result.run_id == database.result.run_id
    assert raised.value.hint == f"dot logs {database.result.run_id}"

    with written(path, {"models/bad_jinja.sql": "select {{ no_such_macro() }} as x\n"}):
        compilation = runner.run_model("bad_jinja")
    assert not compilation.success
    assert isinstance(compilation.error, datum_dot.DbtCompilationError)
    assert not isinstance(compilation.error, datum_dot.DbtExecutionError)

    failing = "select * from {{ ref('orders') }}\n"  # rows returned: the test fails
    with written(path, {"tests/orders_never_empty_fails.sql": failing}):
        quality = runner.execute_command(["test", "--select", "orders_never_empty_fails"])
    assert not quality.success
    assert isinstance(quality.error, datum_dot.DbtDataQualityError)
    # every class is a RunFailed, so a DotError with the run's exit code
    assert isinstance(quality.error, datum_dot.RunFailed)
    assert quality.error.exit_code == 30


def test_command_templating_variable_injection(built: Built) -> None:
    res = built.runner.execute_command(
        ["run", "--select", "orders"], args=["--fail-fast"], dbt_vars={"sample_rate": 50}
    )
    assert res.success, res.result.errors
    assert res.command == ["run", "--select", "orders", "--fail-fast"]
    assert res.run_results is not None
    args = res.run_results["args"]
    assert isinstance(args, dict)
    assert args["vars"] == {"feature_flag": False, "sample_rate": 50}
    assert args["select"] == ["orders"]
    assert built.example.query("select distinct sample_rate from dev.orders") == [(50,)]
    # vars are checked against dot_vars.yml before anything runs
    with pytest.raises(datum_dot.BadInput) as refused:
        built.runner.execute_command("run", dbt_vars={"sample_rate": 7})
    assert "sample_rate" in refused.value.message
    with pytest.raises(datum_dot.BadInput):
        built.runner.execute_command(["--select", "orders"])


def test_parallel_model_execution(built: Built) -> None:
    names = ["stg_orders", "stg_customers", "stg_payments"]
    runner = datum_dot.DbtRunner(built.example.path, runtime="subprocess", home=built.home)
    results = runner.run_models(names, parallel=True)
    assert [r.success for r in results] == [True, True, True]
    # one result per model, in the order asked, each running exactly its model
    ran = [[n.unique_id for n in r.result.nodes] for r in results]
    assert ran == [[f"model.jaffle_dot.{name}"] for name in names]
    assert len({r.result.run_id for r in results}) == 3
    # one after another gives the same
    again = runner.run_models(names[:2])
    assert [[n.unique_id for n in r.result.nodes] for r in again] == ran[:2]


def test_dbt_runner_calls_are_in_the_history(built: Built) -> None:
    shown = subprocess.run(
        [str(BIN / "dot"), "logs", "--json", "--last", "100"],
        cwd=built.example.path,
        env={**os.environ, "DATUM_HOME": str(built.home)},
        capture_output=True,
        text=True,
        check=True,
    )
    assert built.build.result.run_id in shown.stdout
    assert '"trigger": "sdk"' in shown.stdout


def test_dbt_runner_bad_input(built: Built, tmp_path: Path) -> None:
    with pytest.raises(datum_dot.BadInput) as missing:
        datum_dot.DbtRunner(tmp_path)
    assert "dbt_project.yml" in missing.value.message
    with pytest.raises(TypeError):
        datum_dot.DbtRunner(built.example.path, threads="4")  # type: ignore[arg-type]
    with pytest.raises(datum_dot.BadInput) as zero:
        datum_dot.DbtRunner(built.example.path, threads=0)
    assert "threads must be 1 or more" in zero.value.message
