"""`dot clean`: remove isolated builds (worktree with git, then the folder), their schemas, and
package cache entries nobody uses; keep what a running job or a schedule needs.

Fast tests lay build folders out with real git worktrees and no dbt; the `slow` ones build
with dbt on DuckDB and read the warehouse's catalog afterwards.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import pytest

from datum_dot.builds.packages import DEPS_MARKER, deps_digest
from datum_dot.cli.runview import output_lines
from datum_dot.errors import ExitCode
from datum_dot.history import RunStore, unstamp
from datum_dot.home.locks import file_lock
from datum_dot.home.settings import datum_home
from datum_dot.runs.run import RunStatus
from tests.helpers.builds import make_build, prunable, worktree_paths, write_schedules
from tests.helpers.example import ExampleProject, make_example
from tests.helpers.history import History, assert_bad_input, make_history, run_in_process

ONE_SEED = ("-s", "raw_customers")


@dataclass(frozen=True)
class Aged:
    """Three laid-out builds of three commits, last used 30, 20 and 1 days ago."""

    example: ExampleProject
    old: Path
    older: Path
    recent: Path

    @property
    def builds_dir(self) -> Path:
        return self.example.path / ".dot" / "build"

    def left(self) -> set[str]:
        return {p.name for p in self.builds_dir.iterdir()} if self.builds_dir.is_dir() else set()


@pytest.fixture
def aged(example: ExampleProject) -> Aged:
    repo = example.repo
    repo.tag("v1")
    first = repo.head()
    second = repo.commit({"README.md": "two\n"}, "two")
    third = repo.commit({"README.md": "three\n"}, "three")
    return Aged(
        example,
        old=make_build(example.path, repo, first, age_days=30),
        older=make_build(example.path, repo, second, age_days=20),
        recent=make_build(example.path, repo, third, age_days=1),
    )


def assert_worktrees_consistent(example: ExampleProject, builds_left: set[str]) -> None:
    """git lists the main worktree and exactly the builds left, and has nothing to prune."""
    listed = worktree_paths(example.repo)
    assert listed[0] == example.repo.path
    expected = {(example.path / ".dot" / "build" / h / "worktree").resolve() for h in builds_left}
    assert set(listed[1:]) == expected
    assert prunable(example.repo) == ""


# --- dry run and selection --------------------------------------------------------------------


def test_clean_dry_run_shows_the_plan_and_removes_nothing(aged: Aged) -> None:
    result = aged.example.dot("clean", "--older-than", "14d")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    removing = [line for line in lines if line.startswith("remove  ") and "refs" in line]
    assert sorted(line.split()[1] for line in removing) == sorted([aged.old.name, aged.older.name])
    assert "would free" in result.stdout
    assert "--yes" in result.stdout
    assert aged.left() == {aged.old.name, aged.older.name, aged.recent.name}
    assert_worktrees_consistent(aged.example, aged.left())


def test_clean_older_than_removes_old_builds_with_git(aged: Aged) -> None:
    result = aged.example.dot("clean", "--older-than", "14d", "--yes")
    assert result.returncode == 0, result.stderr
    assert aged.left() == {aged.recent.name}
    assert f"removed {aged.old.name}" in result.stdout
    assert "freed" in result.stdout
    assert_worktrees_consistent(aged.example, {aged.recent.name})


def test_clean_keep_and_older_than_each_protect(aged: Aged) -> None:
    result = aged.example.dot("clean", "--older-than", "14d", "--keep", "2", "--yes")
    assert result.returncode == 0, result.stderr
    assert aged.left() == {aged.older.name, aged.recent.name}
    result = aged.example.dot("clean", "--keep", "1", "--yes")
    assert result.returncode == 0, result.stderr
    assert aged.left() == {aged.recent.name}
    assert_worktrees_consistent(aged.example, aged.left())


@pytest.mark.parametrize("length", [8, 6, 40])
def test_clean_one_build_by_hash(aged: Aged, length: int) -> None:
    commit = (aged.older / "commit").read_text().strip()
    result = aged.example.dot("clean", commit[:length], "--yes")
    assert result.returncode == 0, result.stderr
    assert aged.left() == {aged.old.name, aged.recent.name}
    assert_worktrees_consistent(aged.example, aged.left())


def test_clean_all_removes_broken_entries_too(aged: Aged) -> None:
    shutil.rmtree(aged.old / "worktree")
    ghost = aged.builds_dir / "deadbeef"
    (ghost / "env" / "prod").mkdir(parents=True)
    (ghost / "commit").write_text("deadbeef" + "0" * 32 + "\n")
    result = aged.example.dot("clean", "--all", "--yes")
    assert result.returncode == 0, result.stderr
    assert aged.left() == set()
    assert_worktrees_consistent(aged.example, set())


def test_clean_json_plan_and_result(aged: Aged) -> None:
    plan = json.loads(aged.example.dot("clean", "--older-than", "14d", "--json").stdout)
    assert plan["dry_run"] is True
    assert {r["short_hash"] for r in plan["remove"]} == {aged.old.name, aged.older.name}
    assert plan["remaining"] == 1
    assert plan["freed_bytes"] >= sum(r["size_bytes"] for r in plan["remove"])
    done = json.loads(aged.example.dot("clean", "--older-than", "14d", "--json", "--yes").stdout)
    assert done["dry_run"] is False
    assert sorted(done["removed"]) == sorted([aged.old.name, aged.older.name])
    assert done["failures"] == []


# --- what stays ---------------------------------------------------------------------------------


def test_clean_keeps_a_build_held_by_a_lock_unless_forced(aged: Aged) -> None:
    with file_lock(aged.old / "env" / "prod.lock", timeout=0):
        plan = aged.example.dot("clean", "--all")
        assert f"keep    {aged.old.name}  in use" in plan.stdout
        result = aged.example.dot("clean", "--all", "--yes")
        assert result.returncode == 0, result.stderr
        assert aged.left() == {aged.old.name}
        assert (aged.old / "worktree").is_dir()
        forced = aged.example.dot("clean", "--all", "--yes", "--force")
        assert forced.returncode == 0, forced.stderr
    assert aged.left() == set()
    assert_worktrees_consistent(aged.example, set())


def test_clean_keeps_a_build_being_prepared(aged: Aged) -> None:
    with file_lock(aged.older / "worktree.lock", timeout=0):
        result = aged.example.dot("clean", "--older-than", "14d", "--yes")
    assert result.returncode == 0, result.stderr
    assert aged.left() == {aged.older.name, aged.recent.name}


def test_clean_keeps_builds_schedules_need_unless_forced(aged: Aged, hermetic: Path) -> None:
    pinned = (aged.older / "commit").read_text().strip()
    write_schedules(
        hermetic / ".datum",
        aged.example.path,
        [
            {"name": "nightly", "spec": "dev", "defer": "prod@v1", "cron": "0 6 * * *"},
            {"name": "release", "spec": "prod@v1", "pinned_commit": pinned},
        ],
    )
    plan = aged.example.dot("clean", "--all")
    assert plan.returncode == 0, plan.stderr
    assert f"keep    {aged.old.name}  needed by schedule 'nightly'" in plan.stdout
    assert "defer prod@v1" in plan.stdout
    assert f"keep    {aged.older.name}  needed by schedule 'release'" in plan.stdout
    result = aged.example.dot("clean", "--all", "--yes")
    assert result.returncode == 0, result.stderr
    assert aged.left() == {aged.old.name, aged.older.name}
    forced = aged.example.dot("clean", "--all", "--yes", "--force")
    assert forced.returncode == 0, forced.stderr
    assert aged.left() == set()
    assert_worktrees_consistent(aged.example, set())


def test_clean_keeps_a_build_a_schedule_hands_dbt_as_state(aged: Aged, hermetic: Path) -> None:
    state = aged.older / "env" / "prod" / "target"
    write_schedules(
        hermetic / ".datum",
        aged.example.path,
        [
            {"name": "slim", "spec": "dev", "dbt_args": ["--defer", "--state", str(state)]},
            {"name": "dot-defer", "spec": "dev", "dbt_args": ["--defer", "prod@v1"]},
        ],
    )
    result = aged.example.dot("clean", "--all", "--yes")
    assert result.returncode == 0, result.stderr
    assert f"keep    {aged.older.name}  needed by schedule 'slim'" in result.stdout
    assert f"keep    {aged.old.name}  needed by schedule 'dot-defer'" in result.stdout
    assert aged.left() == {aged.old.name, aged.older.name}


def test_clean_warns_about_a_schedule_ref_that_is_gone(aged: Aged, hermetic: Path) -> None:
    write_schedules(
        hermetic / ".datum", aged.example.path, [{"name": "old", "spec": "prod@gone-branch"}]
    )
    result = aged.example.dot("clean", "--keep", "1")
    assert result.returncode == ExitCode.WARNINGS, result.stderr
    assert "schedule 'old'" in result.stderr
    assert "protects nothing" in result.stderr


def test_clean_refuses_to_drop_a_schema_outside_the_template(aged: Aged) -> None:
    profile = aged.old / "env" / "prod" / "profiles.yml"
    profile.write_text(profile.read_text().replace(f"analytics_{aged.old.name}", "analytics"))
    result = aged.example.dot("clean", "--older-than", "14d", "--drop-schemas", "--yes")
    assert result.returncode == ExitCode.WARNINGS, result.stdout + result.stderr
    assert "schema 'analytics' (environment prod) does not match" in result.stdout
    assert aged.left() == {aged.old.name, aged.recent.name}


def test_clean_removes_package_cache_entries_no_build_uses(aged: Aged) -> None:
    cache = aged.example.path / ".dot" / "cache" / "deps"
    digest = deps_digest(aged.recent / "worktree")
    assert digest is not None
    for name in (digest, "0123456789abcdef", "fedcba9876543210.tmp"):
        (cache / name).mkdir(parents=True)
        (cache / name / DEPS_MARKER).write_text(name + "\n")
    plan = aged.example.dot("clean", "--older-than", "14d")
    assert "package cache 0123456789abcdef" in plan.stdout
    assert f"package cache {digest}" not in plan.stdout
    result = aged.example.dot("clean", "--older-than", "14d", "--yes")
    assert result.returncode == 0, result.stderr
    assert sorted(p.name for p in cache.iterdir() if p.is_dir()) == [digest]


def test_clean_project_in_a_subfolder_of_the_repository(tmp_path: Path) -> None:
    example = make_example(tmp_path, subdir="analytics", monkeypatch_env=False)
    repo = example.repo
    old = make_build(example.path, repo, repo.head(), age_days=30)
    recent = make_build(example.path, repo, repo.commit({"README.md": "two\n"}, "two"), age_days=1)
    digest = deps_digest(recent / "worktree" / "analytics")
    assert digest is not None
    cache = example.path / ".dot" / "cache" / "deps"
    for name in (digest, "0123456789abcdef"):
        (cache / name).mkdir(parents=True)
    result = example.dot("clean", "--keep", "1", "--yes")
    assert result.returncode == 0, result.stderr
    assert not old.exists()
    assert recent.is_dir()
    assert [p.name for p in cache.iterdir() if p.is_dir()] == [digest]
    assert_worktrees_consistent(example, {recent.name})


# --- bad input -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ((), "clean needs to know what to remove"),
        (("12345678", "--yes"), "unknown build '12345678'"),
        (("not-a-hash",), "'not-a-hash' is not a commit hash"),
        (("--older-than", "fortnight"), "--older-than 'fortnight' is not an age"),
        (("--keep", "-1"), "--keep must be a whole number from 0"),
        (("--keep", "many"), "--keep 'many' is not a whole number"),
        (("abcd1234", "--all"), "cannot be combined with --all"),
        (("--all", "--keep", "2"), "--all cannot be combined"),
    ],
)
def test_clean_bad_input(aged: Aged, args: tuple[str, ...], message: str) -> None:
    result = aged.example.dot("clean", *args)
    assert_bad_input(result, message)
    assert aged.left() == {aged.old.name, aged.older.name, aged.recent.name}


def test_clean_stops_when_schedules_cannot_be_read_unless_forced(
    aged: Aged, hermetic: Path
) -> None:
    (hermetic / ".datum").mkdir(parents=True, exist_ok=True)
    (hermetic / ".datum" / "config.yaml").write_text("projects: [not, a, mapping\n")
    result = aged.example.dot("clean", "--all", "--yes")
    assert_bad_input(result, "config.yaml")
    assert aged.left() == {aged.old.name, aged.older.name, aged.recent.name}
    forced = aged.example.dot("clean", "--all", "--yes", "--force")
    assert forced.returncode == 0, forced.stderr
    assert aged.left() == set()


# --- real builds, real schemas ---------------------------------------------------------------------


@dataclass(frozen=True)
class Three:
    """`prod@<initial>`, `prod@v1` and `prod@main` built with dbt, and a plain `analytics`."""

    history: History

    @property
    def example(self) -> ExampleProject:
        return self.history.example

    def schema(self, name: str) -> str:
        return f"analytics_{self.history.short(name)}"

    def left(self) -> set[str]:
        return {p.name for p in (self.example.path / ".dot" / "build").iterdir()}

    def dot(self, *args: str) -> Any:
        return self.example.dot(*args, env=self.history.environ)


def build_refs(history: History, *names: str) -> None:
    for name in names:
        record, _ = run_in_process(
            history.example.path,
            f"prod@{history.commits[name]}",
            *ONE_SEED,
            env=history.environ,
        )
        assert record.exit_code is ExitCode.OK, record.error


@pytest.fixture
def three(tmp_path: Path) -> Three:
    history = make_history(tmp_path)
    build_refs(history, "initial", "v1", "v2")
    con = duckdb.connect(str(history.example.database))
    try:
        con.execute("create schema analytics; create table analytics.keep_me as select 1 as id")
    finally:
        con.close()
    return Three(history)


@pytest.mark.slow
@pytest.mark.xdist_group("clean")
def test_clean_keep_1_leaves_one_and_drops_the_others_schemas(three: Three) -> None:
    h = three.history
    before = three.example.schemas()
    assert {three.schema("initial"), three.schema("v1"), three.schema("v2")} <= before
    plan = three.dot("clean", "--keep", "1", "--drop-schemas")
    assert plan.returncode == 0, plan.stderr
    assert f"drop schema {three.schema('initial')}" in plan.stdout
    assert f"drop schema {three.schema('v1')}" in plan.stdout
    assert three.schema("v2") not in plan.stdout
    assert three.example.schemas() == before

    result = three.dot("clean", "--keep", "1", "--drop-schemas", "--yes")
    assert result.returncode == 0, result.stdout + result.stderr
    assert three.left() == {h.short("v2")}
    after = three.example.schemas()
    assert three.schema("initial") not in after
    assert three.schema("v1") not in after
    assert three.schema("v2") in after
    assert "analytics" in after  # the plain schema is never touched
    assert_worktrees_consistent(three.example, {h.short("v2")})
    cache = three.example.path / ".dot" / "cache" / "deps"
    assert [p.name for p in cache.iterdir() if p.is_dir()] == [
        deps_digest(h.build_dir("v2") / "worktree")
    ]


@pytest.mark.slow
@pytest.mark.xdist_group("clean")
def test_clean_keeps_a_locked_build_and_a_scheduled_baseline(three: Three, hermetic: Path) -> None:
    h = three.history
    write_schedules(
        hermetic / ".datum",
        three.example.path,
        [{"name": "nightly", "spec": "dev", "defer": "prod@v1"}],
    )
    with file_lock(h.env_dir("initial", "prod").with_suffix(".lock"), timeout=0):
        result = three.dot("clean", "--all", "--drop-schemas", "--yes")
    assert result.returncode == 0, result.stdout + result.stderr
    assert three.left() == {h.short("initial"), h.short("v1")}
    after = three.example.schemas()
    assert {three.schema("initial"), three.schema("v1"), "analytics"} <= after
    assert three.schema("v2") not in after
    assert_worktrees_consistent(three.example, three.left())


@pytest.mark.slow
@pytest.mark.xdist_group("clean")
def test_clean_drop_failure_keeps_the_build_exits_30_and_each_drop_is_a_run(
    tmp_path: Path,
) -> None:
    history = make_history(tmp_path)
    build_refs(history, "v1")
    example, short = history.example, history.short("v1")
    store = RunStore(datum_home())
    (build_run,) = store.query()
    dry = example.dot("clean", short, "--drop-schemas", env=history.environ)
    assert dry.returncode == 0, dry.stdout + dry.stderr
    assert store.query() == [build_run]  # a dry run changes nothing, so records nothing
    holder = duckdb.connect(str(example.database))  # locks the file against other processes
    try:
        result = example.dot("clean", short, "--drop-schemas", "--yes", env=history.environ)
    finally:
        holder.close()
    assert result.returncode == ExitCode.RUNTIME_FAILURE, result.stdout + result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1
    assert "could not be removed" in errors[0]
    assert "hint: " in result.stderr
    assert f"clean {short} --drop-schemas --yes" in result.stderr
    assert "Traceback" not in result.stderr
    assert (history.build_dir("v1") / "worktree").is_dir()
    assert f"analytics_{short}" in example.schemas()
    assert_worktrees_consistent(example, {short})

    retry = example.dot("clean", short, "--drop-schemas", "--yes", env=history.environ)
    assert retry.returncode == 0, retry.stdout + retry.stderr
    assert f"analytics_{short}" not in example.schemas()
    assert_worktrees_consistent(example, set())

    ok, failed = (run for run in store.query() if run.start.command == ("clean",))
    assert (failed.status, failed.exit_code) == (RunStatus.FAILED, ExitCode.RUNTIME_FAILURE)
    assert (ok.status, ok.exit_code) == (RunStatus.SUCCESS, ExitCode.OK)
    for run in (ok, failed):
        assert (run.start.trigger, run.start.project) == ("manual", build_run.start.project)
        assert run.started_at <= run.finished_at  # type: ignore[operator]
        assert run.duration_seconds is not None
        assert run.duration_seconds >= 0
    assert failed.error_class == "CleanupError"
    assert f"{short} (could not drop schema analytics_{short}" in (failed.error_message or "")
    failed_lines = [unstamp(line) for line in output_lines(failed)]
    assert any(
        line.startswith(
            f"could not drop schema analytics_{short} (build {short}, environment prod)"
        )
        for line in failed_lines
    ), failed_lines
    assert f"kept build {short}" in "".join(failed_lines)
    ok_lines = [unstamp(line).rstrip("\n") for line in output_lines(ok)]
    assert f"dropped schema analytics_{short} (build {short}, environment prod)" in ok_lines
    assert f"removed build {short}" in ok_lines

    listing = example.dot("logs", env={**history.environ, "COLUMNS": "200"})
    assert listing.returncode == 0, listing.stderr
    # run id, started (date and time), spec, commit, command, status, duration, exit, error
    rows = {row[0]: row[3:9] for row in map(str.split, listing.stdout.splitlines()) if row}
    for run, status, code in ((ok, "SUCCESS", "0"), (failed, "FAILED", "30")):
        spec, commit, command, shown_status, _, shown_code = rows[run.run_id]
        assert (spec, commit, command, shown_status, shown_code) == (
            "-",
            "-",
            "clean",
            status,
            code,
        )
    shown = example.dot("logs", ok.run_id, env=history.environ)
    assert "dot clean" in shown.stdout
    assert f"dropped schema analytics_{short}" in shown.stdout
    as_json = json.loads(example.dot("logs", "--json", env=history.environ).stdout)
    cleans = [run for run in as_json if run["command"] == ["clean"]]
    assert [(r["status"], r["exit_code"], r["trigger"]) for r in cleans] == [
        ("SUCCESS", 0, "manual"), ("FAILED", 30, "manual")
    ]  # fmt: skip
