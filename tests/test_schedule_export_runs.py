"""Exported schedules fire with real dbt where no `dot schedule add` was made.

The CronJob's containers are run here as the kubelet would run them: its init containers'
git commands clone the example's repository and check out the pinned commit, then its main
container's command runs with the CronJob's environment (Secret keys filled in) and a fresh
`DATUM_HOME`. The systemd service's `ExecStart=` and the workflow's run step are run with the
environment they set, as dry runs.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from datum_dot.cli.main import main
from datum_dot.history import RunStore
from datum_dot.runs.run import RunStatus
from tests.helpers.example import BIN, ExampleProject, make_example
from tests.helpers.exports import cronjob, pod, register, schedule, unit_environment, unit_settings

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("schedule_export_runs")]

WORKSPACE, STATE, PROFILES = "/workspace", "/var/lib/datum-dot", "/etc/datum-dot/profiles"


@dataclass(frozen=True)
class World:
    """The module's example, its pinned commit, and the folder the files are exported to."""

    example: ExampleProject
    pinned: str
    out: Path
    base: Path


@pytest.fixture(scope="module")
def world(
    module_monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory
) -> World:
    # module_monkeypatch: git and HOME are made hermetic before this module-wide repository
    base = tmp_path_factory.mktemp("export_runs")
    example = make_example(base, monkeypatch_env=False)
    pinned = example.repo.head()
    # main moves on: a firing that built main would build this commit, not the pinned one
    example.repo.commit({"models/later.sql": "select 1 as id\n"}, "later")
    out = base / "out"
    return World(example, pinned, out, base)


