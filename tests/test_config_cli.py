"""`dot config show | set | schema`: effective values with their sources, validated sets, schemas."""

from __future__ import annotations

import json
import os
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from datum_dot.config import schema
from datum_dot.config.environments import Environment
from datum_dot.home import effective
from datum_dot.home.registration import InitRequest, init_project
from datum_dot.home.settings import datum_home
from datum_dot.home.userconfig import ProjectEntry
from tests.helpers.example import ExampleProject

ROOT = Path(__file__).resolve().parents[1]
NOW = datetime(2025, 1, 1, tzinfo=UTC)


@pytest.fixture
def registered(example: ExampleProject) -> ExampleProject:
    init_project(InitRequest(repo_path=example.path), home=datum_home())
    return example


def show(project: ExampleProject, *args: str, env: dict[str, str] | None = None) -> dict[str, Any]:
    result = project.dot("config", "show", "--json", *args, env=env)
    assert result.returncode == 0, result.stderr
    return {s["key"]: s for s in json.loads(result.stdout)}


def config_yaml() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((datum_home() / "config.yaml").read_text())
    return data


def test_config_show_names_each_source(registered: ExampleProject) -> None:
    settings = show(registered)
    assert settings["project"]["value"] == "jaffle_dot"
    assert settings["project"]["source"] == "user config"
    assert settings["environment"] == {
        "key": "environment",
        "value": "dev",
        "source": "environment file",
        "detail": "dot_environments.yml:7",
    }
    assert settings["target"]["source"] == "environment file"
    assert settings["target"]["detail"].startswith("dot_environments.yml:")
    assert settings["profiles-dir"]["source"] == "user config"
    assert settings["datum-home"] == {
        "key": "datum-home",
        "value": os.environ["DATUM_HOME"],
        "source": "env var",
        "detail": "DATUM_HOME",
    }
    assert settings["webhook.port"]["source"] == "default"
    flagged = show(registered, "--target", "prod", "--env", "prod")
    assert (flagged["target"]["value"], flagged["target"]["source"]) == ("prod", "flag")
    assert flagged["environment"]["source"] == "flag"
    by_var = show(registered, env={"DBT_PROFILES_DIR": str(registered.path)})
    assert by_var["profiles-dir"]["source"] == "env var"


def test_config_show_text_and_without_a_project(registered: ExampleProject, tmp_path: Path) -> None:
    result = registered.dot("config")
    assert result.returncode == 0, result.stderr
    assert "target" in result.stdout
    assert "environment file (dot_environments.yml:" in result.stdout
    outside = registered.dot("config", "show", cwd=tmp_path)
    assert outside.returncode == 0, outside.stderr
    assert "datum-home" in outside.stdout
    assert "target" not in outside.stdout


def test_config_layers_in_order() -> None:
    env = Environment(name="dev", flags={"target": "from_file"})
    bare = Environment(name="dev")
    entry = ProjectEntry(
        path=Path("/p"), profiles_dir=Path("/p"), target="from_user_config", created_at=NOW
    )

    def target(**given: Any) -> tuple[str | None, str]:
        args: dict[str, Any] = {
            "env": env,
            "entry": entry,
            "flag": None,
            "environ": {},
            "profile_default": "profile_default",
            **given,
        }
        found = effective.target_setting(**args)
        return found.value, found.source.value

    assert target(flag="cli") == ("cli", "flag")
    assert target(environ={"DBT_TARGET": "var"}) == ("from_file", "environment file")
    assert target(env=bare, environ={"DBT_TARGET": "var"}) == ("var", "env var")
    assert target(env=bare) == ("from_user_config", "user config")
    assert target(env=bare, entry=None) == ("profile_default", "default")


def test_config_set_validates_and_saves(registered: ExampleProject, tmp_path: Path) -> None:
    result = registered.dot("config", "set", "target", "prod", "webhook.port", "9090")
    # Recorded, but the example's environments all set their own target: a warning, exit 10.
    assert result.returncode == 10, result.stderr
    assert "target: dev -> prod" in result.stdout
    assert "saved" not in result.stdout
    assert "no run changes: every environment sets its own target (dev: dev" in result.stderr
    saved = config_yaml()
    assert saved["projects"]["jaffle_dot"]["target"] == "prod"
    assert saved["webhook"] == {"port": 9090}
    assert show(registered)["webhook.port"]["source"] == "user config"
    elsewhere = tmp_path / "etc-dbt"
    elsewhere.mkdir()
    (elsewhere / "profiles.yml").write_text((registered.path / "profiles.yml").read_text())
    result = registered.dot("config", "set", "profiles-dir", str(elsewhere / "profiles.yml"))
    assert result.returncode == 0, result.stderr
    assert config_yaml()["projects"]["jaffle_dot"]["profiles_dir"] == str(elsewhere)
    again = registered.dot("config", "set", "target", "prod")
    assert "nothing changed" in again.stdout


