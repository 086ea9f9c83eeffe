"""Artifacts kept with each run: copied (never linked) with their sha256, listed, pruned, and
an older history file upgraded to hold them. Real SQLite files and run folders."""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest

from datum_dot.history import RunEnd, RunStart, RunStore
from datum_dot.history.artifacts import ARTIFACT_NAMES, keep_artifacts
from datum_dot.history.database import APPLICATION_ID, MIGRATIONS
from datum_dot.home.settings import datum_home
from datum_dot.runs.run import RunStatus

RESULTS = {"results": [{"unique_id": "model.shop.orders", "status": "success"}]}
MANIFEST = {"nodes": {"model.shop.orders": {"name": "orders", "relation_name": '"w"."a"."orders"'}}}


def _target(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "run_results.json").write_text(json.dumps(RESULTS))
    (folder / "manifest.json").write_text(json.dumps(MANIFEST))
    return folder


def _run(store: RunStore, target: Path, **start: object) -> str:
    fields: dict[str, object] = {"project": "shop", "spec": "prod", "command": ("build",)}
    run_id = store.begin(RunStart(**{**fields, **start}))  # type: ignore[arg-type]
    store.finish(run_id, RunEnd(RunStatus.SUCCESS, 0, run_results=target / "run_results.json"))
    return run_id


def test_artifacts_copied_with_sha256_and_private(tmp_path: Path) -> None:
    store = RunStore(datum_home())
    target = _target(tmp_path / "target")
    (target / "sources.json").write_text("{}")
    run = store.get(_run(store, target))
    assert set(run.artifacts) == {"manifest.json", "run_results.json", "sources.json"}
    for name, artifact in run.artifacts.items():
        data = (target / name).read_bytes()
        assert artifact.sha256 == hashlib.sha256(data).hexdigest()
        assert artifact.size == len(data)
        kept = run.run_dir / name
        assert kept.read_bytes() == data
        assert kept.stat().st_mode & 0o777 == 0o600
    assert run.to_json()["artifacts"]["manifest.json"]["bytes"] == len(json.dumps(MANIFEST))


def test_artifacts_survive_dbt_rewriting_its_target_in_place(tmp_path: Path) -> None:
    # dbt opens its artifacts for writing where they are: a hard link would follow the rewrite.
    store = RunStore(datum_home())
    target = _target(tmp_path / "target")
    run = store.get(_run(store, target))
    kept = run.run_dir / "manifest.json"
    assert kept.stat().st_ino != (target / "manifest.json").stat().st_ino
    with (target / "manifest.json").open("w") as f:
        f.write('{"nodes": {}}')
    assert json.loads(kept.read_text()) == MANIFEST


def test_artifacts_left_by_an_earlier_run_are_not_kept(tmp_path: Path) -> None:
    target = _target(tmp_path / "target")
    old = time.time() - 3600
    os.utime(target / "manifest.json", (old, old))
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    kept, failed = keep_artifacts(target, run_dir, datetime.now(UTC).replace(microsecond=0))
    assert set(kept) == {"run_results.json"}
    assert failed == []
    assert not (run_dir / "manifest.json").exists()
    assert set(ARTIFACT_NAMES) >= set(kept)


def test_artifacts_copy_failure_is_reported_not_raised(tmp_path: Path) -> None:
    target = _target(tmp_path / "target")
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / "manifest.json").mkdir()  # a folder where the copy must go: the rename fails
    kept, failed = keep_artifacts(target, run_dir, datetime(2000, 1, 1, tzinfo=UTC))
    assert set(kept) == {"run_results.json"}
    assert len(failed) == 1
    assert failed[0].startswith("manifest.json not copied: ")


def test_prune_removes_artifacts_and_index_rows(tmp_path: Path) -> None:
    store = RunStore(datum_home())
    target = _target(tmp_path / "target")
    first = _run(store, target)
    assert store.last_built("a.orders") is not None  # indexes `first`
    time.sleep(1.1)  # the next run id's second, so that `first` is the older one
    _target(target)
    second = _run(store, target)
    assert store.prune(keep=1) == [first]
    assert not (store.runs_dir / first).exists()
    with sqlite3.connect(store.path) as conn:
        rows = conn.execute("SELECT DISTINCT run_id FROM built_relations").fetchall()
    assert rows == []  # `second` was not indexed yet; `first`'s rows went with it
    found = store.last_built("a.orders")
    assert found is not None
    assert found[0].run_id == second


def test_history_of_schema_3_is_upgraded_to_keep_artifacts(tmp_path: Path) -> None:
    home = datum_home()
    home.mkdir(parents=True)
    with sqlite3.connect(home / "history.sqlite") as conn:
        for number, script in enumerate(MIGRATIONS[:3]):
            conn.executescript(
                f"BEGIN; {script}; PRAGMA user_version = {number + 1};"
                f" PRAGMA application_id = {APPLICATION_ID}; COMMIT;"
            )
    store = RunStore(home)
    run = store.get(_run(store, _target(tmp_path / "target")))
    assert "manifest.json" in run.artifacts
    with sqlite3.connect(store.path) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == len(MIGRATIONS) >= 4


@pytest.mark.parametrize("args", [["--artifacts"], ["prune", "--keep", "1", "--artifacts"]])
def test_logs_artifacts_needs_one_run(args: list[str]) -> None:
    from datum_dot.cli.main import main

    assert main(["logs", *args]) == 20
