"""Isolated builds end to end: real git, real dbt on DuckDB, the warehouse queried afterwards.

Expensive state is shared: `built` builds two refs of one repository once (as subprocesses, the
way a user runs them) and several tests assert on the result. Tests that need a fresh project
run dbt in process through `execute()`, which keeps dbt imported between builds.
"""

from __future__ import annotations

import json
import shutil
import stat
import subprocess
from dataclasses import dataclass

import pytest
import yaml

from datum_dot.errors import ExitCode
from datum_dot.runs.run import RunStatus
from tests.helpers.example import ExampleProject
from tests.helpers.history import (
    History,
    UserState,
    assert_bad_input,
    capture_user_state,
    dot_process,
    make_history,
    read_json,
    run_dot,
    run_in_process,
    run_results,
    select_from,
    table_names,
)

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("isolated_builds")]

# A seed alone: the cheapest build that still writes to the warehouse.
ONE_SEED = ("-s", "raw_customers")


@dataclass(frozen=True)
class Built:
    """`prod@v1` then `prod@feature` built by the installed `dot`, with the user's repo around it."""

    history: History
    before: UserState
    after: UserState
    v1: subprocess.CompletedProcess[str]
    feature: subprocess.CompletedProcess[str]


@pytest.fixture(scope="module")
def built(
    module_monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory
) -> Built:
    """Shared by the module: every run gets the warehouse from `history.environ`."""
    history = make_history(tmp_path_factory.mktemp("isolated"), fragile=True)
    path, env = history.example.path, history.environ
    before = capture_user_state(history.example.repo.path)
    v1 = run_dot("build", "prod@v1", cwd=path, env=env)
    feature = run_dot("build", "prod@feature", cwd=path, env=env)
    after = capture_user_state(history.example.repo.path)
    assert v1.returncode == 0, v1.stdout + v1.stderr
    assert feature.returncode == 0, feature.stdout + feature.stderr
    return Built(history, before, after, v1, feature)


# --- schemas and contents ------------------------------------------------------------------


def test_isolated_build_writes_into_hashed_schema_only(built: Built) -> None:
    h = built.history
    schemas = h.example.schemas()
    assert f"analytics_{h.short('v1')}" in schemas
    assert "analytics" not in schemas
    assert not any(s.startswith("dev") for s in schemas)
    assert {"orders", "customers", "stg_orders", "raw_orders", "order_events"} <= table_names(
        h.example, f"analytics_{h.short('v1')}"
    )


def test_isolated_build_two_refs_get_their_own_contents(built: Built) -> None:
    h = built.history
    for name in ("v1", "v2"):
        schema = f"analytics_{h.short(name)}"
        assert select_from(h.example, "distinct version_marker", schema, "orders") == [(name,)]
    assert "SUCCESS" in built.feature.stderr
    assert f"analytics_{h.short('v2')}" in built.feature.stderr


def test_isolated_build_records_commit_in_build_folder(built: Built) -> None:
    h = built.history
    assert h.short("v1") == h.example.repo.git("rev-parse", "--short=8", "v1")
    assert (h.build_dir("v1") / "commit").read_text().strip() == h.commits["v1"]
    worktree = h.build_dir("v1") / "worktree"
    assert h.example.repo.git("rev-parse", "HEAD", cwd=worktree) == h.commits["v1"]
    assert h.example.repo.git("rev-parse", "--abbrev-ref", "HEAD", cwd=worktree) == "HEAD"
    assert "'v1' as version_marker" in (worktree / "models/marts/orders.sql").read_text()


def test_isolated_build_target_holds_the_build_manifest_and_parse_state(built: Built) -> None:
    # the isolation check's parse writes no manifest.json; the build writes it, with its nodes
    target = built.history.build_dir("v1") / "env" / "prod" / "target"
    assert (target / "partial_parse.msgpack").is_file()
    manifest = json.loads((target / "manifest.json").read_text())
    orders = manifest["nodes"]["model.jaffle_dot.orders"]
    assert orders["schema"] == f"analytics_{built.history.short('v1')}"
    # written by the build, after the parse that wrote the parse state
    parsed = (target / "partial_parse.msgpack").stat().st_mtime
    assert (target / "manifest.json").stat().st_mtime >= parsed


