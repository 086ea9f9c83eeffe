"""Several processes recording runs into one history at once lose and corrupt nothing."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from datum_dot.history import RunStore
from datum_dot.home.settings import datum_home
from datum_dot.runs.run import RunStatus
from tests.helpers.example import ROOT

WRITERS = 8
RECORDS = 200


@pytest.mark.slow
def test_eight_processes_writing_200_records_each_lose_none(tmp_path: Path) -> None:
    home = datum_home()
    go = tmp_path / "go"
    children = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "tests.helpers.run_writer",
                "many",
                str(home),
                str(RECORDS),
                f"w{n}",
                str(go),
            ],
            cwd=ROOT,
            stderr=subprocess.PIPE,
            text=True,
        )
        for n in range(WRITERS)
    ]
    time.sleep(0.5)  # let every writer import and wait at the start line
    go.touch()
    for child in children:
        _, err = child.communicate(timeout=600)
        assert child.returncode == 0, err

    runs = RunStore(home).query(last=None)
    assert len(runs) == WRITERS * RECORDS
    assert len({r.run_id for r in runs}) == WRITERS * RECORDS
    assert {r.status for r in runs} == {RunStatus.SUCCESS}
    for n in range(WRITERS):
        assert sum(r.start.project == f"w{n}" for r in runs) == RECORDS
    folders = {p.name for p in (home / "runs").iterdir()}
    assert folders == {r.run_id for r in runs}
    for run in runs:
        assert json.loads((run.run_dir / "metadata.json").read_text())["status"] == "SUCCESS"
        assert (run.run_dir / "output.log").read_text().count("\n") == 1
    conn = sqlite3.connect(home / "history.sqlite")
    try:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    finally:
        conn.close()
