"""dbt runs from the project folder, wherever `dot` was started: a profile's relative DuckDB path
(the example's default `jaffle.duckdb`) is the project's file, for every runtime.

Regression: `dot run dev` started in `models/` created an empty `models/jaffle.duckdb` and failed.
"""

from __future__ import annotations

import threading
from pathlib import Path

import duckdb
import pytest

from datum_dot.runs.workdir import project_cwd
from tests.helpers.example import ExampleProject

pytestmark = pytest.mark.xdist_group("project_cwd")


def _tables(database: Path, schema: str) -> set[str]:
    con = duckdb.connect(str(database), read_only=True)
    try:
        rows = con.execute(
            "select table_name from information_schema.tables where table_schema = ?", [schema]
        ).fetchall()
    finally:
        con.close()
    return {str(r[0]) for r in rows}


@pytest.mark.slow
def test_project_cwd_relative_duckdb_path_from_a_subfolder_every_runtime(
    example: ExampleProject, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("DOT_EXAMPLE_DUCKDB")  # the profile's own relative default applies
    models = example.path / "models"
    before = sorted(p.name for p in models.rglob("*"))
    deps = example.dot("deps", "dev", cwd=models)
    assert deps.returncode == 0, deps.stderr
    # in process, in a forked child (a timeout needs one), and the dbt CLI
    for extra in ((), ("--timeout", "600"), ("--runtime", "subprocess")):
        result = example.dot("seed", "dev", *extra, cwd=models)
        assert result.returncode == 0, (extra, result.stdout + result.stderr)
        assert sorted(p.name for p in models.rglob("*")) == before, extra
    built = example.dot("run", "dev", cwd=models)
    assert built.returncode == 0, built.stdout + built.stderr
    assert {"raw_orders", "stg_orders", "orders"} <= _tables(example.path / "jaffle.duckdb", "dev")
    assert sorted(p.name for p in models.rglob("*")) == before


def test_project_cwd_restores_the_folder_and_lets_one_project_share_it(tmp_path: Path) -> None:
    start = Path.cwd()
    project, other = tmp_path / "project", tmp_path / "other"
    project.mkdir()
    other.mkdir()
    inside = threading.Event()
    release = threading.Event()
    seen: list[Path] = []

    def same_project() -> None:
        with project_cwd(project):
            seen.append(Path.cwd())
            inside.set()
            release.wait(10)

    def other_project() -> None:
        with project_cwd(other):
            seen.append(Path.cwd())

    first = threading.Thread(target=same_project)
    first.start()
    assert inside.wait(10)
    with project_cwd(project):  # the same folder: shared at once, not waited for
        assert Path.cwd() == project.resolve()
    waiter = threading.Thread(target=other_project)
    waiter.start()
    waiter.join(0.3)
    assert waiter.is_alive()  # another folder waits until the first run is done
    release.set()
    first.join(10)
    waiter.join(10)
    assert seen == [project.resolve(), other.resolve()]
    assert Path.cwd() == start


@pytest.mark.slow
def test_project_cwd_clean_drops_the_schema_in_the_projects_duckdb_from_a_subfolder(
    example: ExampleProject, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("DOT_EXAMPLE_DUCKDB")  # the profile's own relative default applies
    models = example.path / "models"
    database = example.path / "jaffle.duckdb"
    built = example.dot("seed", "dev@HEAD", "--disable-prompts", "--", "-s", "raw_orders")
    assert built.returncode == 0, built.stdout + built.stderr
    short = example.repo.head()[:8]
    assert _tables(database, f"dev_{short}") == {"raw_orders"}
    before = sorted(p.name for p in models.rglob("*"))
    cleaned = example.dot("clean", "--all", "--drop-schemas", "--yes", cwd=models)
    assert cleaned.returncode == 0, cleaned.stdout + cleaned.stderr
    assert _tables(database, f"dev_{short}") == set()  # dropped where it was built
    assert sorted(p.name for p in models.rglob("*")) == before  # no models/jaffle.duckdb