def test_isolated_profile_is_private_and_keeps_env_var_unrendered(built: Built) -> None:
    h = built.history
    env_dir = h.env_dir("v1", "prod")
    profile = env_dir / "profiles.yml"
    assert stat.S_IMODE(profile.stat().st_mode) == 0o600
    assert stat.S_IMODE(env_dir.stat().st_mode) == 0o700
    text = profile.read_text()
    assert str(h.example.database) not in text
    output = yaml.safe_load(text)["jaffle_dot"]["outputs"]["prod"]
    assert output["path"] == "{{ env_var('DOT_EXAMPLE_DUCKDB', 'jaffle.duckdb') }}"
    assert output["schema"] == f"analytics_{h.short('v1')}"
    assert set(yaml.safe_load(text)["jaffle_dot"]["outputs"]) == {"prod"}


def test_isolated_build_leaves_user_repository_untouched(built: Built) -> None:
    assert built.after == built.before
    project = built.history.example.path
    assert (project / ".dot" / ".gitignore").read_text().splitlines()[-1] == "*"
    assert not (project / "target").exists()
    assert not (project / "dbt_packages").exists()


def test_isolated_build_environment_threads_reach_dbt(built: Built) -> None:
    # dot_environments.yml gives prod `threads: 3` (from commit v1 on); its profile says 2.
    results = read_json(built.history.env_dir("v1", "prod") / "target" / "run_results.json")
    assert results["args"]["threads"] == 3
    assert "Concurrency: 3 threads" in built.v1.stdout


# --- dbt packages --------------------------------------------------------------------------


def test_deps_first_build_of_a_commit_runs_dbt_deps_in_worktree(built: Built) -> None:
    h = built.history
    worktree = h.build_dir("v1") / "worktree"
    assert f"installing dbt packages in {worktree}" in built.v1.stderr
    assert "Installing packages/dot_utils" in built.v1.stdout
    assert (worktree / "dbt_packages" / "dot_utils" / "macros" / "cents_to_dollars.sql").is_file()


def test_deps_second_commit_with_same_packages_reuses_cache(built: Built) -> None:
    h = built.history
    assert "installing dbt packages" not in built.feature.stderr
    assert "Installing" not in built.feature.stdout
    assert "Installed from" not in built.feature.stdout
    caches = [p for p in (h.example.path / ".dot" / "cache" / "deps").iterdir() if p.is_dir()]
    assert len(caches) == 1
    installed = h.build_dir("v2") / "worktree" / "dbt_packages"
    assert (installed / ".dot-deps-digest").read_text().strip() == caches[0].name
    assert (installed / "dot_utils" / "macros" / "cents_to_dollars.sql").is_file()


def test_deps_no_deps_skips_dbt_deps(example: ExampleProject) -> None:
    record, observer = run_in_process(example.path, "prod@HEAD", command=("parse",), deps=False)
    assert record.plan is not None
    assert record.plan.deps_args == ()
    assert not any("installing dbt packages" in s for s in observer.steps)
    head = example.repo.head()
    assert not (example.path / ".dot" / "build" / head[:8] / "worktree" / "dbt_packages").exists()
    assert not (example.path / ".dot" / "cache").exists()
    # Without its package the project cannot parse: proof that nothing installed it.
    assert record.status is RunStatus.FAILED


# --- worktrees -----------------------------------------------------------------------------


def test_worktree_reused_on_second_build(example: ExampleProject) -> None:
    first, _ = run_in_process(example.path, "prod@HEAD", *ONE_SEED)
    assert first.exit_code is ExitCode.OK
    worktree = example.path / ".dot" / "build" / example.repo.head()[:8] / "worktree"
    inode = worktree.stat().st_ino
    marker = worktree / "target" / "kept-by-reuse"  # target/ is git-ignored in the example
    marker.parent.mkdir()
    marker.write_text("still here")
    assert example.repo.git("status", "--porcelain", cwd=worktree) == ""
    reflog = example.repo.git("reflog", cwd=worktree)
    second, observer = run_in_process(example.path, "prod@HEAD", *ONE_SEED)
    assert second.exit_code is ExitCode.OK
    assert worktree.stat().st_ino == inode
    assert marker.read_text() == "still here"
    assert example.repo.git("reflog", cwd=worktree) == reflog  # not even checked out again
    assert not any("installing dbt packages" in s for s in observer.steps)


def test_worktree_deleted_folder_is_repaired(example: ExampleProject) -> None:
    first, _ = run_in_process(example.path, "prod@HEAD", *ONE_SEED)
    assert first.exit_code is ExitCode.OK
    worktree = example.path / ".dot" / "build" / example.repo.head()[:8] / "worktree"
    shutil.rmtree(worktree)
    second, _ = run_in_process(example.path, "prod@HEAD", *ONE_SEED)
    assert second.exit_code is ExitCode.OK
    assert example.repo.git("rev-parse", "HEAD", cwd=worktree) == example.repo.head()
    assert "prunable" not in example.repo.git("worktree", "list", "--porcelain")


