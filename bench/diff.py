"""`dot diff` on two DuckDB tables of 1,000,000 rows and 10 columns that differ in 1% of rows.

A throwaway project builds the table at two commits (`prod@v1`, `prod@main`; not timed), then:

1. `dot diff prod@v1 prod@main --json`: the whole command (start-up, planning, dbt's import,
   all three levels), wall time;
2. the diff alone, in process (`diff.compare.run_diff` on sides planned once): the three
   levels' queries through dbt's adapter, and the history record;
3. the same comparison done by pulling both tables into Python (duckdb's `fetchall`) and
   comparing there (rows by key; per column the changed values).

Target: (1) under 3 s. Medians of N rounds. Run: .venv/bin/python bench/diff.py [N]
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import BIN, environment, machine, median, run

ROWS = 1_000_000
COLUMNS = ["id", *(f"c{n}" for n in range(1, 10))]


def _model(changed: bool) -> str:
    c1 = "case when i % 100 = 0 then i * 2 + 1 else i * 2 end" if changed else "i * 2"
    cols = [f"i as id, {c1} as c1"]
    cols += [f"i * {n} as c{n}" for n in range(2, 6)]
    cols += [f"'v' || (i % {n * 7}) as c{n}" for n in range(6, 10)]
    return f"select {', '.join(cols)} from range({ROWS}) t(i)\n"  # noqa: S608 - bench SQL


def _project(base: Path, env: dict[str, str]) -> Path:
    repo = base / "repo"
    (repo / "models").mkdir(parents=True)
    (repo / "dbt_project.yml").write_text(
        "name: bench\nversion: '1.0'\nconfig-version: 2\nprofile: bench\n"
        "models:\n  bench:\n    +materialized: table\n"
    )
    (repo / "profiles.yml").write_text(
        "bench:\n  target: prod\n  outputs:\n    prod:\n      type: duckdb\n"
        f"      path: {base / 'warehouse.duckdb'}\n      schema: analytics\n"
    )
    (repo / "dot_environments.yml").write_text("environment:\n  default: prod\n  prod: {}\n")
    (repo / "models" / "schema.yml").write_text(
        "version: 2\nmodels:\n  - name: big\n    columns:\n      - name: id\n"
        "        data_tests: [unique]\n"
    )

    def git(*args: str) -> None:
        subprocess.run(["git", *args], cwd=repo, env=env, check=True, capture_output=True)

    (repo / "models" / "big.sql").write_text(_model(changed=False))
    git("init", "-q", "-b", "main")
    git("add", "-A")
    git("commit", "-q", "-m", "v1")
    git("tag", "v1")
    (repo / "models" / "big.sql").write_text(_model(changed=True))
    git("commit", "-q", "-am", "v2: 1% of c1 changes")
    for spec in ("prod@v1", "prod@main"):
        run([str(BIN / "dot"), "build", spec, "--disable-prompts"], cwd=repo, env=env)
    return repo


def _in_python(database: Path, left: str, right: str) -> tuple[int, int, int]:
    import duckdb

    con = duckdb.connect(str(database), read_only=True)
    try:
        rows_l = con.execute(f"select * from {left}").fetchall()  # noqa: S608 - bench names
        rows_r = con.execute(f"select * from {right}").fetchall()  # noqa: S608
    finally:
        con.close()
    by_l = {row[0]: row for row in rows_l}
    by_r = {row[0]: row for row in rows_r}
    changed = 0
    per_column = [0] * (len(COLUMNS) - 1)
    for key, row in by_l.items():
        other = by_r.get(key)
        if other is None or other == row:
            continue
        changed += 1
        for n, (a, b) in enumerate(zip(row[1:], other[1:], strict=True)):
            per_column[n] += a != b
    return len(by_l.keys() - by_r.keys()), len(by_r.keys() - by_l.keys()), changed


def main(rounds: int) -> None:
    """Build, then time the three ways; print the medians and the ratio."""
    import os

    base = Path(tempfile.mkdtemp(prefix="dot-bench-diff-"))
    env = environment(base)
    repo = _project(base, env)
    cli = [run([str(BIN / "dot"), "diff", "prod@v1", "prod@main", "--json"], cwd=repo, env=env)
           for _ in range(rounds)]  # fmt: skip

    os.environ.update({"DATUM_HOME": env["DATUM_HOME"]})
    from datum_dot.diff.compare import DiffRequest, run_diff
    from datum_dot.diff.sides import plan_sides
    from datum_dot.history import RunStore
    from datum_dot.runs.spec import parse_spec

    left, right = plan_sides(parse_spec("prod@v1"), parse_spec("prod@main"), repo, states=None)
    store = RunStore(Path(env["DATUM_HOME"]))
    inproc: list[float] = []
    result = None
    for _ in range(rounds):
        start = time.perf_counter()
        result = run_diff(left, right, DiffRequest(), store=store)
        inproc.append(time.perf_counter() - start)
    assert result is not None
    model = result.models[0]
    assert model.rows is not None
    assert model.relation is not None
    found = (model.rows.only_left, model.rows.only_right, model.rows.changed)
    python: list[float] = []
    for _ in range(rounds):
        start = time.perf_counter()
        pulled = _in_python(base / "warehouse.duckdb", model.relation.left, model.relation.right)
        python.append(time.perf_counter() - start)
    assert pulled == found, (pulled, found)
    print(machine())
    print(f"{ROWS:,} rows x {len(COLUMNS)} columns, {found[2]:,} rows changed; {rounds} rounds")
    print(f"dot diff (the command, 3 levels)   {median(cli):6.2f} s")
    print(f"diff in the warehouse (in process) {median(inproc):6.2f} s")
    print(f"pull both into Python and compare  {median(python):6.2f} s")
    print(f"ratio Python / warehouse diff      {median(python) / median(inproc):6.1f}x")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 3)