@pytest.fixture(autouse=True)
def _exporting_home(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    # The schedule exists only in the exporting machine's DATUM_HOME, never where it fires.
    monkeypatch.setenv("DATUM_HOME", str(Path(os.environ["HOME"]) / "exporting"))
    register(Path(os.environ["DATUM_HOME"]), world.example, [schedule(
        "nightly", "0 2 * * *", pinned_commit=world.pinned, pinned_ref="main", timeout=600.0)])  # fmt: skip


def _in_pod(value: str, root: Path) -> str:
    for folder in (WORKSPACE, STATE, PROFILES):
        value = value.replace(folder, f"{root}{folder}")
    return value


def _run_container(container: dict[str, Any], root: Path, secret: dict[str, str]) -> str:
    env = {"PATH": f"{BIN}:/usr/bin:/bin", "HOME": str(root / "home")}
    for item in container.get("env", []):
        if "value" in item:
            env[item["name"]] = _in_pod(item["value"], root)
            continue
        ref = item["valueFrom"]["secretKeyRef"]
        if ref["key"] in secret:
            env[item["name"]] = secret[ref["key"]]
        else:
            assert ref.get("optional") is True, f"{ref['key']} is required but not in the Secret"
    argv = [*container["command"], *container["args"]]
    cwd = Path(_in_pod(container.get("workingDir", str(root)), root))
    result = subprocess.run(
        [_in_pod(a, root) for a in argv], cwd=cwd, env=env, capture_output=True, text=True,
        timeout=300, check=False,
    )  # fmt: skip
    assert result.returncode == 0, f"{argv}\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    return result.stdout


def test_export_cronjob_pod_builds_the_pinned_commit_without_a_schedule(
    world: World, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["schedule", "export", "nightly", "--to", "kubernetes", "--image", "dot:test",
                 "--git-url", str(world.example.repo.path), "--time-zone", "UTC",
                 "-o", str(world.out)]) == 0  # fmt: skip
    document = cronjob((world.out / "shop-nightly.cronjob.yaml").read_text())
    spec = pod(document)
    root = world.base / "pod"
    for folder in ("workspace", "var/lib/datum-dot", "etc/datum-dot/profiles", "home"):
        (root / folder).mkdir(parents=True)
    # The Secret: the example's profiles.yml and the variable it reads.
    (root / "etc/datum-dot/profiles/profiles.yml").write_text(
        (world.example.path / "profiles.yml").read_text()
    )
    secret = {"DOT_EXAMPLE_DUCKDB": str(world.example.database)}
    for container in spec["initContainers"]:
        _run_container(container, root, secret)
    checkout = root / "workspace/repo"
    assert subprocess.check_output(["git", "-C", str(checkout), "rev-parse", "HEAD"],
                                   text=True).strip() == world.pinned  # fmt: skip
    (container,) = spec["containers"]
    output = _run_container(container, root, secret)
    assert f"shop/nightly: SUCCESS {world.pinned[:12]}" in output
    pod_home = root / "var/lib/datum-dot/home"
    assert not (pod_home / "config.yaml").exists()  # no `dot schedule add` was needed
    (run,) = RunStore(pod_home).query(last=None)
    assert run.status is RunStatus.SUCCESS
    assert run.start.trigger == "cron"
    assert run.start.schedule == "nightly"
    assert run.start.commit == world.pinned
    schema = f"analytics_{world.pinned[:8]}"
    tables = world.example.query(
        f"select count(*) from information_schema.tables where table_schema = '{schema}'"  # noqa: S608 - a hash
    )
    assert tables[0][0] > 0
    later = world.example.query(
        "select count(*) from information_schema.tables where table_name = 'later'"
    )
    assert later[0][0] == 0, "the pinned commit has no model `later`"
    assert RunStore(Path(os.environ["DATUM_HOME"])).query(last=None) == []
    capsys.readouterr()


def test_export_systemd_service_runs_its_schedule_from_the_unit_environment(
    world: World, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = world.base / "units"
    assert main(["schedule", "export", "nightly", "--to", "systemd", "--user",
                 "--time-zone", "UTC", "-o", str(folder)]) == 0  # fmt: skip
    text = (folder / "datum-dot-shop-nightly.service").read_text()
    settings = unit_settings(text)
    environment = unit_environment(text)
    env_file = folder / "shop.env"
    env_file.write_text(f"DOT_EXAMPLE_DUCKDB={world.example.database}\n")
    (command,) = settings["ExecStart"]
    home = world.base / "unit-home"
    environment["DATUM_HOME"] = str(home)  # what %h would be: a fresh state folder here
    result = subprocess.run(
        ["env", "-i", f"HOME={home}", "PATH=/usr/bin:/bin", *(f"{k}={v}" for k, v in
         environment.items()), *command.split(), "--dry-run", "--json"],
        cwd=settings["WorkingDirectory"][0], capture_output=True, text=True, timeout=120,
        check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    outcome = json.loads(result.stdout)
    assert outcome["status"] == "PLANNED"
    assert outcome["schedule"] == "nightly"
    assert outcome["commit"] == world.pinned
    capsys.readouterr()


def test_export_workflow_run_step_unsets_empty_secrets_and_runs_the_schedule(
    world: World, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = world.base / "workflows"
    assert main(["schedule", "export", "nightly", "--to", "github-actions", "--time-zone", "UTC",
                 "--profiles-in-repo", "-o", str(folder)]) == 0  # fmt: skip
    workflow = yaml.safe_load((folder / "datum-dot-shop-nightly.yml").read_text())
    step = workflow["jobs"]["run"]["steps"][-1]
    assert step["shell"] == "bash"
    secrets = {"DOT_EXAMPLE_DUCKDB": str(world.example.database)}  # DATUM_DATABASE_URL unset
    env = {"PATH": f"{BIN}:/usr/bin:/bin", "HOME": str(world.base / "runner")}
    for name, value in step["env"].items():
        match = re.fullmatch(r"\$\{\{ secrets\.(\w+) \}\}", value)
        env[name] = secrets.get(match[1], "") if match else value
    env["DATUM_HOME"] = str(world.base / "runner-home")
    script = step["run"].replace(
        "dot schedule run nightly", 'echo "url=${DATUM_DATABASE_URL-unset}"\n'
        "dot schedule run nightly --dry-run --json"
    )  # fmt: skip
    result = subprocess.run(["bash", "-e", "-c", script], cwd=world.example.path, env=env,
                            capture_output=True, text=True, timeout=120, check=False)  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    first, rest = result.stdout.split("\n", 1)
    assert first == "url=unset"
    assert json.loads(rest)["commit"] == world.pinned
    capsys.readouterr()
