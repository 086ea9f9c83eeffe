"""`dot diff` on real dbt and DuckDB: two commits of a fixture project (one model gains a
column, one loses a row, one changes a value, one is added, one removed), through the
installed `dot`.

One module-scoped project builds both sides once (the first diff's `--build`); the tests then
run diffs against them and read the JSON field by field.
"""

from __future__ import annotations

import json
import os
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from datum_dot.errors import ExitCode
from tests.helpers.diff_project import DUCKDB_PROFILE, V1, V2_CHANGES, V2_REMOVED
from tests.helpers.example import BIN
from tests.helpers.repo import GitRepo, make_repo


@dataclass(frozen=True)
class Shop:
    """The project, its environment, and the first diff (which built both sides)."""

    repo: GitRepo
    env: dict[str, str]
    first: subprocess.CompletedProcess[str]

    def dot(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(BIN / "dot"), *args],
            cwd=self.repo.path,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )


def _out(result: subprocess.CompletedProcess[str]) -> str:
    return f"exit {result.returncode}\nstdout:\n{result.stdout}\nstderr:\n{result.stderr}"


@pytest.fixture(scope="module")
def shop(module_monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory) -> Shop:
    base = tmp_path_factory.mktemp("diffshop")
    repo = make_repo(base / "repo")
    repo.commit({**V1, "profiles.yml": DUCKDB_PROFILE}, "v1")
    repo.tag("v1")
    for name in V2_REMOVED:
        repo.git("rm", "-q", name)
    repo.commit(V2_CHANGES, "v2")
    repo.branch("side")
    repo.checkout("side")
    repo.commit({"models/side.sql": "select 1 as z\n"}, "never built")
    repo.tag("unbuilt")
    repo.checkout("main")
    env = {**os.environ, "DIFF_DUCKDB": str(base / "warehouse.duckdb")}
    shop = Shop(repo, env, subprocess.CompletedProcess([], 0))
    first = shop.dot("diff", "prod@v1", "prod@main", "--build", "--json")
    return Shop(repo, env, first)


