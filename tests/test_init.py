"""`dot init`: registration in $DATUM_HOME/config.yaml, key pair, token; idempotent; bad input."""

from __future__ import annotations

import json
import os
import stat
import subprocess
from importlib import metadata
from pathlib import Path

import pytest
import yaml
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa

from tests.helpers.example import ExampleProject, make_example


def home() -> Path:
    return Path(os.environ["DATUM_HOME"])


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def assert_bad_input(result: subprocess.CompletedProcess[str], *needles: str) -> None:
    """Exit 20, one error line and one hint line, no traceback."""
    assert result.returncode == 20, (result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 2, result.stderr
    assert lines[0].startswith("error: ")
    assert lines[1].startswith("hint: ")
    assert "Traceback" not in result.stderr
    for needle in needles:
        assert needle in result.stderr, (needle, result.stderr)


def snapshot(folder: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(folder)): p.read_bytes()
        for p in sorted(folder.rglob("*"))
        if p.is_file() and "logs" not in p.parts and not p.name.endswith(".lock")
    }


def test_init_registers_project_key_and_token(example: ExampleProject) -> None:
    result = example.dot("init")
    assert result.returncode == 0, result.stderr
    assert "registered project 'jaffle_dot'" in result.stdout
    assert "next steps:" in result.stdout
    config_file = home() / "config.yaml"
    assert mode(config_file) == 0o600
    config = yaml.safe_load(config_file.read_text())
    assert config["version"] == 1
    project = config["projects"]["jaffle_dot"]
    assert project["path"] == str(example.path)
    assert project["profiles_dir"] == str(example.path)  # the example keeps profiles.yml there
    assert project["target"] == "dev"
    assert project["dbt_version"] == metadata.version("dbt-core")
    assert project["runtime"] == "local"
    assert project["schedules"] == []
    assert project["created_at"].endswith("Z") or "+00:00" in project["created_at"]
    private = home() / "keys" / "jaffle_dot.pem"
    public = home() / "keys" / "jaffle_dot.pub"
    assert mode(private) == 0o600
    key = serialization.load_ssh_private_key(private.read_bytes(), password=None)
    assert isinstance(key, ed25519.Ed25519PrivateKey)
    assert serialization.load_ssh_public_key(" ".join(public.read_text().split()[:2]).encode())
    token_file = home() / "webhook.token"
    assert mode(token_file) == 0o600
    token = token_file.read_text().strip()
    assert token not in result.stdout + result.stderr
    for log in (home() / "logs").glob("*"):
        assert token not in log.read_text()


def test_init_again_changes_nothing_and_says_so(example: ExampleProject) -> None:
    assert example.dot("init").returncode == 0
    before = snapshot(home())
    result = example.dot("init", "--repo-path", str(example.path))
    assert result.returncode == 0, result.stderr
    assert "already initialized" in result.stdout
    assert "nothing changed" in result.stdout
    assert snapshot(home()) == before


def test_init_force_regenerates_the_key_pair_only(example: ExampleProject) -> None:
    assert example.dot("init").returncode == 0
    config = (home() / "config.yaml").read_bytes()
    key = (home() / "keys" / "jaffle_dot.pem").read_bytes()
    result = example.dot("init", "--force", "--key-type", "rsa")
    assert result.returncode == 0, result.stderr
    assert "regenerated key pair" in result.stdout
    new_key = serialization.load_ssh_private_key(
        (home() / "keys" / "jaffle_dot.pem").read_bytes(), password=None
    )
    assert isinstance(new_key, rsa.RSAPrivateKey)
    assert new_key.key_size == 4096
    assert (home() / "keys" / "jaffle_dot.pem").read_bytes() != key
    assert (home() / "config.yaml").read_bytes() == config


def test_init_existing_key_of_other_type_is_kept_with_a_warning(example: ExampleProject) -> None:
    assert example.dot("init").returncode == 0
    result = example.dot("init", "--key-type", "rsa")
    assert result.returncode == 10, result.stderr
    assert "the existing key is ed25519; pass --force" in result.stdout


def test_init_keeps_set_values_and_updates_given_ones(example: ExampleProject) -> None:
    assert example.dot("init").returncode == 0
    assert example.dot("config", "set", "target", "prod").returncode == 10  # no run uses it
    assert "nothing changed" in example.dot("init").stdout
    result = example.dot("init", "--target", "dev", "--json")
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["changes"] == ["target: prod -> dev"]
    assert data["registration"]["target"] == "dev"


