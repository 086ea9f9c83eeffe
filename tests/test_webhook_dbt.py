"""The webhook server running real dbt on DuckDB: a full round trip, and a restart with queued work."""

from __future__ import annotations

import json
import os
import re
import signal
from pathlib import Path

import pytest

from tests.helpers.example import ROOT, ExampleProject
from tests.helpers.webhook import (
    environ,
    kill_fake_dbt,
    start_server,
    use_fake_dbt,
    write_fake_dbt,
)

pytestmark = pytest.mark.slow
RUNS = "/v1/projects/jaffle_dot/runs"


@pytest.mark.parametrize("runtime", ["subprocess", "warm"])
def test_webhook_builds_the_requested_commit_into_its_schema(
    example: ExampleProject, runtime: str
) -> None:
    v1 = example.repo.head()
    example.repo.tag("v1.0")
    orders = example.path / "models" / "marts" / "orders.sql"
    example.repo.commit({"models/marts/orders.sql": orders.read_text() + "\n-- v2\n"}, "v2")
    assert example.dot("init").returncode == 0
    options = ["--warm"] if runtime == "warm" else []
    server = start_server(example.path, *options, env=environ())
    try:
        with server.client() as client:
            # the README's own example request: what a reader would send first
            accepted = client.post(RUNS, json={**readme_request_body(), "timeout": 600})
        assert accepted.status_code == 202, accepted.text
        assert accepted.json()["commit"] == v1
        record = server.wait_for(accepted.json()["run_id"], timeout=240)
    finally:
        assert server.stop() == 0, server.log()
    assert record["status"] == "SUCCESS", (record, server.log())
    assert record["commit"] == v1
    assert record["runtime"] == ("local" if runtime == "warm" else "subprocess")
    assert record["counts"]["models"] >= 3  # orders, its children and all their parents (`@orders`)
    schema = f"analytics_{v1[:8]}"
    assert schema in example.schemas()
    assert "analytics" not in example.schemas()  # nothing written outside the isolated schema
    rows = example.query(f"select count(*) from {schema}.orders")[0][0]  # noqa: S608
    assert isinstance(rows, int)
    assert rows > 0
    run_dir = Path(record["run_dir"])
    assert (run_dir / "run_results.json").is_file()
    assert "Completed successfully" in (run_dir / "output.log").read_text()


def readme_request_body() -> dict[str, object]:
    """The JSON body of the README's first webhook request (`curl ... -d '<body>'`)."""
    text = (ROOT / "README.md").read_text()
    bodies = re.findall(r"curl -X POST .*?-d '(\{.*?\})'", text, re.S)
    assert bodies, "the README's webhook example has no request body"
    body = json.loads(bodies[0])
    assert body["spec"] == "prod@v1.0"
    return dict(body)


def test_webhook_restart_resumes_queued_work_and_aborts_the_interrupted(
    example: ExampleProject, tmp_path: Path
) -> None:
    calls = tmp_path / "calls.log"
    use_fake_dbt(example.path, write_fake_dbt(tmp_path), envs=("ci",))  # ci: a slow fake dbt
    env = environ(FAKE_DBT_CALLS=str(calls))
    assert example.dot("init", env=env).returncode == 0
    assert example.dot("deps", env=env).returncode == 0
    first = start_server(example.path, "--workers", "1", env=env, session=True)
    with first.client() as client:
        interrupted = client.post(RUNS, json={"spec": "ci", "args": ["slow"]}).json()["run_id"]
        queued = client.post(RUNS, json={"spec": "dev", "idempotency_key": "b"}).json()["run_id"]
        while client.get(f"/v1/runs/{interrupted}").json()["status"] != "RUNNING":
            pass
        assert client.get(f"/v1/runs/{queued}").json()["status"] == "queued"
    os.killpg(first.proc.pid, signal.SIGKILL)  # the server and its workers, with no warning
    first.proc.wait(timeout=30)
    kill_fake_dbt(calls)  # dbt runs in a session of its own: it dies as in a machine crash
    second = start_server(example.path, "--workers", "1", env=env)
    try:
        assert second.wait_for(interrupted)["status"] == "ABORTED"
        record = second.wait_for(queued, timeout=240)
        assert record["status"] == "SUCCESS", (record, second.log())
        with second.client() as client:
            replay = client.post(RUNS, json={"spec": "dev", "idempotency_key": "b"}).json()
            runs = client.get("/v1/runs", params={"limit": 1000}).json()["runs"]
    finally:
        assert second.stop() == 0
    assert replay["run_id"] == queued
    assert replay["status"] == "SUCCESS"
    ids = [r["run_id"] for r in runs if r["trigger"] == "webhook"]  # not `dot deps`
    assert sorted(ids) == sorted([interrupted, queued])  # nothing lost, nothing twice
    assert len(calls.read_text().splitlines()) == 1  # the interrupted run was not run again
    assert "1 interrupted runs marked finished" in second.log()
    assert "dev" in example.schemas()
