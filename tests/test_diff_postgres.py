"""`dot diff` on a real PostgreSQL server: the fixture project of `test_diff` built at two
commits into isolated schemas, compared through dbt-postgres, and the live schema against a
build."""

from __future__ import annotations

import json
import os
import subprocess
from typing import Any

import pytest

from tests.helpers.diff_project import POSTGRES_PROFILE, V1, V2_CHANGES, V2_REMOVED
from tests.helpers.example import BIN
from tests.helpers.postgres import PostgresServer
from tests.helpers.repo import make_repo

pytestmark = [pytest.mark.slow, pytest.mark.postgres, pytest.mark.xdist_group("postgres")]

LIBPQ_VARS = ("PGPASSWORD", "PGPASSFILE", "PGHOST", "PGPORT", "PGUSER", "PGDATABASE", "PGSERVICE")


@pytest.fixture(scope="module")
def diffs(
    postgres_server: PostgresServer,
    module_monkeypatch: pytest.MonkeyPatch,
    tmp_path_factory: pytest.TempPathFactory,
) -> tuple[subprocess.CompletedProcess[str], ...]:
    for key in LIBPQ_VARS:
        module_monkeypatch.delenv(key, raising=False)
    repo = make_repo(tmp_path_factory.mktemp("pgdiff") / "repo")
    repo.commit({**V1, "profiles.yml": POSTGRES_PROFILE}, "v1")
    repo.tag("v1")
    for name in V2_REMOVED:
        repo.git("rm", "-q", name)
    repo.commit(V2_CHANGES, "v2")
    env = {
        **os.environ,
        "DBT_PG_PASSWORD": postgres_server.password,
        "PGPORT_TEST": str(postgres_server.port),
    }

    def dot(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([str(BIN / "dot"), *args], cwd=repo.path, env=env,
                              capture_output=True, text=True, timeout=300, check=False)  # fmt: skip

    built = dot("diff", "prod@v1", "prod@main", "--build", "--json")
    live_build = dot("build", "prod", "--disable-prompts")
    live = dot("diff", "prod@v1", "prod", "--json", "--fail-on", "any")
    return built, live_build, live


def _out(result: subprocess.CompletedProcess[str]) -> str:
    return f"exit {result.returncode}\nstdout:\n{result.stdout}\nstderr:\n{result.stderr}"


def _models(result: subprocess.CompletedProcess[str]) -> dict[str, dict[str, Any]]:
    return {m["name"]: m for m in json.loads(result.stdout)["models"]}


def test_diff_postgres_builds_compared_in_the_warehouse(
    diffs: tuple[subprocess.CompletedProcess[str], ...],
) -> None:
    built = diffs[0]
    assert built.returncode == 0, _out(built)
    data = json.loads(built.stdout)
    assert data["adapter"] == "postgres"
    assert data["counts"] == {"added": 1, "removed": 1, "modified": 4, "columns": 2,
                              "row-count": 1, "changed-rows": 2}  # fmt: skip
    models = _models(built)
    assert [c["name"] for c in models["customers"]["relation"]["columns_added"]] == ["country"]
    assert models["customers"]["relation"]["left"].startswith('"shop"."analytics_')
    orders = models["orders"]["rows"]
    assert (orders["only_left"], orders["only_right"], orders["changed"]) == (1, 0, 0)
    assert orders["samples"]["only_left"] == [{"order_id": 103, "customer_id": 2}]
    payments = models["payments"]["rows"]
    assert payments["changed_by_column"] == {"amount": 1}
    assert payments["samples"]["changed"] == [
        {"key": {"payment_id": 2}, "columns": {"amount": {"left": 20, "right": 25}}}
    ]


def test_diff_postgres_live_schema_against_a_build(
    diffs: tuple[subprocess.CompletedProcess[str], ...],
) -> None:
    _, live_build, live = diffs
    assert live_build.returncode == 0, _out(live_build)
    assert live.returncode == 11, _out(live)
    data = json.loads(live.stdout)
    assert data["right"]["kind"] == "live"
    assert data["right"]["run_id"] is not None  # its state from the history
    assert data["failed_on"] == ["added", "removed", "modified", "columns", "row-count",
                                 "changed-rows"]  # fmt: skip
    assert _models(live)["payments"]["relation"]["right"] == '"shop"."analytics"."payments"'
