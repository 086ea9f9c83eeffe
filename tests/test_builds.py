"""`dot builds`: every isolated build on disk with its commit, refs, environments, size and use.

Most tests lay build folders out with real git worktrees (`tests.helpers.builds.make_build`)
and no dbt; `real` builds three refs with dbt on DuckDB once and checks the listing against
the warehouse.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from datum_dot.errors import ExitCode
from datum_dot.history import RunEnd, RunStart, RunStore
from datum_dot.home.locks import file_lock
from datum_dot.runs.run import RunStatus
from tests.helpers.builds import make_build, write_schedules
from tests.helpers.example import BIN, ExampleProject
from tests.helpers.history import History, assert_bad_input, make_history, run_in_process

ONE_SEED = ("-s", "raw_customers")


def builds_json(project: ExampleProject, **env: str) -> Any:
    """`dot builds --json`, parsed."""
    result = project.dot("builds", "--json", env=env or None)
    assert result.returncode in (0, 10), result.stdout + result.stderr
    return json.loads(result.stdout)


def by_hash(data: Any) -> dict[str, Any]:
    """The listed builds by short hash, in the listed order."""
    return {str(b["short_hash"]): b for b in data["builds"]}


@pytest.fixture
def two(example: ExampleProject) -> tuple[ExampleProject, str, str]:
    """`v1.0` (tag, built for prod and dev) and `main` (HEAD, built for prod)."""
    repo = example.repo
    repo.tag("v1.0")
    old = repo.head()
    new = repo.commit({"README.md": "changed\n"}, "second")
    make_build(example.path, repo, "v1.0", envs=("dev", "prod"), age_days=3)
    make_build(example.path, repo, "main", age_days=1)
    return example, old, new


def test_builds_lists_hash_refs_envs_schemas_and_size(two: tuple[ExampleProject, str, str]) -> None:
    example, old, new = two
    data = builds_json(example)
    builds = by_hash(data)
    assert list(builds) == [new[:8], old[:8]]  # most recently used first
    latest, first = builds[new[:8]], builds[old[:8]]
    assert latest["commit"] == new
    assert latest["refs"] == ["main"]
    assert first["refs"] == ["v1.0"]
    assert [e["name"] for e in first["envs"]] == ["dev", "prod"]
    assert first["schemas"] == [f"analytics_{old[:8]}", f"analytics_{old[:8]}"]
    assert latest["schemas"] == [f"analytics_{new[:8]}"]
    assert isinstance(latest["size_bytes"], int)
    assert latest["size_bytes"] > 0
    assert latest["broken"] is False
    assert latest["problems"] == []
    assert latest["last_run"] is None
    assert latest["last_used_from"] == "folder"
    assert latest["in_use"] is False
    assert latest["needed_by"] == []
    assert data["total_bytes"] == sum(b["size_bytes"] for b in builds.values())


def test_builds_text_shows_each_build(two: tuple[ExampleProject, str, str]) -> None:
    example, old, new = two
    result = example.dot("builds")
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert out.index(new[:8]) < out.index(old[:8])
    assert new in out
    assert old in out
    assert f"schema analytics_{old[:8]}" in out
    assert "refs v1.0" in out
    assert "refs main" in out
    assert "1d ago" in out
    assert "3d ago" in out
    assert "2 build(s)" in out
    assert "dot clean --older-than 14d --keep 5" in out


def test_builds_last_used_comes_from_run_results_then_history(example: ExampleProject) -> None:
    repo = example.repo
    first = repo.head()
    second = repo.commit({"README.md": "two\n"}, "two")
    make_build(example.path, repo, first, age_days=5, results=True)
    make_build(example.path, repo, second, age_days=2)
    builds = by_hash(builds_json(example))
    assert builds[first[:8]]["last_used_from"] == "run_results"
    assert builds[first[:8]]["envs"][0]["last_run_results"]

    home = Path(example.path.parent.parent / "home-history")
    store = RunStore(home)
    run_id = store.begin(
        RunStart(
            project="jaffle_dot",
            spec="prod@v0",
            command=("build",),
            env="prod",
            ref="v0",
            commit=first,
        )
    )
    store.finish(run_id, RunEnd(status=RunStatus.FAILED, exit_code=30))
    builds = by_hash(builds_json(example, DATUM_HOME=str(home)))
    listed = builds[first[:8]]
    assert listed["last_used_from"] == "history"
    assert listed["last_run"]["run_id"] == run_id
    assert listed["last_run"]["status"] == "FAILED"
    assert next(iter(builds)) == first[:8]  # just used: now the most recent


def test_builds_flags_broken_entries(example: ExampleProject) -> None:
    repo = example.repo
    head = repo.head()
    gone = make_build(example.path, repo, head)
    shutil.rmtree(gone / "worktree")
    ghost = example.path / ".dot" / "build" / "deadbeef"
    (ghost / "env" / "prod").mkdir(parents=True)
    (ghost / "commit").write_text("deadbeef" + "0" * 32 + "\n")
    (example.path / ".dot" / "build" / "cafe0000").mkdir()
    builds = by_hash(builds_json(example))
    assert builds[head[:8]]["problems"] == ["the worktree folder is gone"]
    assert builds["deadbeef"]["problems"] == [
        "the worktree folder is gone",
        "the commit is no longer in the repository",
    ]
    assert builds["deadbeef"]["envs"][0]["problem"].startswith("no profiles.yml")
    assert "cafe0000" not in builds
    foreign = json.loads(example.dot("builds", "--json").stdout)["foreign"]
    assert [(f["name"], f["reason"]) for f in foreign] == [
        ("cafe0000", "it has no commit file (or it is a link or a folder)")
    ]
    assert all(b["broken"] for b in builds.values())
    text = example.dot("builds")
    assert text.returncode == 10
    assert text.stdout.count("BROKEN") == 2
    assert "cafe0000  not made by dot, left alone" in text.stdout
    assert "broken   the commit is no longer in the repository" in text.stdout


def test_builds_shows_lock_holders_and_schedules(
    example: ExampleProject, hermetic: Path, tmp_path: Path
) -> None:
    repo = example.repo
    first = repo.head()
    repo.tag("v1")
    second = repo.commit({"README.md": "two\n"}, "two")
    busy = make_build(example.path, repo, first)
    make_build(example.path, repo, second)
    write_schedules(hermetic / ".datum", example.path, [{"name": "nightly", "spec": "prod@main"}])
    with file_lock(busy / "env" / "prod.lock", timeout=0):
        builds = by_hash(builds_json(example))
    assert builds[first[:8]]["in_use"] is True
    assert builds[second[:8]]["in_use"] is False
    assert builds[second[:8]]["needed_by"] == [
        "schedule 'nightly' of project 'shop' (spec prod@main)"
    ]
    assert builds[first[:8]]["needed_by"] == []


def test_builds_with_no_builds_says_so(example: ExampleProject) -> None:
    result = example.dot("builds")
    assert result.returncode == 0
    assert "no isolated builds in" in result.stdout
    assert by_hash(builds_json(example)) == {}


def test_builds_outside_a_project_is_bad_input(tmp_path: Path) -> None:
    result = subprocess.run(
        [str(BIN / "dot"), "builds"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert_bad_input(result, "no dbt_project.yml")


# --- real builds ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Real:
    """Three refs built with dbt, and the DATUM_HOME that recorded them."""

    history: History
    home: Path


@pytest.fixture(scope="module")
def real(module_monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory) -> Real:
    history = make_history(tmp_path_factory.mktemp("builds"))
    for ref in (history.commits["initial"], "v1", "main"):
        record, _ = run_in_process(
            history.example.path, f"prod@{ref}", *ONE_SEED, env=history.environ
        )
        assert record.exit_code is ExitCode.OK, record.error
    return Real(history, Path(os.environ["DATUM_HOME"]))


@pytest.mark.slow
@pytest.mark.xdist_group("builds")
def test_builds_of_real_builds_match_the_warehouse(real: Real) -> None:
    h = real.history
    data = builds_json(h.example, DATUM_HOME=str(real.home))
    builds = by_hash(data)
    assert list(builds) == [h.short("v2"), h.short("v1"), h.short("initial")]
    schemas = h.example.schemas()
    for name in ("initial", "v1", "v2"):
        listed = builds[h.short(name)]
        assert listed["commit"] == h.commits[name]
        assert listed["schemas"] == [f"analytics_{h.short(name)}"]
        assert f"analytics_{h.short(name)}" in schemas
        assert listed["last_run"]["status"] == "SUCCESS"
        assert listed["last_used_from"] == "history"
    assert builds[h.short("v2")]["refs"] == ["feature", "main"]
    assert builds[h.short("v1")]["refs"] == ["v1"]
