"""`dot clean --drop-schemas` against a real PostgreSQL server: the drop goes through dbt's
postgres adapter with the build's own profile, whose password is an `env_var()` rendered now.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from tests.helpers.builds import prunable, worktree_paths
from tests.helpers.example import BIN
from tests.helpers.postgres import PostgresServer
from tests.helpers.repo import GitRepo, make_repo

pytestmark = [pytest.mark.slow, pytest.mark.postgres, pytest.mark.xdist_group("postgres")]

LIBPQ_VARS = ("PGPASSWORD", "PGPASSFILE", "PGHOST", "PGPORT", "PGUSER", "PGDATABASE", "PGSERVICE")
PROJECT = {
    "dbt_project.yml": (
        'name: pgclean\nversion: "1.0.0"\nconfig-version: 2\nprofile: pgclean\n'
        'model-paths: ["models"]\n'
    ),
    "profiles.yml": """\
pgclean:
  target: prod
  outputs:
    prod:
      type: postgres
      host: 127.0.0.1
      port: "{{ env_var('PGPORT_TEST') | int }}"
      user: postgres
      password: "{{ env_var('DBT_PG_PASSWORD') }}"
      dbname: shop
      schema: cleaning
      threads: 1
""",
    "models/answer.sql": "{{ config(materialized='table') }}\nselect 42 as answer\n",
}


def dot(repo: GitRepo, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(BIN / "dot"), *args],
        cwd=repo.path,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )


def test_clean_drops_postgres_schemas_through_dbt(
    postgres_server: PostgresServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for key in LIBPQ_VARS:
        monkeypatch.delenv(key, raising=False)
    repo = make_repo(tmp_path / "repo")
    first = repo.commit(PROJECT, "v1")[:8]
    second = repo.commit({"models/answer.sql": PROJECT["models/answer.sql"] + "-- v2\n"}, "v2")[:8]
    env = {
        **os.environ,
        "DBT_PG_PASSWORD": postgres_server.password,
        "PGPORT_TEST": str(postgres_server.port),
        "CI": "true",
    }
    for ref in ("HEAD~1", "HEAD"):
        built = dot(repo, env, "build", f"@{ref}")
        assert built.returncode == 0, built.stdout + built.stderr
    postgres_server.query("create schema if not exists cleaning")
    assert {f"cleaning_{first}", f"cleaning_{second}"} <= postgres_server.schemas()

    wrong = dot(repo, {**env, "DBT_PG_PASSWORD": "nope"}, "clean", first, "--drop-schemas", "--yes")
    assert wrong.returncode == 30, wrong.stdout + wrong.stderr
    assert "hint: " in wrong.stderr
    assert "nope" not in wrong.stdout + wrong.stderr
    assert f"cleaning_{first}" in postgres_server.schemas()
    assert (repo.path / ".dot" / "build" / first / "worktree").is_dir()

    result = dot(repo, env, "clean", "--keep", "1", "--drop-schemas", "--yes")
    assert result.returncode == 0, result.stdout + result.stderr
    schemas = postgres_server.schemas()
    assert f"cleaning_{first}" not in schemas
    assert f"cleaning_{second}" in schemas
    assert "cleaning" in schemas
    assert sorted(p.name for p in (repo.path / ".dot" / "build").iterdir()) == [second]
    assert len(worktree_paths(repo)) == 2
    assert prunable(repo) == ""
