"""`dot schedule export`: what each scheduler's file says, checked field by field and by its validator.

Tables of cron expressions, time zones, overlap policies and timeouts are rendered with the
library, the files read back as YAML or unit settings, and every file of a table is handed to
the scheduler's own validator in one call: kubernetes-validate (the oldest Kubernetes the export
supports and a current one), `systemd-analyze verify` and `calendar`, and check-jsonschema with
GitHub's workflow schema. Nothing here runs dbt (see test_schedule_export_runs.py).
"""

from __future__ import annotations

import math
import os
import re
import subprocess
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import yaml
from croniter import croniter

from datum_dot.cli.main import main
from datum_dot.errors import ScheduleError
from datum_dot.scheduling.cronenv import entry_point
from datum_dot.scheduling.export.definition import DEFINITION_ENV, decode_definition
from datum_dot.scheduling.export.exports import render, write_files
from datum_dot.scheduling.export.github import GithubOptions
from datum_dot.scheduling.export.kubernetes import OLDEST_VERSION, KubernetesOptions
from datum_dot.scheduling.export.systemd import SystemdOptions
from datum_dot.scheduling.schedules import Overlap, Schedule
from tests.helpers.example import ExampleProject
from tests.helpers.exports import (
    cronjob,
    located,
    pod,
    program,
    register,
    schedule,
    unit_environment,
    unit_settings,
    validate,
)

CURRENT_VERSION = "1.37.0"
SHA = "0123456789abcdef0123456789abcdef01234567"
K8S = KubernetesOptions(image="registry.example/dot:0.1", git_url="https://git.example/shop.git")
BASE = datetime(2027, 1, 4, 0, 0, tzinfo=UTC)  # a Monday in winter: no DST change in range

# cron, zone, overlap, timeout, the CronJob's schedule, startingDeadlineSeconds
K8S_ROWS = [
    ("0 6 * * *", "Europe/Berlin", "skip", None, "0 6 * * *", 300),
    ("*/15 9-17 * * mon-fri", "America/New_York", "queue", 1800.0, "*/15 9-17 * * mon-fri", 1800),
    ("@daily", "UTC", "queue", None, "@daily", 3600),
    ("0 0 1,15 * 5", "Asia/Kolkata", "skip", 90.5, "0 0 1,15 * 5", 300),
    ("30 2 * * 7", "Australia/Sydney", "skip", None, "30 2 * * 0", 300),
    ("0 4 */2 * *", "Europe/London", "skip", 7200.0, "0 4 */2 * *", 300),
]


def _k8s_source(example: ExampleProject, row: tuple[Any, ...], index: int) -> Schedule:
    cron, _, overlap, timeout, _, _ = row
    return schedule(f"s{index}", cron, overlap=Overlap(overlap), timeout=timeout,
                    pinned_commit=SHA, pinned_ref="v1")  # fmt: skip


@pytest.mark.parametrize(("index", "row"), list(enumerate(K8S_ROWS)))
def test_export_kubernetes_fields_follow_the_schedule(
    example: ExampleProject, index: int, row: tuple[Any, ...]
) -> None:
    cron, zone, overlap, timeout, expected, deadline = row
    item = _k8s_source(example, row, index)
    (file,) = render(located(example, item), K8S, zone=zone).files
    document = cronjob(file.text)
    spec = document["spec"]
    assert file.name == f"shop-s{index}.cronjob.yaml"
    assert document["apiVersion"] == "batch/v1"
    assert spec["schedule"] == expected
    assert spec["timeZone"] == zone
    assert spec["concurrencyPolicy"] == "Forbid"
    assert spec["startingDeadlineSeconds"] == deadline
    assert spec["suspend"] is False
    assert (spec["successfulJobsHistoryLimit"], spec["failedJobsHistoryLimit"]) == (3, 3)
    job = spec["jobTemplate"]["spec"]
    assert job.get("activeDeadlineSeconds") == (
        None if timeout is None else math.ceil(timeout) + 300
    )
    assert job["backoffLimit"] == 0
    labels = document["metadata"]["labels"]
    assert labels["datum-dot/project"] == "shop"
    assert labels["datum-dot/environment"] == "prod"
    assert labels["datum-dot/commit"] == SHA
    assert document["metadata"]["annotations"]["datum-dot/cron"] == cron
    assert ("Kubernetes has no queue" in file.text) == (overlap == "queue")
    spec_pod = pod(document)
    init = [c["args"] for c in spec_pod["initContainers"]]
    assert init[0][-2:] == ["https://git.example/shop.git", "/workspace/repo"]
    assert init[1][init[1].index("--detach") + 1] == SHA
    (container,) = spec_pod["containers"]
    assert container["command"] == ["dot"]
    assert container["args"] == ["schedule", "run", f"s{index}"]
    assert container["workingDir"] == "/workspace/repo"
    env = {e["name"]: e for e in container["env"]}
    definition = decode_definition(env[DEFINITION_ENV]["value"], name=f"s{index}")
    assert definition.schedule == item
    assert definition.project == "shop"
    secret = env["DOT_EXAMPLE_DUCKDB"]["valueFrom"]["secretKeyRef"]
    assert secret == {"name": f"shop-s{index}-dbt", "key": "DOT_EXAMPLE_DUCKDB", "optional": True}
    assert env["DATUM_DATABASE_URL"]["valueFrom"]["secretKeyRef"]["optional"] is True


