"""Hints, logs, run records and `--json` output name environment variables, never their values.

One module-scoped world plants random secret values where a user keeps them: a `NAME=value` line
of the crontab, a variable of the environment every command runs in, and the project's
profiles.yml (an `env_var(...)` call reading that variable, and a literal password). Then it runs
what reaches them: a `schedule add` whose rehearsal under cron's environment fails, a real
isolated `dot build` on DuckDB, `dot logs --json`, `dot validate`. No file under `$DATUM_HOME` or
the project's `.dot/`, and nothing printed, holds a value; the one place a literal may stay is
where the user wrote it, and the isolated profiles.yml copied from it (0600, as DESIGN.md's
"Secrets stay where they were" allows).
"""

from __future__ import annotations

import json
import os
import secrets
import stat
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.helpers.example import ExampleProject, make_example
from tests.helpers.schedules import write_crontab

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("secret_values")]

PROFILE_VAR = "DOT_TEST_WAREHOUSE_PASSWORD"


@dataclass(frozen=True)
class World:
    """What the module's commands printed and left behind.

    Attributes:
        example: The project.
        home: Its `$DATUM_HOME`.
        values: The planted values: in the crontab, in the environment, literal in the profile.
        printed: Each command's exit code, stdout and stderr, by a short name.
    """

    example: ExampleProject
    home: Path
    values: dict[str, str]
    printed: dict[str, tuple[int, str, str]]


@pytest.fixture(scope="module")
def world(
    module_monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory
) -> World:
    base = tmp_path_factory.mktemp("secret_values")
    values = {where: secrets.token_hex(16) for where in ("crontab", "environment", "literal")}
    example = make_example(base, monkeypatch_env=False)
    profiles = example.path / "profiles.yml"
    text = profiles.read_text()
    text = text.replace(
        "      schema: dev\n", f'      schema: dev\n      password: "{values["literal"]}"\n'
    )
    text = text.replace(
        "      schema: analytics\n",
        f"      schema: analytics\n      password: \"{{{{ env_var('{PROFILE_VAR}') }}}}\"\n",
    )
    profiles.write_text(text)
    example.repo.commit({}, "the warehouse wants a password")
    crontab = base / "crontab"
    write_crontab(crontab, example.database)
    # git is not on cron's PATH here, so the rehearsal fails; the token is the crontab's secret.
    with crontab.open("a") as f:
        f.write(f"PATH=/nowhere\nAPI_TOKEN={values['crontab']}\n")
    module_monkeypatch.setenv("DOT_CRONTAB", str(crontab))
    module_monkeypatch.setenv("DOT_EXAMPLE_DUCKDB", str(example.database))
    module_monkeypatch.setenv(PROFILE_VAR, values["environment"])
    printed: dict[str, tuple[int, str, str]] = {}
    for name, args in {
        "schedule add": ("schedule", "add", "nightly", "--cron", "@daily", "prod@main", "--yes"),
        "build": ("build", "prod@main"),
        "logs": ("logs", "--json"),
        "validate": ("validate",),
        "validate --json": ("validate", "--json"),
    }.items():
        done = example.dot(*args)
        printed[name] = (done.returncode, done.stdout, done.stderr)
    run_id = json.loads(printed["logs"][1])[0]["run_id"]
    for name, args in {
        "logs of the run": ("logs", run_id, "--json"),
        "raw output of the run": ("logs", run_id, "--raw"),
    }.items():
        done = example.dot(*args)
        printed[name] = (done.returncode, done.stdout, done.stderr)
    return World(example, Path(os.environ["DATUM_HOME"]), values, printed)


def test_secret_values_the_commands_ran_as_expected(world: World) -> None:
    code, _, err = world.printed["schedule add"]
    assert code == 20, err
    assert "fails under cron's environment" in err
    assert "API_TOKEN" in err  # named, so the user knows what cron sets
    code, _, err = world.printed["build"]
    assert code == 0, err
    assert world.printed["logs"][0] == 0


def test_secret_values_appear_in_no_output(world: World) -> None:
    for name, (_, out, err) in world.printed.items():
        for where, value in world.values.items():
            assert value not in out, (name, where, out)
            assert value not in err, (name, where, err)


def test_secret_values_appear_in_no_file_dot_wrote(world: World) -> None:
    folders = (world.home, world.example.path / ".dot")
    files = [p for folder in folders for p in folder.rglob("*") if p.is_file()]
    assert any(p.name == "history.sqlite" for p in files)
    assert any(p.name == "output.log" for p in files)
    isolated_profiles = [p for p in files if p.name == "profiles.yml"]
    assert isolated_profiles
    for path in files:
        data = path.read_bytes()
        for where, value in world.values.items():
            if value.encode() not in data:
                continue
            # The user wrote this one in profiles.yml and committed it: the commit's checkout
            # holds it as the user's repository does, and the isolated copy may keep it, 0600.
            assert (where, path.name) == ("literal", "profiles.yml"), (where, path)
            if "worktree" not in path.relative_to(world.example.path).parts:
                assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
    for path in isolated_profiles:
        assert f"env_var('{PROFILE_VAR}')" in path.read_text()