@pytest.mark.parametrize(
    ("args", "needles"),
    [
        (["set", "tagret", "prod"], ["unknown config key 'tagret'", "did you mean 'target'"]),
        (["set", "target"], ["KEY VALUE pairs"]),
        (["set", "target", "nope"], ["target 'nope' cannot be used", "defined targets: dev, prod"]),
        (["set", "webhook.port", "99999"], ["webhook.port must be a port number"]),
        (["set", "profiles-dir", "/nonexistent"], ["no profiles.yml in /nonexistent"]),
        (["set", "runtime", "locl"], ["unknown runtime 'locl'", "did you mean 'local'"]),
        (["set", "project-path", "/"], ["no dbt_project.yml in /"]),
        (["set", "target", "prod", "webhook.port", "x"], ["webhook.port must be"]),
        (["set", "webhook.branch-envs", "main"], ["'main' is not branch=environment"]),
        (["set", "webhook.branch-envs", "main=-x"], ["'main=-x' is not branch=environment"]),
        (["set", "webhook.branch-envs", "a..b=prod"], ["'a..b=prod' is not branch=environment"]),
        (["set", "webhook.branch-envs", "main=prod,main=dev"], ["names branch 'main' twice"]),
    ],
)
def test_config_set_bad_input_changes_nothing(
    registered: ExampleProject, args: list[str], needles: list[str]
) -> None:
    before = (datum_home() / "config.yaml").read_bytes()
    result = registered.dot("config", *args)
    assert result.returncode == 20, result.stdout + result.stderr
    lines = result.stderr.strip().splitlines()
    assert [line.split(":")[0] for line in lines] == ["error", "hint"], result.stderr
    for needle in needles:
        assert needle in result.stderr
    assert (datum_home() / "config.yaml").read_bytes() == before


def test_config_set_needs_a_registered_project(example: ExampleProject) -> None:
    result = example.dot("config", "set", "target", "prod")
    assert result.returncode == 20
    assert "is not registered" in result.stderr
    assert "dot init" in result.stderr


def test_config_corrupted_file_is_named_with_its_line(registered: ExampleProject) -> None:
    path = datum_home() / "config.yaml"
    path.write_text("version: 1\nprojects:\n  jaffle_dot: {path: /x\n")
    result = registered.dot("config", "show")
    assert result.returncode == 20
    assert f"{path}:" in result.stderr
    assert path.read_text() == "version: 1\nprojects:\n  jaffle_dot: {path: /x\n"


def test_config_schema_shipped_files_equal_generated_ones() -> None:
    for name in schema.SCHEMAS:
        shipped = schema.shipped_schema(name)
        assert shipped.is_file()
        assert shipped.read_text() == schema.schema_text(name), (
            f"{shipped} is stale: regenerate with `dot config schema --output src/datum_dot/schemas`"
        )


def test_config_schema_validates_the_example_and_rejects_mistakes() -> None:
    envs = json.loads(schema.schema_text("environments"))
    vars_schema = json.loads(schema.schema_text("vars"))
    example = ROOT / ".dot-example"
    jsonschema.validate(yaml.safe_load((example / "dot_environments.yml").read_text()), envs)
    jsonschema.validate(
        yaml.safe_load((example / "dot_environments.user.yml.example").read_text()), envs
    )
    jsonschema.validate(yaml.safe_load((example / "dot_vars.yml").read_text()), vars_schema)
    for bad in (
        {"environmnt": {}},
        {"environment": {"dev": {"threads": None}}},
        {"isolation": {"hash_length": 2}},
        {"isolation": {"hash_lenght": 12}},
        {"environment": {"dev": {"Target": "dev"}}},
        {"environment": {"dev": {"--target": "dev"}}},
    ):
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.validate(bad, envs)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({"vars": {"x": {"strikt": True}}}, vars_schema)


def test_config_schema_command(example: ExampleProject, tmp_path: Path) -> None:
    printed = example.dot("config", "schema", "vars")
    assert printed.returncode == 0, printed.stderr
    assert printed.stdout == schema.schema_text("vars")
    written = example.dot("config", "schema", "--output", str(tmp_path))
    assert written.returncode == 0, written.stderr
    assert (tmp_path / "dot_environments.schema.json").read_text() == schema.schema_text(
        "environments"
    )
    listing = example.dot("config", "schema")
    assert str(schema.shipped_schema("environments")) in listing.stdout
    assert "yaml-language-server" in listing.stdout


