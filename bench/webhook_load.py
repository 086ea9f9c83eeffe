"""Webhook accept latency under load, and no run lost or run twice.

A server (`dot webhook serve`, its own process) runs the example project with a dbt that does
nothing (`runtimes.subprocess.dbt_path: /bin/true`), so every run goes through `execute()` and
the history without dbt's own time. This process sends N trigger requests at a fixed rate on
loopback (open loop: request i leaves at i/rate seconds, whether or not earlier ones were
answered), spread over three environments, each with its own idempotency key. Then it checks:

- queued + finished runs == accepted requests, right after the last request and after the
  queue has drained;
- every accepted run id is in the history exactly once, and no run id was handed out twice.

Targets: p99 accept latency < 50 ms; zero lost or duplicated runs.

Run: .venv/bin/python bench/webhook_load.py [requests] [rate]
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import time
from pathlib import Path

import httpx
from common import BIN, machine, make_repo, run

ENVS = ("dev", "prod", "ci")


def main() -> None:
    """Print latencies and the run accounting."""
    total = int(sys.argv[1]) if len(sys.argv) > 1 else 2000
    rate = float(sys.argv[2]) if len(sys.argv) > 2 else 200.0
    repo, env = make_repo(commits=1)
    home = Path(env["DATUM_HOME"])
    (repo / "dot_environments.user.yml").write_text(
        "environment:\n  all:\n    runtimes:\n      subprocess:\n        dbt_path: /bin/true\n"
    )
    run([str(BIN / "dot"), "init"], cwd=repo, env=env)
    token = (home / "webhook.token").read_text().strip()
    port = _free_port()
    log = repo.parent / "server.log"
    with log.open("wb") as out:
        server = subprocess.Popen(
            [str(BIN / "dot"), "webhook", "serve", "--port", str(port), "--max-queue", "100000"],
            cwd=repo, env=env, stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_up(url)
        latencies, statuses, run_ids = asyncio.run(_load(url, token, total, rate))
        accepted = [r for r, s in zip(run_ids, statuses, strict=True) if s == 202]
        at_end = _accounting(home)
        drain_started = time.monotonic()
        while _accounting(home)["unfinished"] and time.monotonic() - drain_started < 600:
            time.sleep(0.5)
        drained = time.monotonic() - drain_started
        final = _accounting(home)
        history = _history_ids(home)
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=120)
        shutil.rmtree(repo.parent, ignore_errors=True)
    ms = sorted(x * 1000 for x in latencies)
    q = statistics.quantiles(ms, n=100)
    others = {s: statuses.count(s) for s in sorted(set(statuses)) if s != 202}
    print(
        f"requests {total} at {rate:g}/s: accepted {len(accepted)}, other answers {others or 'none'}"
    )
    print(f"accept latency ms: p50 {q[49]:.1f}  p95 {q[94]:.1f}  p99 {q[98]:.1f}  max {ms[-1]:.1f}")
    print(
        f"right after the last request: queued+running {at_end['unfinished']} + finished "
        f"{at_end['done']} = {at_end['unfinished'] + at_end['done']} (accepted {len(accepted)})"
    )
    print(
        f"after draining ({drained:.1f}s): finished {final['done']}, in the history "
        f"{len(history)}, distinct run ids accepted {len(set(accepted))}"
    )
    lost = set(accepted) - set(history)
    twice = len(history) - len(set(history))
    print(f"lost runs: {len(lost)}; runs recorded twice: {twice}; ids handed out twice: "
          f"{len(accepted) - len(set(accepted))}")  # fmt: skip
    ok = (
        q[98] < 50
        and not lost
        and not twice
        and at_end["unfinished"] + at_end["done"] == len(accepted) == final["done"]
    )
    print("targets met" if ok else "TARGETS MISSED")
    print(machine())


async def _load(
    url: str, token: str, total: int, rate: float
) -> tuple[list[float], list[int], list[str]]:
    """Send the requests on a schedule; return latency, status and run id of each."""
    host, port = url.removeprefix("http://").split(":")
    pool = _Pool(host, int(port))
    latencies = [0.0] * total
    statuses = [0] * total
    run_ids = [""] * total
    start = time.perf_counter()

    async def one(i: int) -> None:
        await asyncio.sleep(max(start + i / rate - time.perf_counter(), 0))
        body = json.dumps({"spec": ENVS[i % len(ENVS)], "idempotency_key": f"load-{i}"}).encode()
        request = (
            f"POST /v1/projects/jaffle_dot/runs HTTP/1.1\r\nHost: {host}:{port}\r\n"
            f"Authorization: Bearer {token}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n\r\n"
        ).encode() + body
        sent = time.perf_counter()
        try:
            status, answer = await pool.send(request)
        except (OSError, asyncio.IncompleteReadError, IndexError, ValueError) as e:
            latencies[i], statuses[i] = time.perf_counter() - sent, -1  # never accepted
            print(f"request {i}: {type(e).__name__}: {e}", file=sys.stderr)
            return
        latencies[i] = time.perf_counter() - sent
        statuses[i] = status
        if status == 202:
            run_ids[i] = json.loads(answer)["run_id"]

    await asyncio.gather(*(one(i) for i in range(total)))
    print(f"sent {total} requests in {time.perf_counter() - start:.1f}s")
    await pool.close()
    return latencies, statuses, run_ids


class _Pool:
    """Keep-alive HTTP/1.1 connections, one request at a time each: a client that costs little
    CPU, so that the latencies measured are the server's (httpx costs ~3 ms of CPU a request)."""

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.idle: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = []
        self.all: list[asyncio.StreamWriter] = []

    async def send(self, request: bytes) -> tuple[int, bytes]:
        reused = bool(self.idle)
        reader, writer = self.idle.pop() if reused else await self._open()
        writer.write(request)
        line = await reader.readline()
        if not line and reused:
            # The server closed this idle connection (keep-alive timeout) before reading the
            # request: nothing was received, so send it again on a new connection.
            writer.close()
            reader, writer = await self._open()
            writer.write(request)
            line = await reader.readline()
        status = int(line.split()[1])
        length = 0
        while (header := await reader.readline()) not in (b"\r\n", b""):
            name, _, value = header.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        body = await reader.readexactly(length)
        self.idle.append((reader, writer))
        return status, body

    async def _open(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        reader, writer = await asyncio.open_connection(self.host, self.port)
        self.all.append(writer)
        return reader, writer

    async def close(self) -> None:
        for writer in self.all:
            writer.close()


def _accounting(home: Path) -> dict[str, int]:
    conn = sqlite3.connect(home / "webhook.sqlite")
    try:
        rows = dict(conn.execute("SELECT state, count(*) FROM jobs GROUP BY state").fetchall())
    finally:
        conn.close()
    return {
        "unfinished": rows.get("queued", 0) + rows.get("running", 0),
        "done": rows.get("done", 0),
    }


def _history_ids(home: Path) -> list[str]:
    conn = sqlite3.connect(home / "history.sqlite")
    try:
        rows = conn.execute("SELECT run_id FROM runs WHERE trigger = 'webhook'").fetchall()
    finally:
        conn.close()
    ids = [r[0] for r in rows]
    folders = {p.name for p in (home / "runs").iterdir()}
    assert set(ids) <= folders, "a history record without its folder"
    return ids


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_up(url: str) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            # up is enough: a server started without --warm never says warm
            if httpx.get(f"{url}/healthz", timeout=1).json().get("status") == "ok":
                return
        except (httpx.HTTPError, json.JSONDecodeError):
            pass
        time.sleep(0.2)
    raise SystemExit("the server did not start")


if __name__ == "__main__":
    os.environ.setdefault("DO_NOT_TRACK", "1")
    main()
