"""The webhook queue in PostgreSQL: two servers on two homes ("hosts"), one database.

Both servers are real `dot webhook serve` processes on loopback with the history and the queue
in one database of the test cluster. dbt is the fake script (tests/helpers/webhook.py) for the
load environments, so each run goes through `execute()` and the history without dbt's own time,
and every call is logged with its arguments (a marker per request, to count the runs begun);
`prod` runs the real dbt once, end to end.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import os
import re
import signal
import statistics
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import psycopg
import pytest
import yaml

from datum_dot.history import RunEnd, RunStart, RunStore
from datum_dot.home.dburl import DatabaseUrl
from datum_dot.runs.run import RunStatus
from datum_dot.webhook.jobs import JobRequest, JobState
from datum_dot.webhook.pgqueue import MAX_ATTEMPTS, PgJobQueue
from tests.helpers.example import ExampleProject, make_example
from tests.helpers.postgres import PostgresServer
from tests.helpers.webhook import Server, environ, start_server, use_fake_dbt, write_fake_dbt
from tests.test_pg_history import new_database

pytestmark = pytest.mark.postgres
PROJECT = "jaffle_dot"
RUNS = f"/v1/projects/{PROJECT}/runs"
LOAD_ENVS = tuple(f"load{n}" for n in range(6))
LEASE_SECONDS = 5
REQUESTS = 2000
RATE = 200.0


@dataclass
class Hosts:
    """Two servers sharing one database, and what they serve."""

    a: Server
    b: Server
    url: str
    example: ExampleProject
    calls: Path
    gate: Path

    def db(self) -> psycopg.Connection[tuple[Any, ...]]:
        return psycopg.connect(self.url, autocommit=True, options="-c search_path=datum_dot")

    def store(self) -> RunStore:
        return RunStore(self.a.home, database=DatabaseUrl(self.url, "test"))

    def calls_with(self, marker: str) -> list[str]:
        return [line for line in self.calls.read_text().splitlines() if f" {marker}" in line]


@pytest.fixture(scope="module")
def hosts(
    module_monkeypatch: pytest.MonkeyPatch,
    tmp_path_factory: pytest.TempPathFactory,
    postgres_server: PostgresServer,
) -> Iterator[Hosts]:
    base = tmp_path_factory.mktemp("pgqueue")
    module_monkeypatch.setenv("DOT_EXAMPLE_DUCKDB", str(base / "warehouse.duckdb"))
    example = make_example(base, monkeypatch_env=False)
    # More environments than workers, so that the load is not held up by one-run-per-environment.
    envs_file = example.path / "dot_environments.yml"
    envs = yaml.safe_load(envs_file.read_text())
    envs["environment"].update({name: {"target": "dev"} for name in LOAD_ENVS})
    envs_file.write_text(yaml.safe_dump(envs))
    use_fake_dbt(example.path, write_fake_dbt(base), envs=("dev", *LOAD_ENVS))
    url = new_database(postgres_server)
    servers: list[Server] = []
    try:
        for name in ("host-a", "host-b"):
            env = environ(
                DATUM_HOME=str(base / name),
                DATUM_DATABASE_URL=url,
                DATUM_HISTORY_LEASE_SECONDS=str(LEASE_SECONDS),
                FAKE_DBT_CALLS=str(base / "calls.log"),
                FAKE_DBT_GATE=str(base / "gate"),
            )
            assert example.dot("init", env=env).returncode == 0
            servers.append(
                start_server(
                    example.path, "--workers", "1", "--max-queue", "100000", env=env, session=True
                )
            )
        yield Hosts(servers[0], servers[1], url, example, base / "calls.log", base / "gate")
    finally:
        (base / "gate").unlink(missing_ok=True)
        for server in servers:
            if server.proc.poll() is None:
                assert server.stop() == 0, server.log()


def test_two_servers_take_2000_requests_and_begin_each_run_once(hosts: Hosts) -> None:
    latencies, answers = asyncio.run(_load(hosts))
    assert [status for status, _ in answers] == [202] * REQUESTS, next(
        answer for status, answer in answers if status != 202
    )
    run_ids = [answer["run_id"] for _, answer in answers]
    assert len(set(run_ids)) == REQUESTS
    ms = sorted(x * 1000 for x in latencies)
    q = statistics.quantiles(ms, n=100)
    print(  # the numbers the notes and the README quote
        f"\n{REQUESTS} requests at {RATE:g}/s over two servers: accept latency ms p50 {q[49]:.1f}"
        f" p95 {q[94]:.1f} p99 {q[98]:.1f} max {ms[-1]:.1f}"
    )
    started = time.monotonic()
    with hosts.db() as db:
        while True:
            (unfinished,) = db.execute(
                "SELECT count(*) FROM jobs WHERE state <> 'done' AND run_id = ANY(%s)", (run_ids,)
            ).fetchone() or (0,)
            if not unfinished:
                break
            assert time.monotonic() - started < 120, f"{unfinished} jobs unfinished"
            time.sleep(0.5)
        print(f"drained {time.monotonic() - started:.1f}s after the last answer")
        outcomes = db.execute(
            "SELECT outcome, count(*) FROM jobs WHERE run_id = ANY(%s) GROUP BY outcome", (run_ids,)
        ).fetchall()
        records = db.execute(
            "SELECT run_id, env, status, started_at, finished_at, run_dir FROM runs"
            " WHERE run_id = ANY(%s) ORDER BY started_at",
            (run_ids,),
        ).fetchall()
    assert outcomes == [("SUCCESS", REQUESTS)]
    # Every accepted run is in the history once, and dbt was started once for each request.
    assert sorted(r[0] for r in records) == sorted(run_ids)
    assert {r[2] for r in records} == {"SUCCESS"}
    markers = re.findall(r" (req-\d+)\b", hosts.calls.read_text())
    assert len(markers) == REQUESTS
    assert set(markers) == {f"req-{i}" for i in range(REQUESTS)}
    # Both hosts ran runs, and never two of one environment at once, across both.
    assert {Path(r[5]).parents[1].name for r in records} == {"host-a", "host-b"}
    for env in LOAD_ENVS:
        spans = [(r[3], r[4]) for r in records if r[1] == env]
        assert spans
        for (_, end), (start, _) in itertools.pairwise(spans):
            assert end <= start, f"two runs of {env} overlapped"


async def _load(hosts: Hosts) -> tuple[list[float], list[tuple[int, dict[str, Any]]]]:
    """Send REQUESTS at RATE per second (open loop: request i leaves at i/RATE seconds whether
    or not earlier ones were answered), alternating servers; each its latency and answer."""
    pools = [_Pool(server) for server in (hosts.a, hosts.b)]
    latencies = [0.0] * REQUESTS
    answers: list[tuple[int, dict[str, Any]]] = [(0, {})] * REQUESTS
    start = time.perf_counter()

    async def one(i: int) -> None:
        await asyncio.sleep(max(start + i / RATE - time.perf_counter(), 0))
        body = {"spec": LOAD_ENVS[i % len(LOAD_ENVS)], "args": [f"req-{i}"]}
        sent = time.perf_counter()
        answers[i] = await pools[i % 2].post(RUNS, body)
        latencies[i] = time.perf_counter() - sent

    try:
        await asyncio.gather(*(one(i) for i in range(REQUESTS)))
    finally:
        for pool in pools:
            pool.close()
    return latencies, answers


class _Pool:
    """Keep-alive HTTP/1.1 connections to one server, one request at a time each: a client
    that costs little CPU (httpx costs about 3 ms a request), so that on a machine of two cores
    shared with two servers, their workers and PostgreSQL, the latency measured is the
    servers' (as in bench/webhook_load.py)."""

    def __init__(self, server: Server) -> None:
        self.host, port = server.url.removeprefix("http://").split(":")
        self.port = int(port)
        self.token = server.token
        self.idle: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = []
        self.all: list[asyncio.StreamWriter] = []

    async def post(self, path: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        data = json.dumps(body).encode()
        request = (
            f"POST {path} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\n"
            f"Authorization: Bearer {self.token}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(data)}\r\n\r\n"
        ).encode() + data
        reused = bool(self.idle)
        reader, writer = self.idle.pop() if reused else await self._open()
        writer.write(request)
        try:
            line = await reader.readline()
        except ConnectionResetError:
            if not reused:
                raise
            line = b""
        if not line and reused:
            # The server closed this idle connection before reading the request (its
            # keep-alive timeout; a reset if the request reached a closed socket): nothing
            # was received, so it is sent on a new connection.
            writer.close()
            reader, writer = await self._open()
            writer.write(request)
            line = await reader.readline()
        status, length = int(line.split()[1]), 0
        while (header := await reader.readline()) not in (b"\r\n", b""):
            name, _, value = header.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        answer = json.loads(await reader.readexactly(length))
        self.idle.append((reader, writer))
        return status, answer

    async def _open(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        reader, writer = await asyncio.open_connection(self.host, self.port)
        self.all.append(writer)
        return reader, writer

    def close(self) -> None:
        for writer in self.all:
            writer.close()


def test_an_idempotency_key_seen_by_one_server_is_a_duplicate_on_the_other(hosts: Hosts) -> None:
    body = {"spec": "dev", "idempotency_key": "deploy-7", "args": ["idem"]}
    with hosts.a.client() as a, hosts.b.client() as b:
        first = a.post(RUNS, json=body)
        again = b.post(RUNS, json=body)
        assert (first.status_code, again.status_code) == (202, 202)
        assert again.json()["run_id"] == first.json()["run_id"]
        assert (first.json()["replayed"], again.json()["replayed"]) == (False, True)
        conflict = b.post(RUNS, json={**body, "spec": "load0"})
        assert conflict.status_code == 409
        assert first.json()["run_id"] in conflict.json()["detail"]

    # The same new key sent to both servers at once, eight times each: one job.
    ids: list[str] = []

    def send(server: Server) -> None:
        with server.client() as client:
            ids.append(client.post(RUNS, json={**body, "idempotency_key": "race"}).json()["run_id"])

    threads = [threading.Thread(target=send, args=(s,)) for s in (hosts.a, hosts.b) * 8]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(ids) == 16
    assert len(set(ids)) == 1
    for run_id in (first.json()["run_id"], ids[0]):
        assert hosts.b.wait_for(run_id)["status"] == "SUCCESS"
    assert len(hosts.calls_with("idem")) == 2  # two keys, two runs


def test_a_real_dbt_build_through_either_server(hosts: Hosts) -> None:
    with hosts.b.client() as b:
        body = {"spec": "prod@main", "args": ["-s", "+stg_customers"]}
        run_id = b.post(RUNS, json=body).json()["run_id"]
    record = hosts.a.wait_for(run_id, timeout=180)  # asked of the other server
    assert record["status"] == "SUCCESS", record
    assert (record["counts"]["models"], record["counts"]["seeds"]) == (1, 1)
    # Its output is in the folder of the host whose worker ran it.
    holder = hosts.a if record["run_dir"].startswith(str(hosts.a.home)) else hosts.b
    with holder.client() as client:
        assert "stg_customers" in client.get(f"/v1/runs/{run_id}/log").text


def test_a_killed_host_s_job_is_taken_over_only_after_its_lease(hosts: Hosts) -> None:
    hosts.gate.touch()
    with hosts.a.client() as a:
        first = a.post(RUNS, json={"spec": "dev", "args": ["gated", "killed"]}).json()["run_id"]
        deadline = time.monotonic() + 60
        while a.get(f"/v1/runs/{first}").json()["status"] != "RUNNING" or not hosts.calls_with(
            "killed"
        ):
            assert time.monotonic() < deadline, "the run did not start"
            time.sleep(0.05)
    store = hosts.store()
    with hosts.db() as db:
        row = db.execute("SELECT worker_pid FROM jobs WHERE run_id = %s", (first,)).fetchone()
    assert row is not None
    on_a = os.getpgid(row[0]) == hosts.a.proc.pid
    holder, other = (hosts.a, hosts.b) if on_a else (hosts.b, hosts.a)
    # The holder's whole host goes: the server, its workers, and the dbt it started.
    os.killpg(holder.proc.pid, signal.SIGKILL)
    holder.proc.wait(timeout=30)
    dbt_pid = int(hosts.calls_with("killed")[0].split()[0])
    with contextlib.suppress(ProcessLookupError):
        os.killpg(dbt_pid, signal.SIGKILL)
    hosts.gate.unlink()
    with hosts.db() as db:
        (lease,) = db.execute(
            "SELECT lease_until FROM jobs WHERE run_id = %s", (first,)
        ).fetchone() or (None,)
        assert lease is not None
        deadline = time.monotonic() + 60
        while True:
            run_id, claimed_at = db.execute(
                "SELECT run_id, claimed_at FROM jobs WHERE run_id = %s OR retry_of = %s",
                (first, first),
            ).fetchone() or (None, None)
            if run_id != first:
                break
            assert time.monotonic() < deadline, "the job was never taken over"
            time.sleep(0.1)
    # Nothing took it while the killed host's lease ran (the taker's clock is this machine's).
    assert datetime.fromisoformat(claimed_at) >= lease
    retry = other.wait_for(run_id)
    assert retry["status"] == "SUCCESS", retry
    assert (retry["retry_of"], retry["attempt"]) == (first, 2)
    aborted = store.get(first)
    assert aborted.status is RunStatus.ABORTED
    assert store.get(run_id).start.retry_of == first  # the history itself names the attempt
    assert "stopped renewing its lease" in (aborted.error_message or "")
    with other.client() as client:
        assert client.get(f"/v1/runs/{first}").json()["retried_as"] == run_id
    assert len(hosts.calls_with("killed")) == 2  # begun once by each host, never twice at once


# --- the queue itself, two "hosts" as two PgJobQueue objects on one database ------------------


@pytest.fixture
def url(postgres_server: PostgresServer) -> DatabaseUrl:
    return DatabaseUrl(new_database(postgres_server), "test")


def job_request(env: str) -> JobRequest:
    return JobRequest(
        project="shop",
        project_dir="/srv/shop",
        project_name="jaffle_dot",
        spec=env,
        env=env,
        ref=None,
        commit=None,
        command=("build",),
    )


def test_claims_made_at_once_start_one_job_per_environment(url: DatabaseUrl) -> None:
    host_a, host_b = PgJobQueue(url), PgJobQueue(url)
    for env in ("dev", "dev", "prod", "prod", "dev"):
        host_a.enqueue(job_request(env), idempotency_key=None, fingerprint=env)
    claimed: list[str] = []
    barrier = threading.Barrier(12)

    def claim(queue: PgJobQueue) -> None:
        barrier.wait()
        job = queue.claim()
        if job is not None:
            claimed.append(job.request.env)

    threads = [threading.Thread(target=claim, args=(q,)) for q in (host_a, host_b) * 6]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(claimed) == ["dev", "prod"]
    assert host_b.counts() == {JobState.QUEUED: 3, JobState.RUNNING: 2, JobState.DONE: 0}


def test_a_lapsed_lease_of_a_run_that_never_began_is_claimed_again_under_its_id(
    url: DatabaseUrl, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DATUM_HISTORY_LEASE_SECONDS", "1")
    host_a, host_b = PgJobQueue(url), PgJobQueue(url)
    host_a.enqueue(job_request("dev"), idempotency_key=None, fingerprint="x")
    first = host_a.claim()
    assert first is not None
    assert host_b.claim() is None  # its lease runs
    time.sleep(1.2)
    again = host_b.claim()
    assert again is not None
    assert (again.run_id, again.attempt, again.retry_of) == (first.run_id, 1, None)


def test_a_lapsed_lease_of_a_run_that_ended_settles_the_job_without_running_it(
    url: DatabaseUrl, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("DATUM_HISTORY_LEASE_SECONDS", "1")
    queue, store = PgJobQueue(url), RunStore(tmp_path, database=url)
    queue.enqueue(job_request("dev"), idempotency_key=None, fingerprint="x")
    job = queue.claim()
    assert job is not None
    store.begin(RunStart(project="jaffle_dot", spec="dev", command=("build",)), run_id=job.run_id)
    store.finish(job.run_id, RunEnd(RunStatus.SUCCESS, 0))
    time.sleep(1.2)  # the server died after the run, before telling the queue
    assert queue.claim() is None
    settled = queue.get(job.run_id)
    assert settled is not None
    assert (settled.state, settled.outcome) == (JobState.DONE, "SUCCESS")


def test_an_aborted_run_is_retried_up_to_the_attempts_allowed(
    url: DatabaseUrl, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("DATUM_HISTORY_LEASE_SECONDS", "1")
    queue, store = PgJobQueue(url), RunStore(tmp_path, database=url)
    queue.enqueue(job_request("dev"), idempotency_key="k", fingerprint="x")
    job = queue.claim()
    attempts: list[str] = []
    while job is not None:
        attempts.append(job.run_id)
        assert (job.attempt, job.retry_of) == (len(attempts), ([None, *attempts])[-2])
        start = RunStart(project="jaffle_dot", spec="dev", command=("build",))
        store.begin(start, run_id=job.run_id)
        store.finish(job.run_id, RunEnd(RunStatus.ABORTED, 40))  # as the lease rule leaves it
        time.sleep(1.2)
        job = queue.claim()
    assert len(attempts) == MAX_ATTEMPTS
    last = queue.get(attempts[-1])
    assert last is not None
    assert (last.state, last.outcome) == (JobState.DONE, "ABORTED")
    assert [queue.retried_as(run_id) for run_id in attempts] == [*attempts[1:], None]
    # Its key still names the job, now under its last attempt's id.
    found = queue.find("shop", "k", "x")
    assert found is not None
    assert found.run_id == attempts[-1]
