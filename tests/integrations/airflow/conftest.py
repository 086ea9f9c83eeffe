"""The Airflow tests run in their own virtual environment (`scripts/test-airflow`), where Airflow 3
is installed; the main environment has no Airflow, so there this folder is not collected at all,
and its marker is registered here with the tests it marks.

`airflow_home` makes one Airflow for the session: AIRFLOW_HOME and its dags folder in a temporary
folder, the metadata database on SQLite migrated once (`airflow db migrate`, about 3 s). Airflow
reads its settings when first imported, so the variables are set before any test imports it.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

collect_ignore_glob = [] if importlib.util.find_spec("airflow") else ["test_*.py"]


def pytest_configure(config: pytest.Config) -> None:
    """Register the `airflow` marker (`pytest -m airflow` runs these tests)."""
    config.addinivalue_line("markers", "airflow: needs Airflow 3 (scripts/test-airflow)")


@dataclass(frozen=True)
class AirflowHome:
    """The session's Airflow: its home folder and the dags folder `dag.test()` syncs from."""

    path: Path
    dags: Path


@pytest.fixture(scope="session")
def airflow_home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AirflowHome]:
    home = tmp_path_factory.mktemp("airflow")
    dags = home / "dags"
    dags.mkdir()
    settings = {
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(dags),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__UNIT_TEST_MODE": "False",
        "SCARF_ANALYTICS": "false",
        "DO_NOT_TRACK": "1",
    }
    saved = {key: os.environ.get(key) for key in settings}
    os.environ.update(settings)
    airflow = Path(sys.executable).parent / "airflow"
    migrated = subprocess.run(
        [str(airflow), "db", "migrate"],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert migrated.returncode == 0, migrated.stderr[-3000:]
    yield AirflowHome(home, dags)
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value
