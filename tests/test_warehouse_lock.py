"""Builds of different commits on one DuckDB file take turns on it instead of failing.

DuckDB takes one writer at a time. Two isolated builds of different commits (their own worktrees,
folders and schemas) both write to the example's one warehouse file: the second waits, says so
as it does for the build lock, and both succeed.
"""

from __future__ import annotations

import fcntl
import os
import time
from pathlib import Path

import pytest

from datum_dot import dbtcore
from datum_dot.runs import warehouse
from datum_dot.runs.planner import make_plan
from datum_dot.runs.run import RunRequest
from datum_dot.runs.spec import parse_spec
from tests.helpers.history import History, dot_process, make_history, run_dot

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("warehouse_lock")]

WAITING = "is writing to"


@pytest.fixture
def history(tmp_path: Path) -> History:
    return make_history(tmp_path)


def _warehouse_lock_held(home: Path) -> bool:
    for path in (home / "locks" / "warehouse").glob("*.lock"):
        fd = os.open(path, os.O_RDWR)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        finally:
            os.close(fd)
    return False


def test_warehouse_lock_two_commits_on_one_duckdb_file_both_succeed(history: History) -> None:
    project = history.example.path
    home = Path(os.environ["DATUM_HOME"])
    first = dot_process("build", "prod@v1", cwd=project, env=history.environ)
    deadline = time.monotonic() + 120
    while not _warehouse_lock_held(home):  # the first build is writing to the file
        assert first.poll() is None, first.communicate()
        assert time.monotonic() < deadline, "the first build never took the warehouse"
        time.sleep(0.02)
    second = dot_process("build", "prod@main", cwd=project, env=history.environ)
    out1, err1 = first.communicate(timeout=300)
    out2, err2 = second.communicate(timeout=300)
    assert first.returncode == 0, out1 + err1
    assert second.returncode == 0, out2 + err2
    database = history.example.database.resolve()
    assert f"dot: another dot process {WAITING} {database}; waiting for it" in err2
    assert WAITING not in err1
    schemas = history.example.schemas()
    assert {f"analytics_{history.short('v1')}", f"analytics_{history.short('v2')}"} <= schemas


def test_warehouse_lock_wait_counts_against_timeout(history: History) -> None:
    home = Path(os.environ["DATUM_HOME"])
    database = history.example.database.resolve()
    with warehouse.writing(database, locks_dir=home / "locks", timeout=5):
        result = run_dot("run", "dev", "--timeout", "2", cwd=history.example.path,
                         env=history.environ)  # fmt: skip
    assert result.returncode == 40, result.stdout + result.stderr
    assert f"another dot process {WAITING} {database}; waiting for it" in result.stderr
    assert "timed out after 2s waiting for another dot process" in result.stderr
    assert "Traceback" not in result.stderr
    assert not database.exists()  # dbt never opened it


def test_warehouse_lock_finds_the_profile_file(history: History, tmp_path: Path) -> None:
    project = history.example.path

    def file_of(spec: str, environ: dict[str, str]) -> Path | None:
        request = RunRequest(command=("run",), spec=parse_spec(spec), project_dir=project,
                             dry_run=True, environ=environ)  # fmt: skip
        plan = make_plan(request, options_for=dbtcore.command_options)
        return warehouse.single_writer_file(plan, environ)

    assert file_of("dev", {}) == project / "jaffle.duckdb"  # relative: the project folder
    assert file_of("prod@v1", {}) == project / "jaffle.duckdb"  # isolated: the same file
    chosen = tmp_path / "w.duckdb"
    assert file_of("dev", {"DOT_EXAMPLE_DUCKDB": str(chosen)}) == chosen
    assert file_of("dev", {"DOT_EXAMPLE_DUCKDB": ":memory:"}) is None