def test_init_ids_are_unique_among_projects(example: ExampleProject, tmp_path: Path) -> None:
    other = make_example(tmp_path / "second", monkeypatch_env=False)
    assert example.dot("init").returncode == 0
    result = other.dot("init", "--json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["project_id"] == "jaffle_dot-2"
    config = yaml.safe_load((home() / "config.yaml").read_text())
    assert set(config["projects"]) == {"jaffle_dot", "jaffle_dot-2"}
    assert (home() / "keys" / "jaffle_dot-2.pem").is_file()


def test_init_finds_the_project_below_the_repo_path(tmp_path: Path) -> None:
    nested = make_example(tmp_path, subdir="transform", monkeypatch_env=False)
    result = nested.dot("init", "--repo-path", str(nested.repo.path), "--json", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["registration"]["path"] == str(nested.path)


def test_init_profiles_dir_and_target_options(example: ExampleProject, tmp_path: Path) -> None:
    elsewhere = tmp_path / "etc-dbt"
    elsewhere.mkdir()
    (elsewhere / "profiles.yml").write_text((example.path / "profiles.yml").read_text())
    result = example.dot(
        "init",
        "--profiles-dir",
        str(elsewhere),
        "--target",
        "prod",
        "--json",
        cwd=tmp_path,
        env={"DBT_PROFILES_DIR": "/nowhere"},
    )
    assert result.returncode == 0, result.stderr
    registration = json.loads(result.stdout)["registration"]
    assert registration["profiles_dir"] == str(elsewhere)
    assert registration["target"] == "prod"


def test_init_profiles_dir_from_the_environment_variable(example: ExampleProject) -> None:
    elsewhere = example.path.parent / "dbt-home"
    elsewhere.mkdir()
    (elsewhere / "profiles.yml").write_text((example.path / "profiles.yml").read_text())
    result = example.dot("init", "--json", env={"DBT_PROFILES_DIR": str(elsewhere)})
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["registration"]["profiles_dir"] == str(elsewhere)


def test_init_migrates_a_datum_config_keeping_a_backup(example: ExampleProject) -> None:
    home().mkdir(parents=True)
    original = (
        'version: "1.0"\nproject:\n  project_id: legacy\n  project_path: /srv/legacy\n'
        "  profiles_path: /etc/dbt/profiles.yml\n  target: prod\n"
    )
    (home() / "config.yaml").write_text(original)
    result = example.dot("init")
    assert result.returncode == 0, result.stderr
    assert (home() / "config.yaml.v0.bak").read_text() == original
    config = yaml.safe_load((home() / "config.yaml").read_text())
    assert config["version"] == 1
    assert set(config["projects"]) == {"legacy", "jaffle_dot"}


@pytest.mark.parametrize(
    ("setup", "needles"),
    [
        ("empty", ["no dbt project at", "--repo-path"]),
        ("file", ["is not a folder"]),
        ("missing", ["does not exist"]),
        ("unwritable-home", ["cannot write to DATUM_HOME", "DATUM_HOME"]),
        ("bad-yaml", ["config.yaml:2: not valid YAML"]),
        ("bad-config", ["config.yaml:4: projects.shop.target"]),
        ("newer-config", ["newer datum-dot"]),
        ("unknown-target", ["--target nope is not a target", "dev, prod"]),
        ("unknown-runtime", ["unknown runtime 'nope'"]),
    ],
)
def test_init_bad_input_is_one_line_a_hint_and_exit_20(
    example: ExampleProject, tmp_path: Path, setup: str, needles: list[str]
) -> None:
    args = ["init", "--repo-path", str(example.path)]
    env: dict[str, str] = {}
    config_text = None
    if setup == "empty":
        (tmp_path / "empty").mkdir()
        args[2] = str(tmp_path / "empty")
    elif setup == "file":
        args[2] = str(example.path / "dbt_project.yml")
    elif setup == "missing":
        args[2] = str(tmp_path / "nope")
    elif setup == "unwritable-home":
        (tmp_path / "blocker").write_text("")
        env["DATUM_HOME"] = str(tmp_path / "blocker" / "home")
    elif setup == "unknown-target":
        args += ["--target", "nope"]
    elif setup == "unknown-runtime":
        args += ["--runtime", "nope"]
    else:
        config_text = {
            "bad-yaml": "version: 1\n\tprojects: {}\n",
            "bad-config": "version: 1\nprojects:\n  shop:\n    target: [1]\n",
            "newer-config": "version: 99\n",
        }[setup]
        home().mkdir(parents=True)
        (home() / "config.yaml").write_text(config_text)
    result = example.dot(*args, env=env)
    assert_bad_input(result, *needles)
    if config_text is not None:
        assert (home() / "config.yaml").read_text() == config_text
        assert not (home() / "keys").exists()