def test_export_kubernetes_validates_against_oldest_and_current(
    example: ExampleProject, tmp_path: Path
) -> None:
    validator = program("kubernetes-validate")
    files = [
        f
        for index, row in enumerate(K8S_ROWS)
        for f in render(located(example, _k8s_source(example, row, index)), K8S,
                        zone=row[1]).files
    ]  # fmt: skip
    image = KubernetesOptions(image="dot:1", repo_dir="/srv/repo", secret="dbt",  # noqa: S106
                              namespace="data", profiles_in_repo=True, starting_deadline=60)  # fmt: skip
    paused = schedule("paused", "@hourly", enabled=False)
    files += render(located(example, paused), image, zone="UTC").files
    written = [str(p) for p in write_files(files, tmp_path)]
    for version in (OLDEST_VERSION, CURRENT_VERSION):
        result = validate([validator, "--strict", "-k", version, *written])
        assert result.returncode == 0, result.stdout + result.stderr
        assert result.stdout.count("passed") == len(written), result.stdout
    document = cronjob(Path(written[-1]).read_text())
    assert document["metadata"]["namespace"] == "data"
    assert document["spec"]["suspend"] is True
    assert document["spec"]["startingDeadlineSeconds"] == 60
    spec_pod = pod(document)
    assert "initContainers" not in spec_pod
    (container,) = spec_pod["containers"]
    assert "DBT_PROFILES_DIR" not in {e["name"] for e in container["env"]}
    assert {v["name"] for v in spec_pod["volumes"]} == {"state"}


def test_export_kubernetes_validator_rejects_a_broken_cronjob(tmp_path: Path) -> None:
    # The validator is a real check: a CronJob without its schedule fails it.
    validator = program("kubernetes-validate")
    path = tmp_path / "broken.yaml"
    path.write_text("apiVersion: batch/v1\nkind: CronJob\nmetadata: {name: x}\nspec: {}\n")
    assert validate([validator, "--strict", "-k", CURRENT_VERSION, str(path)]).returncode != 0


# cron, zone, the timer's OnCalendar= lines
SYSTEMD_ROWS = [
    ("0 6 * * *", "Europe/Berlin", ["*-*-* 06:00:00 Europe/Berlin"]),
    ("*/15 9-17 * * mon-fri", "UTC", ["Mon..Fri *-*-* 09..17:00/15:00 UTC"]),
    ("@weekly", "America/New_York", ["Sun *-*-* 00:00:00 America/New_York"]),
    ("0 0 1,15 * 5", "Asia/Tokyo", ["*-*-1,15 00:00:00 Asia/Tokyo", "Fri *-*-* 00:00:00 Asia/Tokyo"]),
    ("30 2 1-7 jan-mar 7", "UTC", ["*-1..3-1..7 02:30:00 UTC", "Sun *-1..3-* 02:30:00 UTC"]),
    ("5 */6 * * 6,0", "Europe/London", ["Sat,Sun *-*-* 00/6:05:00 Europe/London"]),
    ("@hourly", "UTC", ["*-*-* *:00:00 UTC"]),
    ("0 12 */2 * 1", "UTC", ["Mon *-*-1,3,5,7,9,11,13,15,17,19,21,23,25,27,29,31 12:00:00 UTC"]),
]  # fmt: skip


