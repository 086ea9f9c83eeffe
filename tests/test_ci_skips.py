"""A test that needs a program skips on a machine without it, and fails under CI=true."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.helpers.example import ROOT


def run_without_crontab(tmp_path: Path, **env: str) -> subprocess.CompletedProcess[str]:
    """The real-crontab round trip, with a PATH on which no `crontab` can be found."""
    argv = [sys.executable, "-m", "pytest", "tests/test_schedule_crond.py", "-k", "round_trip"]
    return subprocess.run(
        [*argv, "-q", "-rs", "-p", "no:cacheprovider"],
        cwd=ROOT,
        env={**os.environ, "PATH": str(tmp_path), **env},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def test_ci_missing_program_fails_instead_of_skipping(tmp_path: Path) -> None:
    off_ci = run_without_crontab(tmp_path)
    assert off_ci.returncode == 0, off_ci.stdout
    assert "1 skipped" in off_ci.stdout
    assert "needs the crontab program" in off_ci.stdout

    in_ci = run_without_crontab(tmp_path, CI="true")
    assert in_ci.returncode == 1, in_ci.stdout
    assert "1 error" in in_ci.stdout
    assert "skipped" not in in_ci.stdout
    assert "CI=true: .ci/run provides it, so its absence is a failure" in in_ci.stdout


def test_ci_script_tells_the_suite_it_runs_in_ci() -> None:
    lines = (ROOT / ".ci" / "run").read_text().splitlines()
    exported = lines.index("export CI=true")
    for script in ("scripts/test", "scripts/test-dagster", "scripts/test-airflow"):
        assert exported < lines.index(f"bash {script}"), script
