"""Webhook accept latency with the queue in PostgreSQL: two servers, two homes, one database.

As `webhook_load.py`, but the history and the queue are in PostgreSQL (`DATUM_DATABASE_URL`, else
a throwaway cluster made for this run) and two servers (`dot webhook serve`, each with its own
`$DATUM_HOME`, standing for two hosts) share them. This process sends N requests at a fixed rate
on loopback (open loop), alternating between the servers, spread over three environments, each
with its own idempotency key; dbt does nothing (`dbt_path: /bin/true`), so every run goes through
`execute()` and the history without dbt's own time. Then it checks, in the database:

- every accepted request is one job, done, and one run in the history, none twice;
- no two runs of one environment overlapped, though two servers took them.

Targets: p99 accept latency < 50 ms on an idle machine (as for SQLite); zero lost or duplicated.

Run: .venv/bin/python bench/webhook_pg_load.py [requests] [rate] [workers per server]
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
import shutil
import signal
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import psycopg
from common import BIN, ROOT, machine, make_repo, run
from webhook_load import ENVS, _free_port, _Pool

PROJECT = "jaffle_dot"


def main() -> None:
    """Print latencies and the run accounting."""
    total = int(sys.argv[1]) if len(sys.argv) > 1 else 2000
    rate = float(sys.argv[2]) if len(sys.argv) > 2 else 200.0
    workers = sys.argv[3] if len(sys.argv) > 3 else "2"
    repo, env = make_repo(commits=1)
    (repo / "dot_environments.user.yml").write_text(
        "environment:\n  all:\n    runtimes:\n      subprocess:\n        dbt_path: /bin/true\n"
    )
    servers: list[subprocess.Popen[bytes]] = []
    with _database() as url:
        try:
            hosts = []
            for name in ("host-a", "host-b"):
                home_env = {**env, "DATUM_HOME": str(repo.parent / name), "DATUM_DATABASE_URL": url}
                run([str(BIN / "dot"), "init"], cwd=repo, env=home_env)
                port = _free_port()
                with (repo.parent / f"{name}.log").open("wb") as out:
                    servers.append(subprocess.Popen(
                        [str(BIN / "dot"), "webhook", "serve", "--port", str(port),
                         "--max-queue", "100000", "--workers", workers],
                        cwd=repo, env=home_env, stdout=out, stderr=subprocess.STDOUT,
                    ))  # fmt: skip
                token = (repo.parent / name / "webhook.token").read_text().strip()
                hosts.append((f"http://127.0.0.1:{port}", token))
            for server_url, _ in hosts:
                _wait_answering(server_url)
            latencies, statuses, run_ids = asyncio.run(_load(hosts, total, rate))
            accepted = [r for r, s in zip(run_ids, statuses, strict=True) if s == 202]
            drain_started = time.monotonic()
            while _unfinished(url, accepted) and time.monotonic() - drain_started < 600:
                time.sleep(0.5)
            drained = time.monotonic() - drain_started
            report = _accounting(url, accepted)
        finally:
            for server in servers:
                server.send_signal(signal.SIGTERM)
            for server in servers:
                server.wait(timeout=120)
            shutil.rmtree(repo.parent, ignore_errors=True)
    ms = sorted(x * 1000 for x in latencies)
    q = statistics.quantiles(ms, n=100)
    others = {s: statuses.count(s) for s in sorted(set(statuses)) if s != 202}
    print(f"requests {total} at {rate:g}/s over two servers ({workers} workers each): "
          f"accepted {len(accepted)}, other answers {others or 'none'}")  # fmt: skip
    print(f"accept latency ms: p50 {q[49]:.1f}  p95 {q[94]:.1f}  p99 {q[98]:.1f}  max {ms[-1]:.1f}")
    print(f"drained {drained:.1f}s after the last answer; jobs done {report['done']}, "
          f"runs in the history {report['runs']} ({report['distinct']} distinct), "
          f"by host {report['by_host']}, overlapping runs of one environment "
          f"{report['overlaps']}")  # fmt: skip
    ok = (
        q[98] < 50
        and report["done"] == report["runs"] == report["distinct"] == len(accepted) == total
        and not report["overlaps"]
    )
    print("targets met" if ok else "TARGETS MISSED")
    print(machine())


async def _load(
    hosts: list[tuple[str, str]], total: int, rate: float
) -> tuple[list[float], list[int], list[str]]:
    """Send the requests on a schedule, alternating servers; latency, status and run id of each."""
    pools = []
    for server_url, _ in hosts:
        host, port = server_url.removeprefix("http://").split(":")
        pools.append(_Pool(host, int(port)))
    latencies, statuses, run_ids = [0.0] * total, [0] * total, [""] * total
    start = time.perf_counter()

    async def one(i: int) -> None:
        await asyncio.sleep(max(start + i / rate - time.perf_counter(), 0))
        body = f'{{"spec": "{ENVS[i % len(ENVS)]}", "idempotency_key": "load-{i}"}}'.encode()
        host, port = pools[i % 2].host, pools[i % 2].port
        request = (
            f"POST /v1/projects/{PROJECT}/runs HTTP/1.1\r\nHost: {host}:{port}\r\n"
            f"Authorization: Bearer {hosts[i % 2][1]}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n\r\n"
        ).encode() + body
        sent = time.perf_counter()
        try:
            status, answer = await pools[i % 2].send(request)
        except (OSError, asyncio.IncompleteReadError, IndexError, ValueError) as e:
            latencies[i], statuses[i] = time.perf_counter() - sent, -1
            print(f"request {i}: {type(e).__name__}: {e}", file=sys.stderr)
            return
        latencies[i], statuses[i] = time.perf_counter() - sent, status
        if status == 202:
            run_ids[i] = answer.split(b'"run_id":"', 1)[1].split(b'"', 1)[0].decode()

    await asyncio.gather(*(one(i) for i in range(total)))
    print(f"sent {total} requests in {time.perf_counter() - start:.1f}s")
    for pool in pools:
        await pool.close()
    return latencies, statuses, run_ids


def _unfinished(url: str, run_ids: list[str]) -> int:
    with psycopg.connect(url, options="-c search_path=datum_dot") as db:
        row = db.execute(
            "SELECT count(*) FROM jobs WHERE state <> 'done' AND run_id = ANY(%s)", (run_ids,)
        ).fetchone()
    return int(row[0]) if row else 0


def _accounting(url: str, run_ids: list[str]) -> dict[str, object]:
    with psycopg.connect(url, options="-c search_path=datum_dot") as db:
        done = db.execute(
            "SELECT count(*) FROM jobs WHERE state = 'done' AND run_id = ANY(%s)", (run_ids,)
        ).fetchone()
        runs = db.execute(
            "SELECT run_id, env, started_at, finished_at, run_dir FROM runs"
            " WHERE run_id = ANY(%s) ORDER BY started_at",
            (run_ids,),
        ).fetchall()
    overlaps = 0
    for env in ENVS:
        spans = [(r[2], r[3]) for r in runs if r[1] == env]
        overlaps += sum(1 for (_, end), (begin, _) in itertools.pairwise(spans) if end > begin)
    by_host: dict[str, int] = {}
    for r in runs:
        host = Path(r[4]).parents[1].name
        by_host[host] = by_host.get(host, 0) + 1
    return {
        "done": int(done[0]) if done else 0,
        "runs": len(runs),
        "distinct": len({r[0] for r in runs}),
        "by_host": by_host,
        "overlaps": overlaps,
    }


@contextlib.contextmanager
def _database() -> Iterator[str]:
    """The database `DATUM_DATABASE_URL` names, else a throwaway cluster for this run."""
    given = os.environ.get("DATUM_DATABASE_URL")
    if given:
        yield given
        return
    sys.path.insert(0, str(ROOT))
    from tests.helpers.postgres import running_server

    with running_server() as server:
        yield (
            f"postgresql://{server.user}:{server.password}@{server.host}:{server.port}/"
            f"{server.database}"
        )


def _wait_answering(url: str) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                return
        time.sleep(0.2)
    raise SystemExit("a server did not start")


if __name__ == "__main__":
    os.environ.setdefault("DO_NOT_TRACK", "1")
    main()