def _systemd_times(calendars: list[str], count: int) -> list[datetime]:
    result = subprocess.run(
        [program("systemd-analyze"), "calendar", f"--iterations={count}",
         f"--base-time={BASE:%Y-%m-%d %H:%M:%S} UTC", *calendars],
        capture_output=True, text=True, timeout=60, check=True, env={"TZ": "UTC", "PATH": "/usr/bin:/bin"},
    )  # fmt: skip
    found = re.findall(r"(?:Next elapse|Iter\. #\d+): \w+ (\S+ \S+) UTC", result.stdout)
    times = sorted({datetime.fromisoformat(t).replace(tzinfo=UTC) for t in found})
    return times[:count]


def _cron_times(cron: str, zone: str, count: int) -> list[datetime]:
    it = croniter(cron, BASE.astimezone(ZoneInfo(zone)))
    return [it.get_next(datetime).astimezone(UTC) for _ in range(count)]


@pytest.mark.parametrize(("cron", "zone", "calendars"), SYSTEMD_ROWS)
def test_export_systemd_timer_fires_when_cron_does(
    example: ExampleProject, cron: str, zone: str, calendars: list[str]
) -> None:
    options = SystemdOptions(program=entry_point(), persistent=True)
    service, timer = render(located(example, schedule("n", cron)), options, zone=zone).files
    assert (service.name, timer.name) == ("datum-dot-shop-n.service", "datum-dot-shop-n.timer")
    settings = unit_settings(timer.text)
    assert settings["OnCalendar"] == calendars
    assert settings["Persistent"] == ["true"]
    # systemd's own calendar arithmetic agrees with cron's (croniter) on the next firings; a
    # `*/2` day with a restricted weekday is ANDed by cron, as the timer does, ORed by croniter.
    if not cron.startswith("0 12 */2"):
        assert _systemd_times(calendars, 8) == _cron_times(cron, zone, 8)


def test_export_systemd_units_pass_systemd_analyze_verify(
    example: ExampleProject, tmp_path: Path
) -> None:
    analyze = program("systemd-analyze")
    files = []
    for index, (cron, zone, _) in enumerate(SYSTEMD_ROWS):
        item = schedule(f"s{index}", cron, timeout=600.0 if index % 2 else None,
                        overlap=Overlap.QUEUE if index % 3 else Overlap.SKIP)  # fmt: skip
        options = SystemdOptions(program=entry_point(), user=index % 2 == 1)
        files += render(located(example, item), options, zone=zone).files
    written = write_files(files, tmp_path)
    result = validate([analyze, "verify", "--man=no", *map(str, written)])
    assert result.returncode == 0, result.stderr
    assert result.stderr.strip() == "", result.stderr  # systemd warns about a key it ignores
    service = unit_settings((tmp_path / "datum-dot-shop-s1.service").read_text())
    assert service["Type"] == ["oneshot"]
    assert service["TimeoutStartSec"] == ["900"]
    assert service["WorkingDirectory"] == [str(example.path)]
    assert service["EnvironmentFile"] == ["-%h/.config/datum-dot/shop.env"]
    assert "StateDirectory" not in service
    system = unit_settings((tmp_path / "datum-dot-shop-s0.service").read_text())
    assert system["TimeoutStartSec"] == ["infinity"]
    assert system["StateDirectory"] == ["datum-dot"]
    assert system["EnvironmentFile"] == ["-/etc/datum-dot/shop.env"]
    env = unit_environment((tmp_path / "datum-dot-shop-s0.service").read_text())
    assert env["DATUM_HOME"] == "%S/datum-dot"
    assert decode_definition(env[DEFINITION_ENV], name="s0").schedule.cron == "0 6 * * *"


def test_export_systemd_verify_catches_a_broken_timer(tmp_path: Path) -> None:
    analyze = program("systemd-analyze")
    path = tmp_path / "x.timer"
    path.write_text("[Timer]\nOnCalendar=*-*-* 26:00:00\n")
    result = validate([analyze, "verify", "--man=no", str(path)])
    assert result.returncode != 0 or result.stderr.strip()


# cron, zone, --utc-ok, the workflow's on.schedule crons
GITHUB_ROWS = [
    ("0 6 * * *", "UTC", False, ["0 6 * * *"]),
    ("@daily", "UTC", False, ["0 0 * * *"]),
    ("30 8 * * 1-5", "Asia/Tokyo", False, ["30 23 * * 0-4"]),
    ("0 3 * * mon", "Asia/Kolkata", False, ["30 21 * * 0"]),
    ("*/15 10 * * *", "Asia/Kolkata", False, ["30,45 4 * * *", "0,15 5 * * *"]),
    ("0 1,13 * * *", "America/Phoenix", False, ["0 8,20 * * *"]),
    ("0 6 1 * *", "America/Phoenix", False, ["0 13 1 * *"]),
    ("0 6 * * *", "Europe/Berlin", True, ["0 5 * * *"]),
    ("0 0 1,15 * 5", "UTC", False, ["0 0 1,15 * 5"]),
]