def test_dot_dir_removed_entirely_next_build_succeeds(example: ExampleProject) -> None:
    first, _ = run_in_process(example.path, "prod@HEAD", *ONE_SEED)
    assert first.exit_code is ExitCode.OK
    shutil.rmtree(example.path / ".dot")
    second, _ = run_in_process(example.path, "prod@HEAD", *ONE_SEED)
    assert second.exit_code is ExitCode.OK
    short = example.repo.head()[:8]
    assert (example.path / ".dot" / "build" / short / "commit").read_text().strip() == (
        example.repo.head()
    )
    listing = example.repo.git("worktree", "list", "--porcelain")
    assert listing.count("worktree ") == 2  # the main working tree and the rebuilt one
    assert "prunable" not in listing
    assert select_from(example, "count(*)", f"analytics_{short}", "raw_customers") == [(10,)]


def test_isolated_build_concurrent_same_commit_both_succeed(example: ExampleProject) -> None:
    procs = [dot_process("build", "prod@HEAD", "--", *ONE_SEED, cwd=example.path) for _ in range(2)]
    outputs = [p.communicate(timeout=300) for p in procs]
    codes = [p.returncode for p in procs]
    assert codes == [0, 0], outputs
    waited = [err for _out, err in outputs if "waiting for it" in err]
    assert len(waited) == 1, [err for _out, err in outputs]
    assert "another dot process is building prod@HEAD" in waited[0]
    short = example.repo.head()[:8]
    assert select_from(example, "count(*)", f"analytics_{short}", "raw_customers") == [(10,)]


# --- dry run -------------------------------------------------------------------------------


def test_dry_run_json_prints_plan_and_creates_nothing(example: ExampleProject) -> None:
    result = run_dot("build", "prod@HEAD", "--dry-run", "--json", cwd=example.path)
    assert result.returncode == 0, result.stderr
    plan = json.loads(result.stdout)
    head = example.repo.head()
    iso = plan["isolated"]
    assert iso["commit"] == head
    assert iso["short_hash"] == head[:8]
    assert iso["profile"]["schema_before"] == "analytics"
    assert iso["profile"]["schema_after"] == f"analytics_{head[:8]}"
    assert plan["argv"][:2] == ["dbt", "build"]
    assert plan["argv"][plan["argv"].index("--project-dir") + 1] == iso["worktree"]
    assert plan["argv"][plan["argv"].index("--threads") + 1] == "2"
    assert plan["deps"] is True
    assert plan["deps_argv"][:2] == ["dbt", "deps"]
    assert not (example.path / ".dot").exists()
    assert not example.database.exists()


def test_dry_run_no_deps_plans_no_dbt_deps(example: ExampleProject) -> None:
    record, _ = run_in_process(example.path, "prod@HEAD", dry_run=True, deps=False)
    assert record.plan is not None
    assert record.plan.to_json()["deps"] is False
    assert not (example.path / ".dot").exists()


# --- a project in a subfolder, and bad input -----------------------------------------------


@pytest.fixture(scope="module")
def sub(
    module_monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory
) -> History:
    """History with the project in `analytics/` (absent at commit `before`) and a branch
    `noprofile` whose dbt_project.yml names a profile that profiles.yml lacks."""
    history = make_history(tmp_path_factory.mktemp("sub"), subdir="analytics")
    repo = history.example.repo
    project_file = history.example.path / "dbt_project.yml"
    repo.git("checkout", "--quiet", "-b", "noprofile")
    repo.commit(
        {"analytics/dbt_project.yml": project_file.read_text().replace(
            "profile: jaffle_dot", "profile: nowhere"
        )},
        "a profile nobody has",
    )  # fmt: skip
    repo.checkout("main")
    return history


def test_isolated_build_project_in_subfolder(sub: History) -> None:
    record, _ = run_in_process(sub.example.path, "prod@v1", env=sub.environ)
    assert record.exit_code is ExitCode.OK, record.error
    worktree = sub.build_dir("v1") / "worktree"
    assert record.plan is not None
    assert record.plan.project_dir == worktree / "analytics"
    assert str(sub.example.path / ".dot" / "build").startswith(str(sub.example.repo.path))
    schema = f"analytics_{sub.short('v1')}"
    assert select_from(sub.example, "distinct version_marker", schema, "orders") == [("v1",)]