def test_every_run_uses_the_registered_target_and_profiles_dir_below_env_vars(
    registered: ExampleProject, tmp_path: Path
) -> None:
    (registered.path / "dot_environments.yml").unlink()
    (registered.path / "dot_vars.yml").unlink()
    # committed: an isolated build reads the settings files of its commit (ADR 0013)
    registered.repo.commit({}, "no dot settings")
    elsewhere = tmp_path / "etc-dbt"
    elsewhere.mkdir()
    (elsewhere / "profiles.yml").write_text((registered.path / "profiles.yml").read_text())
    set_both = ("config", "set", "target", "prod", "profiles-dir", str(elsewhere))
    assert registered.dot(*set_both).returncode == 0

    def argv(*args: str, env: dict[str, str] | None = None) -> list[str]:
        result = registered.dot("run", "--dry-run", "--json", *args, env=env)
        assert result.returncode == 0, result.stderr
        found: list[str] = json.loads(result.stdout)["argv"]
        return found

    plain = argv()
    assert plain[plain.index("--target") + 1] == "prod"
    assert plain[plain.index("--profiles-dir") + 1] == str(elsewhere)
    # an isolated build isolates the registered target's schema
    isolated = registered.dot("build", "@HEAD", "--dry-run", "--json")
    assert isolated.returncode == 0, isolated.stderr
    assert json.loads(isolated.stdout)["isolated"]["profile"]["target"] == "prod"
    # the variables dbt reads sit above the user config: dbt gets no --target, and the
    # isolated profile is made from the target DBT_TARGET names, not the profile's default
    assert registered.dot("config", "set", "target", "dev").returncode == 0
    with_vars = argv(env={"DBT_TARGET": "prod", "DBT_PROFILES_DIR": str(registered.path)})
    assert "--target" not in with_vars
    assert with_vars[with_vars.index("--profiles-dir") + 1] == str(registered.path)
    isolated = registered.dot("build", "@HEAD", "--dry-run", "--json", env={"DBT_TARGET": "prod"})
    assert json.loads(isolated.stdout)["isolated"]["profile"]["target"] == "prod"
    # a flag beats them all
    flagged = argv("--", "--target", "dev")
    assert flagged[flagged.index("--target") + 1] == "dev"


def test_every_run_uses_the_registered_runtime_below_the_environment(
    registered: ExampleProject,
) -> None:
    def runtime(*args: str) -> str:
        result = registered.dot("run", "--dry-run", "--json", *args)
        assert result.returncode == 0, result.stderr
        name: str = json.loads(result.stdout)["runtime"]
        return name

    assert runtime() == "local"
    assert registered.dot("config", "set", "runtime", "subprocess").returncode == 0
    assert runtime() == "subprocess"
    assert runtime("--runtime", "local") == "local"
    shown = registered.dot("run", "--dry-run")
    assert re.search(r"^runtime\s+subprocess$", shown.stdout, re.M), shown.stdout


def test_config_set_webhook_branch_envs(registered: ExampleProject) -> None:
    result = registered.dot("config", "set", "webhook.branch-envs", "main=prod, release/1.x=ci")
    assert result.returncode == 0, result.stderr
    assert "webhook.branch-envs: (none) -> main=prod,release/1.x=ci" in result.stdout
    assert config_yaml()["webhook"]["branch_envs"] == {"main": "prod", "release/1.x": "ci"}
    shown = show(registered)["webhook.branch-envs"]
    assert (shown["value"], shown["source"]) == ("main=prod,release/1.x=ci", "user config")
    cleared = registered.dot("config", "set", "webhook.branch-envs", "")
    assert cleared.returncode == 0, cleared.stderr
    assert config_yaml()["webhook"]["branch_envs"] == {}


def test_config_show_names_the_history_store_and_the_warm_runner_without_a_password(
    registered: ExampleProject,
) -> None:
    plain = show(registered)
    assert plain["database.url"]["value"] is None
    assert plain["database.url"]["detail"] == f"SQLite under {datum_home()}"
    assert (plain["warm"]["value"], plain["warm"]["source"]) == ("on", "default")
    secret = "s3cr3t-pw"  # noqa: S105 - a test value that must never be shown
    url = f"postgresql://dot:{secret}@db.example:5433/history"
    result = registered.dot("config", "show", env={"DATUM_DATABASE_URL": url, "DOT_WARM": "0"})
    assert result.returncode == 0, result.stderr
    assert secret not in result.stdout + result.stderr
    by_var = show(registered, env={"DATUM_DATABASE_URL": url, "DOT_WARM": "0"})
    assert by_var["database.url"] == {
        "key": "database.url",
        "value": "db.example:5433/history",
        "source": "env var",
        "detail": "DATUM_DATABASE_URL",
    }
    assert (by_var["warm"]["value"], by_var["warm"]["source"]) == ("0", "env var")
    assert (
        registered.dot("config", "set", "warm", "auto", "warm.idle-timeout", "90s").returncode == 0
    )
    saved = show(registered)
    assert (saved["warm"]["value"], saved["warm"]["source"]) == ("auto", "user config")
    assert saved["warm.idle-timeout"]["value"] == "90s"
