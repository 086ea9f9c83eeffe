"""`--artifacts-to-db`: a run's dbt artifacts kept in the PostgreSQL history outlive its host.

Host A builds prod with the option, then its run folder goes (as a pod's disk does); host B,
another `$DATUM_HOME` on the same database, lists and reads the artifacts, and defers to them.
`dot history copy` carries them both ways. With the history in SQLite the option is bad input.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import zlib
from dataclasses import dataclass
from pathlib import Path

import pytest

from datum_dot.errors import HistoryError
from datum_dot.history import RunEnd, RunRecorder, RunStart, RunStore
from datum_dot.history.dbartifacts import CACHE_DIR
from datum_dot.history.states import HistoryStates
from datum_dot.home.dburl import DatabaseUrl
from datum_dot.runs.run import RunStatus
from tests.helpers.example import ExampleProject, make_example
from tests.helpers.postgres import PostgresServer
from tests.test_pg_history import new_database

pytestmark = pytest.mark.postgres


@dataclass(frozen=True)
class Built:
    """One prod build on host A with `--artifacts-to-db`, its folder deleted afterwards."""

    example: ExampleProject
    url: str
    run_id: str
    manifest: bytes
    tmp: Path

    def env(self, host: str, *, url: str | None = None) -> dict[str, str]:
        return {
            "DATUM_HOME": str(self.tmp / host),
            "DATUM_DATABASE_URL": url or self.url,
            "DOT_EXAMPLE_DUCKDB": str(self.example.database),
        }


@pytest.fixture(scope="module")
def built(
    postgres_server: PostgresServer,
    module_monkeypatch: pytest.MonkeyPatch,
    tmp_path_factory: pytest.TempPathFactory,
) -> Built:
    tmp = tmp_path_factory.mktemp("pgart")
    example = make_example(tmp, monkeypatch_env=False)
    module_monkeypatch.setenv("DOT_EXAMPLE_DUCKDB", str(example.database))
    url = new_database(postgres_server)
    env = {"DATUM_HOME": str(tmp / "host-a"), "DATUM_DATABASE_URL": url}
    deps = example.dot("deps", "prod", env=env)
    assert deps.returncode == 0, deps.stdout + deps.stderr
    run = example.dot("build", "prod", "--artifacts-to-db", "-s", "+stg_customers", env=env)
    assert run.returncode == 0, run.stdout + run.stderr
    shown = json.loads(example.dot("logs", "last", "--json", env=env).stdout)
    folder = Path(shown["run_dir"])
    manifest = (folder / "manifest.json").read_bytes()
    shutil.rmtree(folder)  # the pod is gone, and its disk with it
    return Built(example, url, shown["run_id"], manifest, tmp)


def test_host_b_lists_and_reads_the_artifacts_of_a_run_whose_folder_is_gone(built: Built) -> None:
    env = built.env("host-b")
    listed = built.example.dot("logs", built.run_id, "--artifacts", "--json", env=env)
    assert listed.returncode == 0, listed.stderr
    items = {item["name"]: item for item in json.loads(listed.stdout)["artifacts"]}
    assert {"manifest.json", "run_results.json"} <= set(items)
    assert all(item["in_db"] and not item["present"] for item in items.values())
    manifest = items["manifest.json"]
    assert manifest["sha256"] == hashlib.sha256(built.manifest).hexdigest()
    assert manifest["bytes"] == len(built.manifest)

    text = built.example.dot("logs", built.run_id, "--artifacts", env=env)
    assert "(in the database)" in text.stdout

    read = built.example.dot("logs", built.run_id[-8:], "--artifact", "manifest.json", env=env)
    assert read.returncode == 0, read.stderr
    assert read.stdout.encode() == built.manifest  # the bytes dbt wrote, on another host

    results = built.example.dot("logs", built.run_id, "--artifact", "run_results.json", env=env)
    assert (
        hashlib.sha256(results.stdout.encode()).hexdigest() == items["run_results.json"]["sha256"]
    )

    unknown = built.example.dot("logs", built.run_id, "--artifact", "catalog.json", env=env)
    assert unknown.returncode == 20
    assert f"run {built.run_id} kept no catalog.json" in unknown.stderr

    # `dot which` on host B reads the run's relations from the database's copies.
    which = built.example.dot("which", "stg_customers", "--json", env=env)
    assert which.returncode == 0, which.stderr
    assert json.loads(which.stdout)["run_id"] == built.run_id

    # Compressed in the database: the row holds fewer bytes than the manifest.
    store = RunStore(built.tmp / "host-b", database=DatabaseUrl(built.url, "test"))
    with store.session(create=False) as s:
        row = s.one(
            "SELECT length(data) AS n FROM run_artifacts WHERE run_id = ? AND name = ?",
            (built.run_id, "manifest.json"),
        )
    assert row is not None
    assert row["n"] < len(built.manifest) / 2


def test_host_b_defers_to_the_artifacts_in_the_database(built: Built) -> None:
    env = built.env("host-b")
    plan = built.example.dot("build", "dev", "--defer", "prod", "--dry-run", "--json", env=env)
    assert plan.returncode == 0, plan.stderr
    defer = json.loads(plan.stdout)["defer"]
    assert defer["run_id"] == built.run_id
    state = Path(defer["state"])
    assert state == built.tmp / "host-b" / CACHE_DIR / built.run_id
    assert (state / "manifest.json").read_bytes() == built.manifest

    listed = built.example.dot(
        "ls", "dev", "--defer", "prod", "--", "-s", "stg_customers", "--output", "name", env=env
    )
    assert listed.returncode == 0, listed.stdout + listed.stderr
    assert "stg_customers" in listed.stdout
    record = json.loads(built.example.dot("logs", "last", "--json", env=env).stdout)
    assert record["command"][0] == "ls"
    assert record["state"]["defer"]["run_id"] == built.run_id
    assert "--state" in record["argv"]
    assert str(state) in record["argv"]


def test_copy_carries_the_artifacts_to_sqlite_and_into_another_database(
    built: Built, postgres_server: PostgresServer
) -> None:
    env = built.env("host-c")
    to_sqlite = built.example.dot("history", "copy", "--to", "sqlite", "--json", env=env)
    assert to_sqlite.returncode == 0, to_sqlite.stderr
    assert json.loads(to_sqlite.stdout)["artifacts"] >= 2
    folder = built.tmp / "host-c" / "runs" / built.run_id
    assert (folder / "manifest.json").read_bytes() == built.manifest
    assert oct((folder / "manifest.json").stat().st_mode & 0o777) == "0o600"
    again = built.example.dot("history", "copy", "--to", "sqlite", "--json", env=env)
    assert json.loads(again.stdout)["artifacts"] == 0  # already there: nothing written twice

    sqlite_env = {k: v for k, v in env.items() if k != "DATUM_DATABASE_URL"}
    local = built.example.dot("logs", built.run_id, "--artifacts", "--json", env=sqlite_env)
    items = json.loads(local.stdout)["artifacts"]
    assert all(item["present"] and not item["in_db"] for item in items)

    other = new_database(postgres_server)
    no_flag = {**os.environ, **sqlite_env}
    to_pg = built.example.dot(
        "history", "copy", "--to", other, "--artifacts-to-db", "--json", env=no_flag
    )
    assert to_pg.returncode == 0, to_pg.stderr
    assert json.loads(to_pg.stdout)["artifacts"] == len(items)
    shutil.rmtree(folder)
    read = built.example.dot(
        "logs", built.run_id, "--artifact", "manifest.json", env=built.env("host-d", url=other)
    )
    assert read.returncode == 0, read.stderr
    assert read.stdout.encode() == built.manifest


def test_the_option_with_a_sqlite_history_is_bad_input(
    example: ExampleProject, tmp_path: Path
) -> None:
    env = {"DATUM_HOME": str(tmp_path / "home"), "DATUM_DATABASE_URL": ""}
    flagged = example.dot("build", "prod", "--artifacts-to-db", "--dry-run", env=env)
    assert flagged.returncode == 20
    lines = flagged.stderr.strip().splitlines()
    assert len(lines) == 2, flagged.stderr
    assert "--artifacts-to-db keeps a run's artifacts in the PostgreSQL run history" in lines[0]
    assert "history.sqlite" in lines[0]
    assert "DATUM_DATABASE_URL" in lines[1]
    assert "Traceback" not in flagged.stderr

    by_env = example.dot("run", "prod", "--dry-run", env={**env, "DATUM_ARTIFACTS_TO_DB": "1"})
    assert by_env.returncode == 20
    assert "DATUM_ARTIFACTS_TO_DB=1 keeps" in by_env.stderr
    odd = example.dot("run", "prod", "--dry-run", env={**env, "DATUM_ARTIFACTS_TO_DB": "maybe"})
    assert odd.returncode == 20
    assert "DATUM_ARTIFACTS_TO_DB must be 1 or 0" in odd.stderr

    bad = example.dot("config", "set", "database.artifacts-to-db", "sometimes", env=env)
    assert bad.returncode == 20
    assert "must be true or false" in bad.stderr
    assert example.dot("config", "set", "database.artifacts-to-db", "true", env=env).returncode == 0
    assert "artifacts_to_db: true" in (tmp_path / "home" / "config.yaml").read_text()
    by_config = example.dot("run", "prod", "--dry-run", env=env)
    assert by_config.returncode == 20
    assert "database.artifacts_to_db in config.yaml keeps" in by_config.stderr
    assert "dot config set database.artifacts-to-db false" in by_config.stderr
    # The environment turns off what config.yaml turns on (a pod without the database).
    off = example.dot("run", "prod", "--dry-run", env={**env, "DATUM_ARTIFACTS_TO_DB": "0"})
    assert off.returncode == 0, off.stderr

    copy = example.dot(
        "history", "copy", "--to", "sqlite", "--artifacts-to-db",
        env={**env, "DATUM_DATABASE_URL": "postgresql://dot@127.0.0.1:1/x"},
    )  # fmt: skip
    assert copy.returncode == 20


def test_a_damaged_copy_is_refused_and_passed_over_and_prune_removes_the_copies(
    postgres_server: PostgresServer, tmp_path: Path
) -> None:
    url = DatabaseUrl(new_database(postgres_server), "test")
    a, b = RunStore(tmp_path / "a", database=url), RunStore(tmp_path / "b", database=url)
    target = tmp_path / "target"
    target.mkdir()
    (target / "manifest.json").write_text('{"nodes": {}}')
    (target / "run_results.json").write_text('{"results": []}')
    start = RunStart(project="shop", spec="prod", env="prod", command=("build",))
    recorder = RunRecorder(a, start)
    run_id = recorder.begin()
    assert run_id is not None
    os.utime(target / "manifest.json")
    os.utime(target / "run_results.json")
    recorder.finish(
        RunEnd(
            RunStatus.SUCCESS,
            0,
            run_results=target / "run_results.json",
            artifacts_to_db=True,
        )
    )
    shutil.rmtree(a.run_dir(run_id))
    run = b.get(run_id)
    assert run.artifacts["manifest.json"].in_db
    assert b.artifact(run, "manifest.json") == b'{"nodes": {}}'
    with b.session(create=True) as s:
        s.run(
            "UPDATE run_artifacts SET data = ? WHERE run_id = ? AND name = ?",
            (zlib.compress(b'{"nodes": {"x": 1}}'), run_id, "manifest.json"),
        )
    with pytest.raises(HistoryError) as damaged:
        b.artifact(run, "manifest.json")
    assert "damaged: its sha256 differs" in damaged.value.message
    search = HistoryStates(b).live_state("shop", "prod")
    assert search.found is None
    assert "its copy in the database cannot be used" in search.skipped[0]

    assert b.prune(keep=0) == [run_id]
    with b.session(create=False) as s:
        left = s.one("SELECT count(*) AS n FROM run_artifacts WHERE run_id = ?", (run_id,))
    assert left is not None
    assert left["n"] == 0
