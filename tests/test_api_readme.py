"""The README's "Python API" worked example runs as written, in a fresh Python process, and passes
`mypy --strict` as a user's code would.

Until the README section is merged, the example lives here (and in the notes for the README);
once merged, `EXAMPLE` is read from README.md's "Python API" section.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers.example import ExampleProject

pytestmark = pytest.mark.slow

EXAMPLE = """\
import json

import datum_dot

project = datum_dot.Project(".")  # any folder inside the dbt project

result = project.build("prod@main", vars={"sample_rate": 10})
print(result.status, result.schema)
print(result.metrics["models"], "models,", result.metrics["failed"], "failed")
for line in result.errors:
    print("error:", line)
result.raise_for_status()  # datum_dot.RunFailed unless status is success or warning

with open("result.json", "w") as out:
    json.dump(result.to_dict(), out)

try:
    project.build("prod", vars={"sample_rate": 7})
except datum_dot.BadInput as e:  # exit code 20, nothing ran
    print("bad input:", e.message.split(" (")[0])

latest = project.runs(last=2)
print([run["status"] for run in latest], {run["trigger"] for run in latest})
"""


def test_api_readme_example_runs(example: ExampleProject, tmp_path: Path) -> None:
    script = tmp_path / "example.py"
    script.write_text(EXAMPLE)
    done = subprocess.run(
        [sys.executable, str(script)],
        cwd=example.path / "models",
        env={**os.environ, "PYTHONPATH": ""},
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    commit = example.repo.head()
    assert done.stdout.splitlines() == [
        f"success analytics_{commit[:8]}",
        "6 models, 0 failed",
        "bad input: var 'sample_rate' = 7",
        "['FAILED', 'SUCCESS'] {'sdk'}",
    ]
    assert done.stderr == ""
    saved = (example.path / "models" / "result.json").read_text()
    assert re.search(r'"status": "success"', saved)


def test_api_readme_example_type_checks(tmp_path: Path) -> None:
    script = tmp_path / "example.py"
    script.write_text(EXAMPLE)
    done = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--no-incremental", str(script)],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