@pytest.mark.parametrize(("cron", "zone", "utc_ok", "crons"), GITHUB_ROWS)
def test_export_github_cron_is_moved_to_utc(
    example: ExampleProject, cron: str, zone: str, utc_ok: bool, crons: list[str]
) -> None:
    item = schedule("n", cron, overlap=Overlap.QUEUE, timeout=1200.0, pinned_commit=SHA)
    (file,) = render(located(example, item), GithubOptions(utc_ok=utc_ok), zone=zone).files
    workflow = yaml.safe_load(file.text)
    assert [s["cron"] for s in workflow["on"]["schedule"]] == crons  # written quoted: not True
    assert f"in {zone} is" in file.text
    assert ("daylight-saving" in file.text) == utc_ok
    assert workflow["concurrency"] == {"group": "datum-dot-shop-n", "cancel-in-progress": False}
    job = workflow["jobs"]["run"]
    assert job["timeout-minutes"] == 20 + 15
    checkout = job["steps"][0]
    assert checkout["uses"].startswith("actions/checkout@")
    assert checkout["with"]["ref"] == SHA
    run = job["steps"][-1]
    assert run["run"].rstrip().endswith("dot schedule run n")
    assert decode_definition(run["env"][DEFINITION_ENV], name="n").schedule == item
    assert run["env"]["DOT_EXAMPLE_DUCKDB"] == "${{ secrets.DOT_EXAMPLE_DUCKDB }}"
    if not utc_ok:
        local = _cron_times(cron, zone, 12)
        moved = sorted({t for line in crons for t in _cron_times(line, "UTC", 12)})[:12]
        assert moved == local


def test_export_github_workflows_pass_the_workflow_schema(
    example: ExampleProject, tmp_path: Path
) -> None:
    checker = program("check-jsonschema")
    files = []
    for index, (cron, zone, utc_ok, _) in enumerate(GITHUB_ROWS):
        item = schedule(f"s{index}", cron, timeout=60.0 * index or None,
                        overlap=Overlap.SKIP if index % 2 else Overlap.QUEUE)  # fmt: skip
        options = GithubOptions(utc_ok=utc_ok, profiles_in_repo=index % 2 == 0)
        files += render(located(example, item), options, zone=zone).files
    written = [str(p) for p in write_files(files, tmp_path)]
    result = validate([checker, "--builtin-schema", "vendor.github-workflows", *written])
    assert result.returncode == 0, result.stdout + result.stderr
    broken = tmp_path / "broken.yml"
    broken.write_text("on: {schedule: [{cron: 5}]}\njobs: {run: {steps: []}}\n")
    result = validate([checker, "--builtin-schema", "vendor.github-workflows", str(broken)])
    assert result.returncode != 0


# target, cron, zone, what the refusal says
REFUSED = [
    ("kubernetes", "0 6 */2 * 1", "UTC", "Kubernetes reads '*/2' with '1' differently"),
    ("kubernetes", "0 6 5/10 * *", "UTC", "steps from a single value"),
    ("systemd", "0 6 5/10 * *", "UTC", "steps from a single value"),
    ("github-actions", "0 6 * * *", "Europe/Berlin", "daylight-saving"),
    ("github-actions", "* * * * *", "UTC", "at most every 5 minutes"),
    ("github-actions", "*/2 * * * *", "UTC", "at most every 5 minutes"),
    ("github-actions", "0 1 1 * *", "Asia/Tokyo", "move to the day before"),
    ("github-actions", "0 6 1 * */2", "UTC", "GitHub reads '*/2' with '1'"),
]


@pytest.mark.parametrize(("target", "cron", "zone", "why"), REFUSED)
def test_export_refuses_what_the_scheduler_cannot_run_exactly(
    example: ExampleProject,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    target: str,
    cron: str,
    zone: str,
    why: str,
) -> None:
    home = Path(os.environ["DATUM_HOME"])
    register(home, example, [schedule("n", cron)])
    out = tmp_path / "out"
    extra = ["--image", "dot:1", "--repo-dir", "/srv/repo"] if target == "kubernetes" else []
    code = main(["schedule", "export", "n", "--to", target, "--time-zone", zone, "-o", str(out),
                 *extra])  # fmt: skip
    _, err = capsys.readouterr()
    assert code == 20, err
    first, hint = err.strip().splitlines()[:2]
    assert first.startswith("error: schedule 'n': ")
    assert why in first
    assert hint.startswith("hint: ")
    assert not out.exists()


