"""`dot schedule export --to dagster` without Dagster: the Python file's call read back with `ast`,
the same bytes for the same schedule, and the settings it refuses. Dagster's own loader reads the
file in tests/integrations/dagster/test_dagster_export.py (scripts/test-dagster)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from datum_dot.cli.main import main
from datum_dot.errors import ScheduleError
from datum_dot.scheduling.export.dagster import DagsterOptions
from datum_dot.scheduling.export.exports import render
from datum_dot.scheduling.schedules import Overlap
from tests.helpers.example import ExampleProject
from tests.helpers.exports import located, register, schedule

SHA = "0123456789abcdef0123456789abcdef01234567"


def _call(text: str) -> dict[str, object]:
    """The keyword arguments of `dot_schedule(...)` in the file, as Python values."""
    tree = ast.parse(text)
    calls = [node for node in ast.walk(tree) if isinstance(node, ast.Call)
             and isinstance(node.func, ast.Name) and node.func.id == "dot_schedule"]  # fmt: skip
    (call,) = calls
    found: dict[str, object] = {"name": ast.literal_eval(call.args[0])}
    found.update({kw.arg or "": ast.literal_eval(kw.value) for kw in call.keywords})
    return found


@pytest.mark.parametrize(
    ("cron", "zone", "overlap", "timeout"),
    [("0 6 * * *", "Europe/Berlin", "skip", None), ("*/15 9-17 * * mon-fri", "UTC", "queue", 90.5)],
)
def test_export_dagster_carries_cron_zone_pin_overlap_and_timeout(
    example: ExampleProject, cron: str, zone: str, overlap: str, timeout: float | None
) -> None:
    item = schedule("nightly", cron, spec="prod@main", pinned_commit=SHA, pinned_ref="main",
                    overlap=Overlap(overlap), timeout=timeout, dbt_args=("--select", "orders+"))  # fmt: skip
    (file,) = render(located(example, item), DagsterOptions(), zone=zone).files
    assert file.name == "datum_dot_shop_nightly_defs.py"
    call = _call(file.text)
    assert call["name"] == "nightly"
    assert call["cron"] == cron
    assert call["timezone"] == zone
    assert call["spec"] == f"prod@{SHA}"
    assert call["command"] == ["build"]
    assert call["args"] == ["--select", "orders+"]
    assert call["overlap"] == overlap
    assert call.get("timeout") == timeout
    assert call["enabled"] is True
    again = render(located(example, item), DagsterOptions(), zone=zone).files[0]
    assert again.text == file.text


def test_export_dagster_follows_a_branch_when_not_pinned(example: ExampleProject) -> None:
    item = schedule("nightly", spec="prod@main", enabled=False)
    (file,) = render(located(example, item), DagsterOptions(), zone="UTC").files
    assert _call(file.text)["spec"] == "prod@main"
    assert _call(file.text)["enabled"] is False
    assert "# Not pinned: each run builds where the ref points" in file.text


def test_export_dagster_refuses_what_the_api_cannot_run(example: ExampleProject) -> None:
    item = schedule("nightly", state_from="prod@v1")
    with pytest.raises(ScheduleError, match="--state-from cannot be exported to Dagster"):
        render(located(example, item), DagsterOptions(), zone="UTC")


def test_export_dagster_cli_writes_the_file_and_refuses_profiles_in_repo(
    example: ExampleProject,
    hermetic: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    register(hermetic / ".datum", example, [schedule("nightly", pinned_commit=SHA)])
    monkeypatch.chdir(example.path)
    out = tmp_path / "defs"
    argv = ["schedule", "export", "nightly", "--to", "dagster", "--time-zone", "UTC"]
    assert main([*argv, "-o", str(out)]) == 0
    text = (out / "datum_dot_shop_nightly_defs.py").read_text()
    assert _call(text)["spec"] == f"prod@{SHA}"
    assert "tag_concurrency_limits" in capsys.readouterr().err
    assert main([*argv, "--profiles-in-repo"]) == 20
    err = capsys.readouterr().err
    assert "error: --profiles-in-repo is for --to kubernetes and github-actions" in err
    assert "hint: Dagster runs use the profiles.yml of the project folder: drop it" in err
