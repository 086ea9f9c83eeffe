"""`datum dbt <word> ...` gives the same results as the `dot` spelling of the same command."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
import yaml

from datum_dot.home.registration import InitRequest, init_project
from datum_dot.home.settings import datum_home
from tests.helpers.example import ExampleProject


@pytest.fixture
def registered(example: ExampleProject) -> ExampleProject:
    init_project(InitRequest(repo_path=example.path), home=datum_home())
    return example


def plan(project: ExampleProject, *args: str, program: str = "dot") -> dict[str, Any]:
    result = project.dot(*args, program=program)
    assert result.returncode == 0, result.stderr
    data: dict[str, Any] = json.loads(result.stdout)
    return data


def test_datum_init_registers_like_dot_init(example: ExampleProject, tmp_path: Path) -> None:
    datum = example.dot("dbt", "init", "--repo-path", ".", "--json", program="datum")
    assert datum.returncode == 0, datum.stderr
    other_home = {"DATUM_HOME": str(tmp_path / "other-home")}
    dot = example.dot("init", "--repo-path", ".", "--json", env=other_home)
    assert dot.returncode == 0, dot.stderr
    a, b = json.loads(datum.stdout), json.loads(dot.stdout)
    for data in (a, b):
        del data["registration"]["created_at"]
        for key in ("private_key", "public_key", "webhook_token"):
            data[key] = Path(data[key]).name
        data["changes"] = len(data["changes"])
    assert a == b
    again = example.dot("init", program="datum")
    assert "nothing changed" in again.stdout


def test_datum_validate_is_dot_validate(registered: ExampleProject) -> None:
    datum = registered.dot("dbt", "validate", "--json", program="datum")
    dot = registered.dot("validate", "--json")
    assert (datum.returncode, datum.stdout) == (dot.returncode, dot.stdout)
    assert datum.returncode == 0, datum.stdout


def test_datum_run_options_map_onto_dot_run(registered: ExampleProject) -> None:
    profiles = registered.path / "profiles.yml"
    datum = plan(
        registered,
        *("dbt", "run", "--target", "prod", "--profile", str(profiles)),
        *("--vars", "{sample_rate: 5}", "--timeout", "600", "--dry-run", "--json"),
        program="datum",
    )
    # --target prod is the environment whose target is prod (a --vars value is not a spec).
    dot = plan(
        registered,
        *("run", "prod", "--vars", "{sample_rate: 5}", "--timeout", "600", "--dry-run"),
        *("--json", "--", "--profiles-dir", str(registered.path)),
    )
    assert datum == dot
    assert datum["environment"] == "prod"
    assert datum["argv"][datum["argv"].index("--target") + 1] == "prod"
    assert datum["vars"]["sample_rate"] == 5


def test_datum_run_uses_the_registered_target_when_nothing_else_names_one(
    registered: ExampleProject,
) -> None:
    (registered.path / "dot_environments.yml").unlink()
    (registered.path / "dot_vars.yml").unlink()
    assert registered.dot("config", "set", "target", "prod").returncode == 0
    datum = plan(registered, "dbt", "run", "--dry-run", "--json", program="datum")
    dot = plan(registered, "run", "--dry-run", "--json", "--", "--target", "prod")
    # the same run; the plans differ only in saying where the target came from
    datum_target = datum.pop("settings")["flags"]["target"]
    dot_target = dot.pop("settings")["flags"]["target"]
    assert datum == dot
    assert (datum_target["value"], datum_target["source"]) == ("prod", "user-config")
    assert (dot_target["value"], dot_target["source"]) == ("prod", "command-line")
    shown = registered.dot("config", "show", "--json")
    target = next(s for s in json.loads(shown.stdout) if s["key"] == "target")
    assert (target["value"], target["source"]) == ("prod", "user config")


def test_datum_logs_is_dot_logs(registered: ExampleProject) -> None:
    datum = registered.dot("dbt", "logs", "--last", "5", program="datum")
    dot = registered.dot("logs", "--last", "5")
    assert (datum.returncode, datum.stdout, datum.stderr) == (
        dot.returncode,
        dot.stdout,
        dot.stderr,
    )
    assert datum.returncode == 0, datum.stderr


def test_datum_config_shows_and_sets(registered: ExampleProject) -> None:
    datum = registered.dot("dbt", "config", program="datum")
    dot = registered.dot("config", "show")
    assert (datum.returncode, datum.stdout) == (dot.returncode, dot.stdout)
    result = registered.dot("dbt", "config", "--target", "prod", program="datum")
    # Recorded, with a warning: every environment of the example sets its own target.
    assert result.returncode == 10, result.stderr
    assert "no run changes: every environment sets its own target" in result.stderr
    config = yaml.safe_load((Path(os.environ["DATUM_HOME"]) / "config.yaml").read_text())
    assert config["projects"]["jaffle_dot"]["target"] == "prod"
    bad = registered.dot("dbt", "config", "--target", "nope", program="datum")
    assert bad.returncode == 20
    assert "target 'nope' cannot be used" in bad.stderr


def test_datum_dbt_help_and_unknown_word(example: ExampleProject) -> None:
    result = example.dot("dbt", "--help", program="datum")
    assert result.returncode == 0
    assert "<init|validate|run|schedule|logs|config>" in result.stdout
    bad = example.dot("dbt", "biuld", program="datum")
    assert bad.returncode == 20
    assert "did you mean 'build'" in bad.stderr
    assert "invalid choice" not in bad.stderr
    assert "Traceback" not in bad.stderr
    missing = example.dot("dbt", "run", "--profile", "/nowhere/profiles.yml", program="datum")
    assert missing.returncode == 20
    assert "--profile /nowhere/profiles.yml does not exist" in missing.stderr