# the command line after `schedule export`, what the error says
BAD_INPUT = [
    (["--to", "systemd"], "name one schedule or pass --all"),
    (["n", "--all", "--to", "systemd"], "name one schedule or pass --all"),
    (["n", "--to", "kubernetes", "--git-url", "https://x/y.git"], "needs --image"),
    (["n", "--to", "kubernetes", "--image", "dot:1"], "--git-url or --repo-dir"),
    (["n", "--to", "kubernetes", "--image", "dot:1", "--git-url", "https://tok@x/y.git"],
     "holds credentials"),
    (["n", "--to", "kubernetes", "--image", "dot:1", "--repo-dir", "srv"], "not an absolute path"),
    (["n", "--to", "systemd", "--image", "dot:1"], "--image is an option of --to kubernetes"),
    (["n", "--to", "github-actions", "--user"], "--user is an option of --to systemd"),
    (["n", "--to", "systemd", "--profiles-in-repo"], "--profiles-in-repo is for"),
    (["n", "--to", "systemd", "--time-zone", "Mars/Olympus"], "is not a time zone"),
    (["ghost", "--to", "systemd"], "no schedule named 'ghost'"),
]  # fmt: skip


@pytest.mark.parametrize(("args", "message"), BAD_INPUT)
def test_export_bad_input_is_one_line_a_hint_and_exit_20(
    example: ExampleProject,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    args: list[str],
    message: str,
) -> None:
    home = Path(os.environ["DATUM_HOME"])
    register(home, example, [schedule("n")])
    code = main(["schedule", "export", *args, "--time-zone", "UTC", "-o", str(tmp_path / "o")]
                if "--time-zone" not in args else ["schedule", "export", *args])  # fmt: skip
    out, err = capsys.readouterr()
    assert code == 20, err
    lines = err.strip().splitlines()
    assert lines[0].startswith("error: "), err
    assert message in lines[0], err
    assert lines[1].startswith("hint: "), err
    assert "Traceback" not in err
    assert out == ""
    assert not (tmp_path / "o").exists()


def test_export_is_deterministic_and_names_secrets_without_their_values(
    example: ExampleProject,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    example.repo.commit({"profiles.yml": _PROFILE}, "a profile with a password")
    monkeypatch.setenv("DBT_PASSWORD", "hunter2-do-not-print")
    monkeypatch.chdir(example.path)
    home = Path(os.environ["DATUM_HOME"])
    register(home, example, [schedule("a", pinned_commit=SHA), schedule("b", "@hourly")])
    outputs: dict[str, list[bytes]] = {}
    for target, extra in (
        ("kubernetes", ["--image", "dot:1", "--git-url", "https://git.example/shop.git"]),
        ("systemd", []),
        ("github-actions", []),
    ):
        for attempt in ("one", "two"):
            folder = tmp_path / target / attempt
            code = main(["schedule", "export", "--all", "--to", target, "--time-zone", "UTC",
                         "-o", str(folder), *extra])  # fmt: skip
            assert code == 0, capsys.readouterr().err
            outputs.setdefault(target, []).append(
                b"".join(p.read_bytes() for p in sorted(folder.iterdir()))
            )
        assert outputs[target][0] == outputs[target][1]
        text = outputs[target][0].decode()
        assert "hunter2" not in text
        assert "DBT_PASSWORD" in text
        assert str(example.database) not in text
    assert "key: DBT_PASSWORD" in outputs["kubernetes"][0].decode()
    assert "${{ secrets.DBT_PASSWORD }}" in outputs["github-actions"][0].decode()
    capsys.readouterr()
    assert main(["schedule", "export", "a", "--to", "kubernetes", "--image", "dot:1",
                 "--git-url", "https://git.example/shop.git", "--time-zone", "UTC"]) == 0  # fmt: skip
    out, err = capsys.readouterr()
    assert out.startswith("---\n")
    assert cronjob(out)["metadata"]["name"] == "shop-a"
    assert "kubectl create secret generic shop-a-dbt" in err
    assert "--from-literal=DBT_PASSWORD=..." in err


_PROFILE = """\
jaffle_dot:
  target: dev
  outputs:
    dev:
      type: duckdb
      path: "{{ env_var('DOT_EXAMPLE_DUCKDB', 'jaffle.duckdb') }}"
      password: "{{ env_var('DBT_PASSWORD') }}"
      schema: dev
    prod:
      type: duckdb
      path: "{{ env_var('DOT_EXAMPLE_DUCKDB', 'jaffle.duckdb') }}"
      schema: analytics
other_profile:
  outputs:
    x: {type: duckdb, path: "{{ env_var('NOT_THIS_ONE') }}"}
"""


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("{not json", "is not JSON"),
        ('{"version": 1}', "is not a schedule definition"),
        ("DEFINITION", "is not JSON"),
    ],
)
def test_schedule_run_refuses_a_broken_definition(
    example: ExampleProject,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    text: str,
    message: str,
) -> None:
    monkeypatch.chdir(example.path)
    monkeypatch.setenv(DEFINITION_ENV, text)
    assert main(["schedule", "run", "n", "--dry-run"]) == 20
    err = capsys.readouterr().err
    assert message in err.splitlines()[0]
    assert err.splitlines()[1].startswith("hint: ")


