"""`dot validate`: every check on a healthy project, each broken state with its fix, auto-fix."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from datum_dot.home import userconfig
from datum_dot.home.registration import InitRequest, init_project
from datum_dot.home.settings import datum_home
from datum_dot.preflight import Options, Report, Status, run_preflight
from tests.helpers.example import ExampleProject

CRON_MARK = "# datum-dot project=jaffle_dot schedule="


@pytest.fixture
def registered(example: ExampleProject, monkeypatch: pytest.MonkeyPatch) -> ExampleProject:
    """The example, registered with `dot init`, with an empty crontab file of its own."""
    monkeypatch.setenv("DOT_CRONTAB", str(example.path.parent / "crontab"))
    init_project(InitRequest(repo_path=example.path), home=datum_home())
    return example


def validate(project: ExampleProject, **options: object) -> Report:
    return run_preflight(
        project.path, home=datum_home(), environ=os.environ, options=Options(**options)
    )


def check(report: Report, name: str) -> tuple[Status, str, str]:
    found = [c for c in report.checks if c.name == name]
    assert len(found) == 1, [c.name for c in report.checks]
    return found[0].status, found[0].detail, found[0].fix


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def key_file() -> Path:
    return datum_home() / "keys" / "jaffle_dot.pem"


@pytest.mark.slow
def test_validate_healthy_project_passes_every_check(registered: ExampleProject) -> None:
    result = registered.dot("validate", "--connection", "--env", "prod")
    assert result.returncode == 0, result.stdout + result.stderr
    lines = [line for line in result.stdout.splitlines() if line[:2] in {"✓ ", "✗ ", "! ", "- "}]
    assert len(lines) == 15, result.stdout
    assert all(line.startswith("✓ ") for line in lines), result.stdout
    assert "target 'prod' connects" in result.stdout
    assert "15 passed, 0 failed, 0 warnings, 0 skipped" in result.stdout
    # the probe is a run like any other: recorded in the history
    logs = registered.dot("logs", "--last", "1", "--json")
    (probe,) = json.loads(logs.stdout)
    assert (probe["command"], probe["status"], probe["env"]) == (["debug"], "SUCCESS", "prod")


@pytest.mark.slow
def test_validate_failed_connection_shows_dbt_and_keeps_the_run(
    registered: ExampleProject, tmp_path: Path
) -> None:
    unreachable = {"DOT_EXAMPLE_DUCKDB": str(tmp_path / "no-such-folder" / "w.duckdb")}
    result = registered.dot("validate", "--connection", "--json", env=unreachable)
    assert result.returncode == 20, result.stderr
    checks = {c["name"]: c for c in json.loads(result.stdout)["checks"]}  # stdout is pure JSON
    connection = checks["connection"]
    assert connection["status"] == "fail"
    assert connection["detail"].startswith("dbt debug failed: ")
    logs = registered.dot("logs", "--last", "1", "--json", env=unreachable)
    (probe,) = json.loads(logs.stdout)
    assert (probe["command"], probe["status"]) == (["debug"], "FAILED")
    assert f"details: dot logs {probe['run_id']}" in connection["fix"]


def test_validate_json_and_skipped_connection(registered: ExampleProject) -> None:
    result = registered.dot("validate", "--json")
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["exit_code"] == 0
    statuses = {c["name"]: c["status"] for c in data["checks"]}
    assert statuses.pop("connection") == "skip"
    assert set(statuses.values()) == {"ok"}
    assert statuses.keys() >= {"dbt_project.yml", "profiles.yml", "profile", "target", "key"}


def break_key_mode(project: ExampleProject) -> None:
    key_file().chmod(0o644)


def break_key_missing(project: ExampleProject) -> None:
    key_file().unlink()


def break_public_key(project: ExampleProject) -> None:
    key_file().with_suffix(".pub").unlink()


def break_token_mode(project: ExampleProject) -> None:
    (datum_home() / "webhook.token").chmod(0o640)


def break_token_missing(project: ExampleProject) -> None:
    (datum_home() / "webhook.token").unlink()


def break_gitignore(project: ExampleProject) -> None:
    gitignore = project.path / ".gitignore"
    gitignore.write_text(gitignore.read_text().replace(".dot/\n", ""))


def break_isolated_profile(project: ExampleProject) -> None:
    folder = project.path / ".dot" / "build" / "abcd1234" / "env" / "dev"
    folder.mkdir(parents=True)
    (folder / "profiles.yml").write_text("x: {}\n")
    (folder / "profiles.yml").chmod(0o644)


def break_cron_orphan(project: ExampleProject) -> None:
    Path(os.environ["DOT_CRONTAB"]).write_text(f"0 6 * * * /bin/true build {CRON_MARK}gone\n")


def break_cron_executable(project: ExampleProject) -> None:
    def schedule(config: userconfig.UserConfig) -> userconfig.UserConfig:
        entry = config.projects["jaffle_dot"].model_copy(
            update={"schedules": [{"name": "nightly"}]}
        )
        return config.model_copy(update={"projects": {"jaffle_dot": entry}})

    userconfig.update_user_config(datum_home(), schedule)
    Path(os.environ["DOT_CRONTAB"]).write_text(
        f"0 6 * * * /gone/venv/bin/dot build {CRON_MARK}nightly\n"
    )


def break_profiles_missing(project: ExampleProject) -> None:
    (project.path / "profiles.yml").unlink()


def break_profile_name(project: ExampleProject) -> None:
    path = project.path / "dbt_project.yml"
    path.write_text(path.read_text().replace("profile: jaffle_dot", "profile: warehouse"))


def break_target_in_environment(project: ExampleProject) -> None:
    path = project.path / "dot_environments.yml"
    path.write_text(path.read_text().replace("target: dev", "target: staging", 1))


def break_environments_yaml(project: ExampleProject) -> None:
    (project.path / "dot_environments.yml").write_text("environment:\n  dev: [\n\tx\n")


def break_environment_key(project: ExampleProject) -> None:
    path = project.path / "dot_environments.yml"
    path.write_text(path.read_text().replace("    target: prod", "    trget: prod"))


def break_environments_encoding(project: ExampleProject) -> None:
    path = project.path / "dot_environments.yml"
    path.write_bytes(path.read_bytes() + "# café\n".encode("latin-1"))


def break_strict_var(project: ExampleProject) -> None:
    path = project.path / "dot_environments.yml"
    path.write_text(path.read_text().replace("sample_rate: 10", "sample_rate: 7"))


def break_project_yaml(project: ExampleProject) -> None:
    path = project.path / "dbt_project.yml"
    path.write_text(path.read_text() + "\n\tbroken: [\n")


def break_registration(project: ExampleProject) -> None:
    userconfig.update_user_config(datum_home(), lambda c: c.model_copy(update={"projects": {}}))


def break_config_yaml(project: ExampleProject) -> None:
    (datum_home() / "config.yaml").write_text("version: 1\nprojects:\n\t- x\n")


def break_adapter(project: ExampleProject) -> None:
    path = project.path / "profiles.yml"
    path.write_text(path.read_text().replace("type: duckdb", "type: snowflake", 1))


BROKEN: dict[str, tuple[Callable[[ExampleProject], None], str, Status, list[str], bool]] = {
    # state: (break it, check, status, words in detail + fix, has an automatic fix)
    "key-0644": (break_key_mode, "key", Status.FAIL, ["mode 0644", "chmod 600 "], True),
    "key-missing": (break_key_missing, "key", Status.FAIL, ["does not exist", "auto-fix"], True),
    "public-key-missing": (break_public_key, "key", Status.FAIL, [".pub is missing"], True),
    "token-0640": (
        break_token_mode,
        "webhook token",
        Status.FAIL,
        ["mode 0640", "chmod 600"],
        True,
    ),
    "token-missing": (break_token_missing, "webhook token", Status.WARN, ["dot init"], True),
    "gitignore": (break_gitignore, "git", Status.WARN, ["not git-ignored", "add `.dot/`"], True),
    "isolated-profile": (
        break_isolated_profile,
        "isolated profiles",
        Status.FAIL,
        ["readable by others", "chmod 600"],
        True,
    ),
    "cron-orphan": (break_cron_orphan, "crontab", Status.FAIL, ["no longer exist (gone)"], True),
    "cron-executable": (
        break_cron_executable,
        "crontab",
        Status.FAIL,
        ["/gone/venv/bin/dot, which does not exist", "re-create"],
        False,
    ),
    "profiles-missing": (
        break_profiles_missing,
        "profiles.yml",
        Status.FAIL,
        ["profiles.yml not found", "dot config set profiles-dir"],
        False,
    ),
    "profile-name": (
        break_profile_name,
        "profile",
        Status.FAIL,
        ["profile 'warehouse'", "defined: jaffle_dot", "add profile"],
        False,
    ),
    "target": (
        break_target_in_environment,
        "target",
        Status.FAIL,
        [
            "'staging' (environment file: dot_environments.yml:",
            "defined: dev, prod",
            "add output 'staging'",
        ],
        False,
    ),
    "environments-yaml": (
        break_environments_yaml,
        "dot config",
        Status.FAIL,
        ["dot_environments.yml:3: not valid YAML"],
        False,
    ),
    "environment-key": (
        break_environment_key,
        "dot config",
        Status.FAIL,
        ["dot_environments.yml:20: environment.prod.trget: unknown key", "did you mean 'target'"],
        False,
    ),
    "environments-encoding": (
        break_environments_encoding,
        "dot config",
        Status.FAIL,
        ["dot_environments.yml:31: not UTF-8 text", "save it as UTF-8"],
        False,
    ),
    "strict-var": (break_strict_var, "dot config", Status.FAIL, ["sample_rate", "7"], False),
    "project-yaml": (break_project_yaml, "dbt_project.yml", Status.FAIL, ["not valid YAML"], False),
    # Runs need no registration: validate says what `dot init` adds, and passes.
    "not-registered": (
        break_registration,
        "registration",
        Status.SKIP,
        ["runs work without it", "dot init --project-dir"],
        False,
    ),
    "config-yaml": (break_config_yaml, "registration", Status.FAIL, ["config.yaml:3"], False),
    "adapter": (break_adapter, "adapter", Status.FAIL, ["pip install dbt-snowflake"], False),
}


@pytest.mark.parametrize("state", sorted(BROKEN))
def test_validate_broken_state_fails_with_its_fix(registered: ExampleProject, state: str) -> None:
    breaker, name, status, words, fixable = BROKEN[state]
    breaker(registered)
    report = validate(registered)
    found, detail, fix = check(report, name)
    assert found is status, (detail, fix)
    for word in words:
        assert word in f"{detail} {fix}", (word, detail, fix)
    failing = next(c for c in report.checks if c.name == name)
    assert bool(failing.auto_fixes) is fixable
    expected = {Status.FAIL: 20, Status.WARN: 10, Status.SKIP: 0}[status]
    assert int(report.exit_code) == expected


def test_validate_uses_the_profile_key_not_the_project_name(registered: ExampleProject) -> None:
    path = registered.path / "dbt_project.yml"
    path.write_text(path.read_text().replace("name: jaffle_dot", "name: shop"))
    assert check(validate(registered), "profile")[0] is Status.OK


def test_validate_target_flag_and_environment(registered: ExampleProject) -> None:
    assert "'prod' (environment file" in check(validate(registered, env="prod"), "target")[1]
    status, detail, _ = check(validate(registered, target="nope"), "target")
    assert status is Status.FAIL
    assert "'nope' (flag: --target)" in detail
    assert check(validate(registered, env="qa"), "dot config")[0] is Status.FAIL


def test_validate_outside_git_warns(tmp_path: Path, registered: ExampleProject) -> None:
    copy = tmp_path / "plain"
    shutil.copytree(registered.path, copy, ignore=shutil.ignore_patterns(".git"))
    report = run_preflight(copy, home=datum_home(), environ=os.environ, options=Options())
    status, detail, fix = check(report, "git")
    assert status is Status.WARN
    assert "not in a git repository" in detail
    assert "git init" in fix


def test_validate_key_0644_on_the_command_line(registered: ExampleProject) -> None:
    key_file().chmod(0o644)
    result = registered.dot("validate")
    assert result.returncode == 20, result.stdout
    assert "✗ key " in result.stdout
    assert f"fix: chmod 600 {key_file()}" in result.stdout
    assert "Traceback" not in result.stderr


def test_validate_auto_fix_repairs_every_safe_problem(registered: ExampleProject) -> None:
    crontab = Path(os.environ["DOT_CRONTAB"])
    others = "MAILTO=me@example.invalid\n15 * * * * /usr/bin/env true  # someone else's\n"
    crontab.write_text(others + f"0 6 * * * /bin/true build {CRON_MARK}gone\n")
    for breaker in (
        break_key_mode,
        break_public_key,
        break_token_mode,
        break_gitignore,
        break_isolated_profile,
    ):
        breaker(registered)
    untouched = {
        p: digest(p)
        for p in (registered.path / "profiles.yml", registered.path / "dbt_project.yml")
    }
    result = registered.dot("validate", "--auto-fix", "--yes")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "--auto-fix will:" in result.stdout
    assert result.stdout.count("fixed: ") == 6, result.stdout
    assert (key_file().stat().st_mode & 0o777) == 0o600
    assert key_file().with_suffix(".pub").is_file()
    assert ((datum_home() / "webhook.token").stat().st_mode & 0o777) == 0o600
    assert ".dot/" in (registered.path / ".gitignore").read_text().splitlines()
    profile = next((registered.path / ".dot").rglob("profiles.yml"))
    assert (profile.stat().st_mode & 0o777) == 0o600
    assert crontab.read_text() == others
    assert {p: digest(p) for p in untouched} == untouched
    assert check(validate(registered), "key")[0] is Status.OK


def test_validate_auto_fix_without_yes_and_terminal_changes_nothing(
    registered: ExampleProject,
) -> None:
    break_key_mode(registered)
    result = registered.dot("validate", "--auto-fix")
    assert result.returncode == 20
    assert "nothing changed" in result.stderr
    assert (key_file().stat().st_mode & 0o777) == 0o644


def test_validate_auto_fix_creates_a_missing_key_and_token(registered: ExampleProject) -> None:
    break_key_missing(registered)
    break_token_missing(registered)
    result = registered.dot("validate", "--auto-fix", "--yes", "--json")
    assert result.returncode == 0, result.stdout
    data = json.loads(result.stdout)
    assert len(data["fixes_applied"]) == 2
    assert key_file().is_file()
    assert (datum_home() / "webhook.token").is_file()


def test_validate_auto_fix_json_needs_yes(registered: ExampleProject) -> None:
    result = registered.dot("validate", "--auto-fix", "--json")
    assert result.returncode == 20
    assert "add --yes" in result.stderr


def test_validate_outside_a_project_is_bad_input(tmp_path: Path, example: ExampleProject) -> None:
    result = example.dot("validate", cwd=tmp_path)
    assert result.returncode == 20
    assert result.stderr.startswith("error: no dbt_project.yml")


@pytest.mark.parametrize(
    ("warnings", "words"), [(0, "0 warnings,"), (1, "1 warning,"), (2, "2 warnings,")]
)
def test_validate_summary_counts_warnings_in_good_english(
    warnings: int, words: str, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    from datum_dot.cli.setup_render import print_report
    from datum_dot.preflight.model import Check

    warned = [Check(f"w{n}", Status.WARN, "not quite") for n in range(warnings)]
    checks = (Check("a", Status.OK, "fine"), *warned)
    print_report(Report(tmp_path, checks))
    assert f"1 passed, 0 failed, {words} 0 skipped" in capsys.readouterr().out