BAD_INPUT = {
    "ref_not_found": (("build", "prod@nope"), "commit not found"),
    "ref_starting_with_dash": (("build", "@-x"), "starts with '-'"),
    "bare_at": (("build", "@"), "empty git ref"),
    "no_project_at_commit": (("build", "prod@before"), "has no analytics/dbt_project.yml"),
    "profile_missing": (("build", "prod@noprofile"), "profile 'nowhere' not found"),
    "target_missing": (("build", "prod@v1", "--", "--target", "staging"), "target 'staging'"),
}


@pytest.mark.parametrize("case", list(BAD_INPUT))
def test_bad_input_exits_20_with_error_and_hint(sub: History, case: str) -> None:
    args, message = BAD_INPUT[case]
    result = run_dot(*args, cwd=sub.example.path, env=sub.environ)
    assert_bad_input(result, message)


def test_bad_input_profiles_yml_not_valid_yaml(example: ExampleProject) -> None:
    # committed: the build reads the profiles.yml its commit tracks (ADR 0013)
    short = example.repo.commit(
        {"profiles.yml": "jaffle_dot:\n  target: dev\n outputs: [\n"}, "broken profile"
    )[:8]
    result = run_dot("build", "prod@HEAD", cwd=example.path)
    assert_bad_input(result, f"{short}:profiles.yml:3: profiles.yml is not valid YAML")
    assert not (example.path / ".dot").exists()


# --- retry, and `python -m datum_dot` ------------------------------------------------------

FAIL = ("--", "-s", "raw_customers", "fragile+")


@dataclass(frozen=True)
class FragileRuns:
    """A failing isolated build (by `dot` and by `python -m datum_dot`), then a retry."""

    dot: subprocess.CompletedProcess[str]
    module: subprocess.CompletedProcess[str]
    failed_results: dict[str, str]
    retry_code: ExitCode
    retry_results: dict[str, str]


@pytest.fixture(scope="module")
def fragile(built: Built) -> FragileRuns:
    h = built.history
    target = h.env_dir("fragile", "prod") / "target"
    path, env = h.example.path, h.environ
    failing = {**env, "DOT_FRAGILE_FAIL": "yes"}
    dot = run_dot("build", "prod@fragile", *FAIL, cwd=path, env=failing)
    module = run_dot("build", "prod@fragile", *FAIL, cwd=path, env=failing, module=True)
    failed = run_results(target)
    record, _ = run_in_process(path, "prod@fragile", command=("retry",), env=env)
    return FragileRuns(dot, module, failed, record.exit_code, run_results(target))


def test_retry_reruns_only_failed_nodes_in_isolated_target(
    built: Built, fragile: FragileRuns
) -> None:
    assert fragile.dot.returncode == ExitCode.RUNTIME_FAILURE
    assert fragile.failed_results == {
        "seed.jaffle_dot.raw_customers": "success",
        "model.jaffle_dot.fragile": "error",
        "model.jaffle_dot.fragile_child": "skipped",
    }
    # The retry runs once the fault is gone, so the failed and skipped nodes (only they) now pass.
    assert fragile.retry_results == {
        "model.jaffle_dot.fragile": "success",
        "model.jaffle_dot.fragile_child": "success",
    }
    assert fragile.retry_code is ExitCode.OK
    h = built.history
    assert not (h.example.path / "target").exists()
    assert not (h.build_dir("fragile") / "worktree" / "target" / "run_results.json").exists()
    schema = f"analytics_{h.short('fragile')}"
    assert select_from(h.example, "id", schema, "fragile_child") == [(1,)]


def test_python_module_exits_like_dot_on_success(built: Built) -> None:
    h = built.history
    by_module = run_dot("build", "prod@v1", cwd=h.example.path, env=h.environ, module=True)
    assert by_module.returncode == built.v1.returncode == ExitCode.OK, by_module.stderr
    assert "SUCCESS: dbt build prod@v1" in by_module.stderr


def test_python_module_exits_like_dot_on_bad_input(built: Built) -> None:
    h = built.history
    by_dot = run_dot("build", "prod@-x", cwd=h.example.path, env=h.environ)
    by_module = run_dot("build", "prod@-x", cwd=h.example.path, env=h.environ, module=True)
    assert by_dot.returncode == by_module.returncode == ExitCode.BAD_INPUT
    assert by_module.stderr == by_dot.stderr


def test_python_module_exits_like_dot_on_dbt_failure(fragile: FragileRuns) -> None:
    assert fragile.dot.returncode == fragile.module.returncode == ExitCode.RUNTIME_FAILURE
    assert "FAILED: dbt build prod@fragile" in fragile.module.stderr
