"""The README cannot advertise what does not exist: its examples run, its help text matches."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers.example import BIN, ROOT, ExampleProject, make_example

README = ROOT / "README.md"
# The `$ dot ...` and `$ datum ...` examples the README shows, each run by a test below.
README_EXAMPLES = 66
pytestmark = pytest.mark.xdist_group("readme")


def readme_commands() -> list[str]:
    """Every `$ dot ...` / `$ datum ...` line of the README's console blocks, in order."""
    commands: list[str] = []
    in_console = False
    for line in README.read_text().splitlines():
        if line.startswith("```"):
            in_console = line.strip() == "```console"
            continue
        if in_console and line.startswith("$ "):
            commands.append(line[2:])
    return commands


@pytest.fixture(scope="module")
def readme_repo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ExampleProject]:
    """The example in a repository where `v1.0` is HEAD~1 and `main` is HEAD."""
    base = tmp_path_factory.mktemp("readme")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("DOT_EXAMPLE_DUCKDB", str(base / "warehouse.duckdb"))
        mp.setenv("CI", "true")
        project = make_example(base, monkeypatch_env=False)
        project.repo.tag("v1.0", annotated=True)
        orders = project.path / "models" / "marts" / "orders.sql"
        project.repo.commit(
            {"models/marts/orders.sql": orders.read_text().replace("select", "select /* v2 */", 1)},
            "v2 of orders",
        )
        yield project


def test_readme_names_the_examples() -> None:
    commands = readme_commands()
    assert "dot build prod@main" in commands
    assert "dot build dev@HEAD --defer prod@main -- -s state:modified+" in commands
    # Every `$ ` line of the README is an example: one in a block that is not ```console (or
    # otherwise missed) would silently stop being run.
    prompts = re.findall(r"^\$ ", README.read_text(), re.M)
    assert len(commands) == len(prompts)
    assert len(commands) == README_EXAMPLES, "an example was added or removed: update the count"


@pytest.mark.slow
@pytest.mark.parametrize("command", readme_commands())
def test_readme_example_runs(readme_repo: ExampleProject, command: str) -> None:
    argv = shlex.split(command)
    # One DATUM_HOME for the whole README, as for a reader running it top to bottom (`dot init`
    # registers the project that a later `dot validate` checks).
    home = readme_repo.path.parent / "datum-home"
    # Schedules go to a crontab file: the README's examples never touch the user's crontab.
    crontab = readme_repo.path.parent / "crontab"
    env = {"DATUM_HOME": str(home), "DOT_CRONTAB": str(crontab)}
    result = readme_repo.dot(*argv[1:], program=argv[0], env=env)
    assert result.returncode == 0, f"{command}\n{result.stdout[-2000:]}\n{result.stderr[-2000:]}"
    assert "Traceback" not in result.stderr


def test_readme_help_matches_the_program() -> None:
    text = README.read_text()
    for match in re.finditer(r"<!-- help:(\S+) -->\n```\n(.*?)```\n<!-- /help:\1 -->", text, re.S):
        command = match.group(1)
        result = subprocess.run(
            [str(BIN / "dot"), command, "--help"],
            env={**os.environ, "COLUMNS": "100"},
            capture_output=True,
            text=True,
            check=True,
        )
        assert match.group(2) == result.stdout, f"README's `dot {command} --help` is stale"


def test_readme_lists_every_command() -> None:
    from datum_dot.cli.main import (
        BUILD_COMMANDS,
        DBT_COMMANDS,
        SCHEDULE_COMMANDS,
        SETUP_COMMANDS,
        TOOL_COMMANDS,
        WEBHOOK_COMMANDS,
    )

    text = README.read_text()
    words = [*DBT_COMMANDS, *TOOL_COMMANDS, *SETUP_COMMANDS, *BUILD_COMMANDS]
    for name in [*words, *SCHEDULE_COMMANDS, *WEBHOOK_COMMANDS]:
        assert f"`{name}" in text, f"README does not mention `{name}`"


def test_readme_setup_commands_exist() -> None:
    text = README.read_text()
    for script in ("./scripts/demo", "./scripts/test"):
        assert script in text
        assert (ROOT / script).is_file()
        assert os.access(ROOT / script, os.X_OK)
    assert "scripts/test" in (ROOT / ".ci" / "run").read_text()


def test_readme_exit_codes_match_the_contract() -> None:
    from datum_dot.errors import ExitCode

    text = README.read_text()
    for code in ExitCode:
        assert re.search(rf"^\| {int(code)} \|", text, re.M), f"exit code {int(code)} missing"


def test_readme_example_paths_exist() -> None:
    assert (ROOT / ".dot-example" / "dot_environments.user.yml.example").is_file()
    assert Path(ROOT / "adr" / "0001-architecture.md").is_file()


@pytest.mark.parametrize("section", ["Dagster", "Airflow"])
def test_readme_integration_example_is_the_file_the_tests_run(section: str) -> None:
    # The orchestrator examples run in their own environments (scripts/test-<name>) from
    # examples/<name>/: the README must show exactly that file.
    text = README.read_text()
    body = text.split(f"\n## {section}\n", 1)[1].split("\n## ", 1)[0]
    shown = body.split("```python\n", 1)[1].split("```", 1)[0]
    example = ROOT / "examples" / section.lower()
    (path,) = sorted(example.glob("*.py"))
    assert shown == path.read_text()
