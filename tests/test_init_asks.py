"""On a terminal, `datum dbt init` asks for the profiles folder it cannot find, and
`datum dbt config` without flags offers each setting with its current value as the default."""

from __future__ import annotations

import os
import pty
import select
import shutil
import time
from collections.abc import Sequence
from pathlib import Path

import yaml

from tests.helpers.example import BIN, ExampleProject


def on_terminal(
    argv: Sequence[str], answers: Sequence[str], *, cwd: Path, timeout: float = 120
) -> tuple[int, str]:
    """Run the program on a pseudo-terminal, typing each answer after a `: ` prompt."""
    env = {k: v for k, v in os.environ.items() if k != "CI"}
    pid, fd = pty.fork()
    if pid == 0:  # pragma: no cover - the child
        os.chdir(cwd)
        os.execve(str(BIN / argv[0]), [str(BIN / argv[0]), *argv[1:]], env)  # noqa: S606
    seen, pending, deadline = b"", list(answers), time.monotonic() + timeout
    while time.monotonic() < deadline:
        ready, _, _ = select.select([fd], [], [], 0.5)
        if ready:
            try:
                chunk = os.read(fd, 4096)
            except OSError:
                break  # the child has ended
            if not chunk:
                break
            seen += chunk
            if pending and seen.rstrip().endswith(b":"):
                os.write(fd, pending.pop(0).encode() + b"\n")
                seen += b"\n"
    _, status = os.waitpid(pid, 0)
    os.close(fd)
    return os.waitstatus_to_exitcode(status), seen.decode(errors="replace").replace("\r", "")


def _config(home: Path) -> dict[str, object]:
    data: dict[str, object] = yaml.safe_load((home / "config.yaml").read_text())
    return data


def test_init_asks_for_the_profiles_folder_until_it_holds_profiles_yml(
    example: ExampleProject, tmp_path: Path
) -> None:
    elsewhere = tmp_path / "profiles-elsewhere"
    elsewhere.mkdir()
    shutil.move(example.path / "profiles.yml", elsewhere / "profiles.yml")
    code, seen = on_terminal(
        ["datum", "dbt", "init"], [str(tmp_path), str(elsewhere)], cwd=example.path
    )
    assert code == 0, seen
    assert "profiles.yml not found" in seen
    assert "the folder of profiles.yml [~/.dbt]:" in seen
    assert f"no profiles.yml in {tmp_path}; give the folder that holds it" in seen
    assert "registered project 'jaffle_dot'" in seen
    home = Path(os.environ["DATUM_HOME"])
    projects = _config(home)["projects"]
    assert isinstance(projects, dict)
    assert projects["jaffle_dot"]["profiles_dir"] == str(elsewhere)


def test_init_without_a_terminal_still_fails_with_the_hint(
    example: ExampleProject, tmp_path: Path
) -> None:
    (example.path / "profiles.yml").unlink()
    result = example.dot("dbt", "init", program="datum")
    assert result.returncode == 20
    assert "error: profiles.yml not found" in result.stderr
    assert "hint: pass --profiles-dir <folder of profiles.yml>" in result.stderr


def test_config_offers_each_setting_with_its_current_value(
    example: ExampleProject, tmp_path: Path
) -> None:
    assert example.dot("init").returncode == 0
    moved = tmp_path / "profiles-moved"
    moved.mkdir()
    shutil.copy(example.path / "profiles.yml", moved / "profiles.yml")
    # target: a wrong one is asked again; profiles-dir: changed; runtime, project-path: kept.
    code, seen = on_terminal(
        ["datum", "dbt", "config"], ["staging", "prod", str(moved), "", ""], cwd=example.path
    )
    assert code == 0, seen
    assert "settings of project 'jaffle_dot' (Enter keeps the value in brackets)" in seen
    assert "target [dev]:" in seen
    assert "  target 'staging' can" in seen
    assert "target: dev -> prod" in seen
    assert f"profiles-dir [{example.path}]:" in seen
    assert "runtime [local]:" in seen
    assert f"project-path [{example.path}]:" in seen
    assert "saved 2 change(s)" in seen
    projects = _config(Path(os.environ["DATUM_HOME"]))["projects"]
    assert isinstance(projects, dict)
    entry = projects["jaffle_dot"]
    assert (entry["target"], entry["profiles_dir"], entry["runtime"]) == (
        "prod",
        str(moved),
        "local",
    )
    # Without a terminal it shows, as `dot config show` does.
    shown = example.dot("dbt", "config", program="datum")
    assert shown.returncode == 0, shown.stderr
    assert "target" in shown.stdout
    assert "[dev]" not in shown.stdout + shown.stderr
