"""Start `dot webhook serve` as a real process on a free loopback port, and talk to it with httpx.

A fake dbt executable (a shell script) stands in for dbt where a test is about the server and
not about dbt: each call is appended to `FAKE_DBT_CALLS`, `parse` writes an empty manifest (so an
isolated build passes its isolation check), an argument `slow` makes it sleep a minute, and an
argument `gated` makes it wait while the file `FAKE_DBT_GATE` exists.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import yaml

from tests.helpers.example import BIN

FAKE_DBT = """#!/bin/sh
# A stand-in for dbt: record the call, answer at once (or slowly, given the argument `slow`).
echo "$$ $*" >> "${FAKE_DBT_CALLS:-/dev/null}"
case " $* " in *" slow "*) sleep 60;; esac
case " $* " in *" gated "*) while [ -e "${FAKE_DBT_GATE:-/nonexistent}" ]; do sleep 0.05; done;; esac
case " $* " in *" parse "*)
  mkdir -p "$DBT_TARGET_PATH" && printf '{"nodes": {}}' > "$DBT_TARGET_PATH/manifest.json";;
esac
echo "fake dbt ran: $*"
exit 0
"""
TERMINAL = frozenset({"SUCCESS", "FAILED", "TIMEOUT", "CANCELLED", "ABORTED", "SKIPPED"})


def free_port() -> int:
    """A port nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def write_fake_dbt(folder: Path) -> Path:
    """Write the fake dbt script into `folder` and return its path."""
    path = folder / "fake-dbt"
    path.write_text(FAKE_DBT)
    path.chmod(0o755)
    return path


def use_fake_dbt(project: Path, fake: Path, *, envs: tuple[str, ...] = ("all",)) -> None:
    """Make the subprocess runtime run `fake` for these environments (dot_environments.user.yml)."""
    block = {"runtimes": {"subprocess": {"dbt_path": str(fake)}}}
    (project / "dot_environments.user.yml").write_text(
        yaml.safe_dump({"environment": dict.fromkeys(envs, block)})
    )


def configure_github(home: Path, *, secret_env: str, branch_envs: Mapping[str, str]) -> None:
    """Add the GitHub settings to config.yaml (`dot init` has written the rest)."""
    path = home / "config.yaml"
    data = yaml.safe_load(path.read_text())
    data["webhook"] = {"github_secret_env": secret_env, "branch_envs": dict(branch_envs)}
    path.write_text(yaml.safe_dump(data))


@dataclass
class Server:
    """A running `dot webhook serve`.

    Attributes:
        proc: The server process.
        url: `http://127.0.0.1:<port>`.
        home: Its DATUM_HOME.
        stdout: The file its stdout goes to.
        stderr: The file its stderr goes to.
    """

    proc: subprocess.Popen[bytes]
    url: str
    home: Path
    stdout: Path
    stderr: Path

    @property
    def token(self) -> str:
        """The current webhook token."""
        return (self.home / "webhook.token").read_text().strip()

    def client(
        self, *, auth: bool = True, bearer: str | None = None, **kwargs: Any
    ) -> httpx.Client:
        """An httpx client for the server: with the real token, `bearer`, or none (`auth=False`)."""
        headers = dict(kwargs.pop("headers", {}))
        if auth:
            headers["Authorization"] = f"Bearer {bearer or self.token}"
        return httpx.Client(base_url=self.url, headers=headers, timeout=30, **kwargs)

    def wait_warm(self, timeout: float = 60) -> None:
        """Wait until every worker has imported dbt and takes jobs."""
        deadline = time.monotonic() + timeout
        while not httpx.get(f"{self.url}/healthz", timeout=5).json()["warm"]:
            if time.monotonic() > deadline:
                raise AssertionError(f"the workers did not warm up:\n{self.log()}")
            time.sleep(0.1)

    def wait_for(self, run_id: str, *, timeout: float = 120) -> dict[str, Any]:
        """Poll the run until it has finished; return its record."""
        deadline = time.monotonic() + timeout
        with self.client() as client:
            while True:
                record: dict[str, Any] = client.get(f"/v1/runs/{run_id}").json()
                if record.get("status") in TERMINAL:
                    return record
                if time.monotonic() > deadline:
                    raise AssertionError(f"run {run_id} did not finish: {record}\n{self.log()}")
                time.sleep(0.2)

    def log(self) -> str:
        """What the server printed so far."""
        return self.stdout.read_text() + self.stderr.read_text()

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 60) -> int:
        """Send `sig` and wait for the process to end; returns its exit code."""
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        return self.proc.wait(timeout=timeout)


def start_server(
    cwd: Path,
    *args: str,
    env: Mapping[str, str],
    port: int | None = None,
    program: str = "dot",
    command: tuple[str, ...] = ("webhook", "serve"),
    session: bool = False,
) -> Server:
    """Start the server with `args` and wait until /healthz answers.

    With `session`, the server and its workers get a process group of their own, which a test
    can kill whole (`os.killpg(server.proc.pid, ...)`), as a crash of the machine would.

    Raises:
        AssertionError: It exited or did not answer within 60 seconds.
    """
    port = port or free_port()
    home = Path(env["DATUM_HOME"])
    out, err = cwd.parent / f"server-{port}.out", cwd.parent / f"server-{port}.err"
    with out.open("wb") as stdout, err.open("wb") as stderr:
        proc = subprocess.Popen(
            [str(BIN / program), *command, "--port", str(port), *args],
            cwd=cwd,
            env=dict(env),
            stdin=subprocess.DEVNULL,
            stdout=stdout,
            stderr=stderr,
            start_new_session=session,
        )
    server = Server(proc, f"http://127.0.0.1:{port}", home, out, err)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"the server exited with {proc.returncode}:\n{server.log()}")
        try:
            if httpx.get(f"{server.url}/healthz", timeout=1).status_code == 200:
                return server
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    server.stop(signal.SIGKILL)
    raise AssertionError(f"the server did not answer:\n{server.log()}")


def kill_fake_dbt(calls: Path) -> None:
    """Kill every fake dbt still running (each recorded its shell's pid, its process group)."""
    if not calls.exists():
        return
    for line in calls.read_text().splitlines():
        pid = int(line.split()[0])
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pid, signal.SIGKILL)


def environ(**extra: str) -> dict[str, str]:
    """This process's environment (hermetic in tests) with `extra` on top."""
    return {**os.environ, **extra}
