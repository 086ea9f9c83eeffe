"""A triggered build on a warm webhook server vs a fresh `dbt build` process (median of N).

- fresh dbt: `dbt <argv>` started as a new process, with exactly the argv the webhook's run used
  (the example project, environment prod, working tree);
- warm server: `dot webhook serve --warm`, whose worker has imported dbt and runs each build in a
  forked copy of itself; timed from the POST to the moment GET /v1/runs/<id> says SUCCESS;
- for context, the same through the default server (the `subprocess` runtime: a new dbt process
  per run, but planned by a warm worker), and a warm isolated build (`prod@main`, worktree and
  packages already there, isolation check included).

Rounds are interleaved, after one warm-up run of each way. Target: warm server <= 0.5x fresh dbt.

Run: .venv/bin/python bench/webhook_warm.py [rounds]
"""

from __future__ import annotations

import json
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import httpx
from common import BIN, machine, make_repo, run


def main() -> None:
    """Print the median of each way and its ratio to a fresh dbt build."""
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 5
    repo, env = make_repo(commits=1)
    run([str(BIN / "dot"), "init"], cwd=repo, env=env)
    home = Path(env["DATUM_HOME"])
    token = (home / "webhook.token").read_text().strip()
    # Servers on one DATUM_HOME share its queue (either would take the other's jobs): the
    # default server gets a copy of the home of its own.
    shutil.copytree(home, home.with_name("datum_home_default"))
    cold_env = {**env, "DATUM_HOME": str(home.with_name("datum_home_default"))}
    warm = _Server(repo, env, token, "--warm", "--workers", "1")
    cold = _Server(repo, cold_env, token, "--workers", "1")
    try:
        argv = warm.build("prod")["argv"]  # warm-up, and the argv dbt gets
        cold.build("prod")
        warm.build("prod@main")
        ways: dict[str, Callable[[], object]] = {
            "fresh dbt build process": lambda: run([str(BIN / "dbt"), *argv], cwd=repo, env=env),
            "warm server (--warm)": lambda: warm.build("prod"),
            "default server (subprocess)": lambda: cold.build("prod"),
            "warm server, isolated prod@main": lambda: warm.build("prod@main"),
        }
        times: dict[str, list[float]] = {name: [] for name in ways}
        for i in range(rounds):
            names = list(ways)
            for name in names[i % len(names) :] + names[: i % len(names)]:
                started = time.perf_counter()
                ways[name]()
                times[name].append(time.perf_counter() - started)
    finally:
        warm.stop()
        cold.stop()
        shutil.rmtree(repo.parent, ignore_errors=True)
    fresh = statistics.median(times["fresh dbt build process"])
    print(f"{'way':<34}{'median':>9}{'vs fresh':>10}")
    for name, values in times.items():
        m = statistics.median(values)
        print(f"{name:<34}{m:8.2f}s{m / fresh:9.2f}x")
    ratio = statistics.median(times["warm server (--warm)"]) / fresh
    print(f"rounds={rounds}; dbt argv: {' '.join(argv[:3])} ...")
    print("target met" if ratio <= 0.5 else "TARGET MISSED", f"(warm/fresh = {ratio:.2f})")
    print(machine())


class _Server:
    """A `dot webhook serve` process and a client for it."""

    def __init__(self, repo: Path, env: dict[str, str], token: str, *options: str) -> None:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        self.url = f"http://127.0.0.1:{port}"
        log = (repo.parent / f"server-{port}.log").open("wb")
        self.proc = subprocess.Popen(
            [str(BIN / "dot"), "webhook", "serve", "--port", str(port), *options],
            cwd=repo, env=env, stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
        self.client = httpx.Client(
            base_url=self.url, headers={"Authorization": f"Bearer {token}"}, timeout=60
        )
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:  # until the worker has imported dbt
            try:
                if self.client.get("/healthz").json()["warm"]:
                    return
            except (httpx.HTTPError, json.JSONDecodeError):
                pass
            time.sleep(0.2)
        raise SystemExit(f"the server on {self.url} did not warm up")

    def build(self, spec: str) -> dict[str, object]:
        run_id = self.client.post("/v1/projects/jaffle_dot/runs", json={"spec": spec}).json()[
            "run_id"
        ]
        while True:
            record: dict[str, object] = self.client.get(f"/v1/runs/{run_id}").json()
            if record["status"] == "SUCCESS":
                return record
            if record["status"] not in ("queued", "RUNNING"):
                raise SystemExit(f"run {run_id} ended {record['status']}: {record}")
            time.sleep(0.02)

    def stop(self) -> None:
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(timeout=120)


if __name__ == "__main__":
    main()
