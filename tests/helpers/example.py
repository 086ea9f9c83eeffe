"""The example project (`.dot-example/`) as a test fixture: copied, made a git repo, ready to run."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import duckdb

from tests.helpers.repo import GitRepo, make_repo

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / ".dot-example"
BIN = Path(sys.executable).parent


@dataclass(frozen=True)
class ExampleProject:
    """A copy of the example dbt project inside a git repository.

    Attributes:
        repo: The git repository (the project is at its top unless `subdir` was given).
        path: The dbt project folder.
        database: The DuckDB file every target of the example writes to.
    """

    repo: GitRepo
    path: Path
    database: Path

    def query(self, sql: str) -> list[tuple[object, ...]]:
        """Run a read-only query on the warehouse file."""
        con = duckdb.connect(str(self.database), read_only=True)
        try:
            return con.execute(sql).fetchall()
        finally:
            con.close()

    def schemas(self) -> set[str]:
        """The schemas that hold at least one table or view."""
        rows = self.query("select distinct table_schema from information_schema.tables")
        return {str(r[0]) for r in rows}

    def dot(
        self,
        *args: str,
        cwd: Path | None = None,
        env: dict[str, str] | None = None,
        timeout: float = 300,
        program: str = "dot",
    ) -> subprocess.CompletedProcess[str]:
        """Run the installed `dot` (or `datum`) as a subprocess in the project folder."""
        return subprocess.run(
            [str(BIN / program), *args],
            cwd=cwd or self.path,
            env={**os.environ, **(env or {})},
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )


def make_example(base: Path, *, subdir: str = "", monkeypatch_env: bool = True) -> ExampleProject:
    """Copy `.dot-example` into `base/repo[/subdir]`, `git init` and commit it once.

    The warehouse is `base/warehouse.duckdb`, passed through `DOT_EXAMPLE_DUCKDB` (the example's
    profiles.yml reads it), which this function sets in `os.environ` when `monkeypatch_env`.
    """
    repo = make_repo(base / "repo")
    project = repo.path / subdir if subdir else repo.path
    shutil.copytree(
        EXAMPLE,
        project,
        dirs_exist_ok=True,
        ignore=shutil.ignore_patterns("*.duckdb", "target", "logs", "dbt_packages", ".dot"),
    )
    repo.commit({}, "example project")
    database = base / "warehouse.duckdb"
    if monkeypatch_env:
        os.environ["DOT_EXAMPLE_DUCKDB"] = str(database)
    return ExampleProject(repo=repo, path=project, database=database)
