"""An isolated build reads its settings (and a tracked profiles.yml) from its commit (ADR 0013).

`project` is the example in a repository with branches that change the settings files; `main`
is checked out. Plans are made in process (`execute` with `dry_run`), a few through the
installed `dot`; `built` runs one real isolated build of `prod@envchange` on DuckDB while the
checkout holds uncommitted edits, and several tests read what it left.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from datum_dot.errors import ConfigError, ExitCode, VarsError
from datum_dot.vcs import git
from tests.helpers.example import ExampleProject, make_example
from tests.helpers.history import read_json, run_dot, run_in_process, select_from

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("settings_from_commit")]

ENVS = "dot_environments.yml"


@dataclass(frozen=True)
class Project:
    """The example with branches: `envchange` (prod: threads 4, sample_rate 50, default prod),
    `novars` (no dot_vars.yml), `noenvs` (no dot_environments.yml), `profchange` (prod's schema
    in profiles.yml is `analytics_two`)."""

    example: ExampleProject
    commits: dict[str, str]

    @property
    def path(self) -> Path:
        return self.example.path

    def short(self, name: str) -> str:
        return self.commits[name][:8]

    def plan(self, spec: str, *dbt_args: str, **options: Any) -> dict[str, Any]:
        """The `--dry-run --json` plan of `dot build <spec>`, made in process."""
        record, _ = run_in_process(self.path, spec, *dbt_args, dry_run=True, **options)
        assert record.plan is not None
        plan: dict[str, Any] = record.plan.to_json()
        return plan


@contextmanager
def edited(path: Path, text: str) -> Iterator[None]:
    """`path` holds `text` for the duration (an uncommitted edit), then what it held before."""
    before = path.read_text() if path.exists() else None
    path.write_text(text)
    try:
        yield
    finally:
        if before is None:
            path.unlink()
        else:
            path.write_text(before)


def _changed_envs(text: str) -> str:
    for old, new in (
        ("  default: dev\n", "  default: prod\n"),
        ("    threads: 2\n", "    threads: 4\n"),
        ("      sample_rate: 100\n", "      sample_rate: 50\n"),
    ):
        assert old in text, f"the example's {ENVS} changed; update this test"
        text = text.replace(old, new)
    return text


@pytest.fixture(scope="module")
def project(
    module_monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory
) -> Project:
    base = tmp_path_factory.mktemp("settings")
    example = make_example(base, monkeypatch_env=False)
    module_monkeypatch.setenv("DOT_EXAMPLE_DUCKDB", str(example.database))
    repo, path = example.repo, example.path
    commits = {"main": repo.head()}
    envs = (path / ENVS).read_text()
    profiles = (path / "profiles.yml").read_text()
    for branch, files, removed in (
        ("envchange", {ENVS: _changed_envs(envs)}, None),
        ("novars", {}, "dot_vars.yml"),
        ("noenvs", {}, ENVS),
        ("profchange", {"profiles.yml": profiles.replace("schema: analytics", "schema: analytics_two")}, None),
    ):  # fmt: skip
        repo.git("checkout", "--quiet", "-b", branch, "main")
        if removed:
            repo.git("rm", "--quiet", removed)
        commits[branch] = repo.commit(files, branch)
    repo.checkout("main")
    return Project(example, commits)


# --- plans -----------------------------------------------------------------------------------


def test_settings_from_commit_dry_run_json_shows_the_commits_threads_and_var(
    project: Project,
) -> None:
    result = run_dot("build", "prod@envchange", "--dry-run", "--json", cwd=project.path)
    assert result.returncode == 0, result.stderr
    plan = json.loads(result.stdout)
    argv = plan["argv"]
    assert argv[argv.index("--threads") + 1] == "4"
    assert json.loads(argv[argv.index("--vars") + 1])["sample_rate"] == 50
    threads = plan["settings"]["flags"]["threads"]
    assert (threads["value"], threads["source"]) == (4, "commit")
    assert threads["commit"] == project.short("envchange")
    assert (threads["file"], threads["key"]) == (ENVS, "environment.prod.threads")
    assert (project.path / ENVS).read_text().splitlines()[threads["line"] - 1].strip() == (
        "threads: 2"  # the same line in the checkout, which says 2
    )
    rate = plan["settings"]["vars"]["sample_rate"]
    assert (rate["value"], rate["source"], rate["commit"]) == (
        50,
        "commit",
        project.short("envchange"),
    )
    target = plan["settings"]["flags"]["target"]
    assert (target["value"], target["source"]) == ("prod", "commit")
    files = {f["file"]: f for f in plan["settings"]["files"]}
    assert files[ENVS]["source"] == "commit"
    assert files[ENVS]["found"] is True
    assert files["profiles.yml"]["source"] == "commit"
    assert plan["isolated"]["profile"]["source"] == f"{project.short('envchange')}:profiles.yml"


def test_settings_from_commit_uncommitted_edit_changes_only_the_working_tree_run(
    project: Project,
) -> None:
    envs = (project.path / ENVS).read_text()
    edit = envs.replace("    threads: 2\n", "    threads: 7\n").replace(
        "      sample_rate: 100\n", "      sample_rate: 25\n"
    )
    with edited(project.path / ENVS, edit):
        pinned = project.plan("prod@main")
        plain = project.plan("prod")
    assert pinned["argv"][pinned["argv"].index("--threads") + 1] == "2"
    assert pinned["vars"]["sample_rate"] == 100
    assert pinned["settings"]["flags"]["threads"]["source"] == "commit"
    assert pinned["settings"]["vars"]["sample_rate"]["commit"] == project.short("main")
    # a plain run is the place for an uncommitted edit, and says it read the working tree
    assert plain["argv"][plain["argv"].index("--threads") + 1] == "7"
    assert plain["settings"]["vars"]["sample_rate"] == {
        "value": 25,
        "source": "working-tree",
        "commit": None,
        "file": ENVS,
        "line": plain["settings"]["vars"]["sample_rate"]["line"],
        "key": "environment.prod.vars.sample_rate",
    }


def test_settings_from_commit_user_file_applies_on_top_and_is_reported(project: Project) -> None:
    user = "environment:\n  prod:\n    threads: 3\n    vars:\n      sample_rate: 5\n"
    with edited(project.path / "dot_environments.user.yml", user):
        plan = project.plan("prod@envchange")
    settings = plan["settings"]
    assert settings["flags"]["threads"]["value"] == 3
    assert settings["flags"]["threads"]["source"] == "user"
    assert settings["flags"]["threads"]["line"] == 3
    assert settings["vars"]["sample_rate"]["source"] == "user"
    assert settings["vars"]["sample_rate"]["value"] == 5
    # what the user file does not set still comes from the commit
    assert settings["vars"]["feature_flag"]["source"] == "commit"
    files = [f["file"] for f in settings["files"]]
    assert files.index(ENVS) < files.index("dot_environments.user.yml")
    user_file = next(f for f in settings["files"] if f["file"] == "dot_environments.user.yml")
    assert (user_file["source"], user_file["found"]) == ("user", True)


def test_settings_from_commit_command_line_and_defaults_are_named(project: Project) -> None:
    given = {"sample_rate": 10, "feature_flag": False}  # feature_flag is required
    plan = project.plan("@noenvs", "--threads", "6", cli_vars=given)
    flags, variables = plan["settings"]["flags"], plan["settings"]["vars"]
    assert flags["threads"]["value"] == "6"
    assert flags["threads"]["source"] == "command-line"
    assert flags["target"]["source"] == "default"
    assert flags["target"]["value"] == "dev"  # the profile's own `target:`
    assert variables["sample_rate"] == {
        "value": 10,
        "source": "command-line",
        "commit": None,
        "file": None,
        "line": None,
        "key": "--vars",
    }
    assert set(variables) == set(given)


def test_settings_from_commit_missing_vars_file_is_reported(project: Project) -> None:
    record, _ = run_in_process(project.path, "prod@novars", dry_run=True)
    assert record.plan is not None
    plan = record.plan.to_json()
    files = {f["file"]: f for f in plan["settings"]["files"]}
    assert files["dot_vars.yml"]["found"] is False
    assert files["dot_vars.yml"]["commit"] == project.short("novars")
    assert files["dot_vars.yml"]["note"] == "vars are not checked"
    assert any(
        f"dot_vars.yml is not in commit {project.short('novars')} (your checkout has one)" in w
        for w in record.warnings
    ), record.warnings
    # no declarations, so a value the checkout's dot_vars.yml refuses passes, as with no file
    allowed, _ = run_in_process(
        project.path, "prod@novars", dry_run=True, cli_vars={"sample_rate": 7}
    )
    assert allowed.exit_code is ExitCode.OK
    with pytest.raises(VarsError, match="sample_rate"):
        run_in_process(project.path, "prod@main", dry_run=True, cli_vars={"sample_rate": 7})


def test_settings_from_commit_missing_environments_file_names_the_commit(
    project: Project,
) -> None:
    result = run_dot("build", "prod@noenvs", "--dry-run", cwd=project.path)
    assert result.returncode == 20, result.stderr
    assert (
        f"unknown environment 'prod': commit {project.short('noenvs')} has no {ENVS}"
        in result.stderr
    )
    assert "hint: " in result.stderr
    assert "Traceback" not in result.stderr


def test_settings_from_commit_text_plan_fits_80_columns(project: Project) -> None:
    result = run_dot(
        "build", "prod@envchange", "--dry-run", cwd=project.path, env={"COLUMNS": "80"}
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    start = lines.index("settings (value, then where it was set)")
    section = lines[start : lines.index("settings files") + 5]
    assert all(len(line) <= 80 for line in section), "\n".join(section)
    short = project.short("envchange")
    threads = next(line for line in section if line.lstrip().startswith("threads"))
    assert threads.split()[1] == "4"
    line = (project.path / ENVS).read_text().splitlines().index("    threads: 2") + 1
    assert threads.endswith(f"commit {short}, {ENVS}:{line}")
    assert f"  {ENVS}       commit {short}" in section
    assert any(line.startswith("  profiles.yml") and f"commit {short}" in line for line in section)


def test_settings_from_commit_project_in_a_subfolder_names_files_from_the_top(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DOT_EXAMPLE_DUCKDB", str(tmp_path / "warehouse.duckdb"))
    example = make_example(tmp_path, subdir="analytics", monkeypatch_env=False)
    envs = (example.path / ENVS).read_text()
    bad = example.repo.commit({f"analytics/{ENVS}": envs.replace("threads:", "trheads:")})[:8]
    record, _ = run_in_process(example.path, "prod@HEAD~1", dry_run=True)
    assert record.plan is not None
    threads = record.plan.to_json()["settings"]["flags"]["threads"]
    assert (threads["file"], threads["source"]) == (f"analytics/{ENVS}", "commit")
    with pytest.raises(
        ConfigError, match=rf"^{bad}:analytics/{ENVS}:\d+: environment\.prod\.trheads"
    ):
        run_in_process(example.path, "prod@HEAD", dry_run=True)


# --- profiles.yml ----------------------------------------------------------------------------


def test_settings_from_commit_tracked_profile_is_read_from_the_commit(project: Project) -> None:
    profiles = project.path / "profiles.yml"
    changed = profiles.read_text().replace("schema: analytics", "schema: uncommitted")
    with edited(profiles, changed):
        branch = project.plan("prod@profchange")["isolated"]["profile"]
        pinned = project.plan("prod@main")["isolated"]["profile"]
    assert branch["schema_before"] == "analytics_two"
    assert branch["source"] == f"{project.short('profchange')}:profiles.yml"
    assert branch["source_commit"] is True
    assert pinned["schema_before"] == "analytics"


def test_settings_from_commit_profile_outside_the_repository_is_read_from_disk(
    project: Project, tmp_path: Path
) -> None:
    outside = tmp_path / "dbt-home"
    outside.mkdir()
    text = (project.path / "profiles.yml").read_text().replace("schema: analytics", "schema: ext")
    (outside / "profiles.yml").write_text(text)
    plan = project.plan("prod@main", env={"DBT_PROFILES_DIR": str(outside)})
    assert plan["isolated"]["profile"]["schema_before"] == "ext"
    assert plan["isolated"]["profile"]["source_commit"] is False
    files = {f["file"]: f for f in plan["settings"]["files"]}
    assert files["profiles.yml"]["source"] == "file"
    assert files["profiles.yml"]["path"] == str(outside / "profiles.yml")


# --- one real isolated build ------------------------------------------------------------------


@dataclass(frozen=True)
class Built:
    project: Project
    run: subprocess.CompletedProcess[str]

    @property
    def env_dir(self) -> Path:
        return (
            self.project.path / ".dot" / "build" / self.project.short("envchange") / "env" / "prod"
        )


@pytest.fixture(scope="module")
def built(project: Project) -> Built:
    """`dot build prod@envchange -- -s +orders` while the checkout holds uncommitted edits to
    dot_environments.yml (threads 7, sample_rate 25) and profiles.yml (schema `uncommitted`)."""
    envs, profiles = project.path / ENVS, project.path / "profiles.yml"
    env_edit = envs.read_text().replace("    threads: 2\n", "    threads: 7\n")
    env_edit = env_edit.replace("      sample_rate: 100\n", "      sample_rate: 25\n")
    profile_edit = profiles.read_text().replace("schema: analytics", "schema: uncommitted")
    with edited(envs, env_edit), edited(profiles, profile_edit):
        run = run_dot("build", "prod@envchange", "--", "-s", "+orders", cwd=project.path)
    assert run.returncode == 0, run.stdout + run.stderr
    return Built(project, run)


def test_settings_from_commit_real_build_gives_dbt_the_commits_var(built: Built) -> None:
    schema = f"analytics_{built.project.short('envchange')}"
    rows = select_from(built.project.example, "distinct sample_rate", schema, "orders")
    assert rows == [(50,)]


def test_settings_from_commit_real_build_gives_dbt_the_commits_threads(built: Built) -> None:
    results = read_json(built.env_dir / "target" / "run_results.json")
    assert results["args"]["threads"] == 4
    assert results["args"]["vars"]["sample_rate"] == 50


def test_settings_from_commit_real_build_profile_comes_from_the_commit(built: Built) -> None:
    written = yaml.safe_load((built.env_dir / "profiles.yml").read_text())
    schema = written["jaffle_dot"]["outputs"]["prod"]["schema"]
    assert schema == f"analytics_{built.project.short('envchange')}"
    assert "uncommitted" not in built.project.example.schemas()


def test_settings_from_commit_defer_reads_the_baselines_commit(built: Built) -> None:
    project = built.project
    # envchange's default environment is prod (the checkout's is dev): `--defer @envchange`
    # is its prod build, which exists only if the baseline's own settings are read
    plan = project.plan("dev@main", defer="@envchange")
    defer = plan["defer"]
    assert defer["environment"] == "prod"
    assert defer["state"] == str(built.env_dir / "target")
    assert defer["settings_file"]["commit"] == project.short("envchange")
    assert defer["settings_file"]["source"] == "commit"
    argv = plan["argv"]
    assert argv[argv.index("--state") + 1] == str(built.env_dir / "target")


def test_settings_from_commit_read_files_at_reads_several_files_of_a_commit(
    project: Project,
) -> None:
    sha = git.validate_sha(project.commits["novars"])
    found = git.read_files_at(
        project.example.repo.path, sha, [ENVS, "dot_vars.yml", "models", "./profiles.yml"]
    )
    assert found[ENVS] == (project.path / ENVS).read_text()
    assert found["dot_vars.yml"] is None  # removed in that commit
    assert found["models"] is None  # a folder is no file
    assert found["./profiles.yml"] == (project.path / "profiles.yml").read_text()
    with pytest.raises(ValueError, match="not a file path inside"):
        git.read_files_at(project.example.repo.path, sha, ["../outside"])