def test_schedule_run_refuses_a_definition_of_another_schedule(
    example: ExampleProject, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    item = schedule("other")
    (file,) = render(located(example, item), GithubOptions(), zone="UTC").files
    definition = yaml.safe_load(file.text)["jobs"]["run"]["steps"][-1]["env"][DEFINITION_ENV]
    monkeypatch.chdir(example.path)
    monkeypatch.setenv(DEFINITION_ENV, definition)
    assert main(["schedule", "run", "n", "--dry-run"]) == 20
    assert "defines schedule 'other', not 'n'" in capsys.readouterr().err
    with pytest.raises(ScheduleError):
        decode_definition(definition, name="n")


def test_containerfile_passes_hadolint_and_runs_dot_as_the_cronjobs_user() -> None:
    from datum_dot.scheduling.export.kubernetes import USER_ID
    from tests.helpers.example import ROOT

    containerfile = ROOT / "Containerfile"
    result = validate([program("hadolint"), "--no-color", str(containerfile)])
    assert result.returncode == 0, result.stdout + result.stderr
    text = containerfile.read_text()
    assert re.search(rf"^USER {USER_ID}:{USER_ID}$", text, re.M)
    assert re.search(r'^ENTRYPOINT \["dot"\]$', text, re.M)
    assert re.search(r"^FROM python:3\.\d+-slim", text, re.M)
    assert 'pip install --no-cache-dir ".[${ADAPTER}]"' in text


def test_export_runs_from_the_projects_folder_inside_the_repository(tmp_path: Path) -> None:
    from tests.helpers.example import make_example

    nested = make_example(tmp_path, subdir="analytics/dbt", monkeypatch_env=False)
    item = schedule("n", pinned_commit=SHA)
    (k8s,) = render(located(nested, item), K8S, zone="UTC").files
    (container,) = pod(cronjob(k8s.text))["containers"]
    assert container["workingDir"] == "/workspace/repo/analytics/dbt"
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert decode_definition(env[DEFINITION_ENV] or "", name="n").folder == "analytics/dbt"
    (workflow,) = render(located(nested, item), GithubOptions(), zone="UTC").files
    step = yaml.safe_load(workflow.text)["jobs"]["run"]["steps"][-1]
    assert step["working-directory"] == "analytics/dbt"
    service, _ = render(located(nested, item), SystemdOptions(program=("/bin/dot",)),
                        zone="UTC").files  # fmt: skip
    assert unit_settings(service.text)["WorkingDirectory"] == [str(nested.path)]


def test_schedule_run_of_a_paused_definition_builds_nothing(
    example: ExampleProject, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from datum_dot.history import RunStore

    (file,) = render(located(example, schedule("n", enabled=False)), K8S, zone="UTC").files
    (container,) = pod(cronjob(file.text))["containers"]
    definition = next(e["value"] for e in container["env"] if e["name"] == DEFINITION_ENV)
    monkeypatch.chdir(example.path)
    monkeypatch.setenv(DEFINITION_ENV, definition)
    assert main(["schedule", "run", "n"]) == 0
    assert "shop/n: PAUSED, not run" in capsys.readouterr().out
    assert RunStore(Path(os.environ["DATUM_HOME"])).query(last=None) == []