def _models(data: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {m["name"]: m for m in data["models"]}


def test_diff_json_reports_every_level(shop: Shop) -> None:
    assert shop.first.returncode == 0, _out(shop.first)
    data = json.loads(shop.first.stdout)
    assert data["schema_version"] == 1
    assert data["adapter"] == "duckdb"
    assert data["levels"] == ["manifest", "relation", "rows"]
    assert data["left"]["spec"] == "prod@v1"
    assert data["left"]["kind"] == "build"
    assert data["right"]["commit"] == shop.repo.head()
    assert data["counts"] == {"added": 1, "removed": 1, "modified": 4, "columns": 2,
                              "row-count": 1, "changed-rows": 2}  # fmt: skip
    assert data["verdicts"] == {"added": 1, "removed": 1, "modified": 4, "data-changed": 0,
                                "unchanged": 0}  # fmt: skip
    models = _models(data)
    assert models["new_model"]["verdict"] == "added"
    assert models["new_model"]["relation"] is None
    assert models["old_model"]["verdict"] == "removed"

    customers = models["customers"]
    assert customers["categories"] == ["modified", "columns"]
    assert customers["manifest"]["checksum_changed"] is True
    assert customers["relation"]["columns_added"] == [{"name": "country", "type": "VARCHAR"}]
    assert customers["relation"]["columns_removed"] == []
    assert customers["relation"]["row_count"] == {"left": 2, "right": 2}
    assert customers["rows"]["mode"] == "key"
    assert customers["rows"]["key"] == ["customer_id"]
    assert customers["rows"]["key_source"] == "unique test"
    assert customers["rows"]["changed"] == 0

    orders = models["orders"]
    assert orders["categories"] == ["modified", "row-count", "changed-rows"]
    assert orders["relation"]["row_count"] == {"left": 3, "right": 2}
    rows = orders["rows"]
    assert (rows["only_left"], rows["only_right"], rows["changed"]) == (1, 0, 0)
    assert rows["samples"]["only_left"] == [{"order_id": 103, "customer_id": 2}]

    payments = models["payments"]
    assert payments["categories"] == ["modified", "changed-rows"]
    rows = payments["rows"]
    assert (rows["only_left"], rows["only_right"], rows["changed"]) == (0, 0, 1)
    assert rows["changed_by_column"] == {"amount": 1}
    assert rows["samples"]["changed"] == [
        {"key": {"payment_id": 2}, "columns": {"amount": {"left": 20, "right": 25}}}
    ]

    typed = models["typed"]  # no key, re-typed: whole rows, the column compared as text
    assert typed["categories"] == ["modified", "columns"]
    assert typed["relation"]["columns_retyped"] == [
        {"name": "score", "left": "VARCHAR", "right": "INTEGER"}
    ]
    assert typed["rows"]["mode"] == "whole-row"
    assert typed["rows"]["key"] == []
    assert (typed["rows"]["only_left"], typed["rows"]["only_right"]) == (0, 0)
    assert typed["notes"] == ["column score (VARCHAR and INTEGER) compared as text"]


def test_diff_is_recorded_in_the_history(shop: Shop) -> None:
    data = json.loads(shop.first.stdout)
    shown = shop.dot("logs", data["run_id"], "--json")
    assert shown.returncode == 0, _out(shown)
    record = json.loads(shown.stdout)
    text = json.dumps(record)
    assert '"diff"' in text
    assert data["left"]["commit"] in text
    assert data["right"]["commit"] in text
    home = Path(shop.env["DATUM_HOME"])
    kept = json.loads((home / "runs" / data["run_id"] / "diff.json").read_text())
    assert kept["counts"] == data["counts"]


def test_diff_fail_on_exits_with_its_own_code_and_selects(shop: Shop) -> None:
    found = shop.dot("diff", "prod@v1", "prod@main", "-s", "payments", "--fail-on", "removed")
    assert found.returncode == 0, _out(found)  # payments alone: nothing removed
    assert "payments" in found.stdout
    assert "old_model" not in found.stdout
    assert found.stdout.splitlines()[0].endswith(", 1 node")  # one node, not "1 nodes"
    hit = shop.dot("diff", "prod@v1", "prod@main", "--fail-on", "removed,changed-rows",
                   "--no-rows", "--markdown")  # fmt: skip
    assert hit.returncode == ExitCode.DIFF_FOUND == 11, _out(hit)
    assert "| removed | `old_model` |" in hit.stdout
    assert "**--fail-on**: found removed" in hit.stdout
    assert "changed-rows" not in hit.stdout.split("**--fail-on**")[1]  # --no-rows: not compared
    # --exclude leaves the removed model out, so --fail-on removed finds nothing
    kept = shop.dot("diff", "prod@v1", "prod@main", "--exclude", "old_model", "--no-rows",
                    "--fail-on", "removed", "--json")  # fmt: skip
    assert kept.returncode == 0, _out(kept)
    assert "old_model" not in {m["name"] for m in json.loads(kept.stdout)["models"]}


def test_diff_key_not_unique_falls_back_to_whole_rows(shop: Shop) -> None:
    result = shop.dot("diff", "prod@v1", "prod@main", "-s", "orders", "--key", "customer_id",
                      "--json")  # fmt: skip
    assert result.returncode == 0, _out(result)
    orders = _models(json.loads(result.stdout))["orders"]
    assert orders["rows"]["mode"] == "whole-row"
    assert (orders["rows"]["only_left"], orders["rows"]["only_right"]) == (1, 0)
    assert any("not unique on the left side" in n for n in orders["notes"])


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (("prod@v1", "prod@main", "-s", "nothing_like_this"), "selects no model"),
        (("prod@v1", "prod@unbuilt"), "has not been built"),
        (("prod@v1", "prod@main", "--fail-on", "everything"), "is not a category"),
    ],
)
def test_diff_bad_input_exits_20(shop: Shop, args: tuple[str, ...], expected: str) -> None:
    result = shop.dot("diff", *args)
    assert result.returncode == 20, _out(result)
    assert expected in result.stderr
    assert "Traceback" not in result.stderr


def test_diff_two_warehouses_exits_20(shop: Shop) -> None:
    # the live `other` environment writes another DuckDB file; its manifest is prod@v1's
    target = shop.repo.path / "target"
    target.mkdir(exist_ok=True)
    built = next((shop.repo.path / ".dot" / "build").glob("*/env/prod/target/manifest.json"))
    (target / "manifest.json").write_bytes(built.read_bytes())
    env = {**shop.env, "DIFF_DUCKDB_OTHER": str(shop.repo.path.parent / "other.duckdb")}
    result = subprocess.run([str(BIN / "dot"), "diff", "prod@v1", "other"], cwd=shop.repo.path,
                            env=env, capture_output=True, text=True, timeout=300, check=False)  # fmt: skip
    assert result.returncode == 20, _out(result)
    assert "are in different warehouses" in result.stderr
    assert "other.duckdb" in result.stderr


def test_diff_key_column_missing_on_a_side_compares_whole_rows(shop: Shop) -> None:
    result = shop.dot("diff", "prod@v1", "prod@main", "-s", "customers", "--key", "country",
                      "--json")  # fmt: skip
    assert result.returncode == 0, _out(result)
    customers = _models(json.loads(result.stdout))["customers"]
    assert customers["rows"]["mode"] == "whole-row"
    assert customers["rows"]["columns"] == ["customer_id", "name"]
    assert customers["notes"] == [
        "key column country (--key) is missing on a side: rows compared whole"
    ]
