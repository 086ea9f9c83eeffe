"""The README's "Python API" worked example runs as written, in a fresh Python process, and passes
`mypy --strict` as a user's code would.

`EXAMPLE` is read from README.md's "Python API" section, so the test runs what the README shows.
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

README = Path(__file__).resolve().parents[1] / "README.md"
_SECTION = README.read_text().split("\n## Python API\n", 1)[1].split("\n## ", 1)[0]
EXAMPLE = _SECTION.split("```python\n", 1)[1].split("```", 1)[0]


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
