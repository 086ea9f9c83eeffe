"""A signal while the run is prepared (isolation check, deps) cancels it (exit 50).

dbt's `dbtRunner` catches every exception, KeyboardInterrupt included, and hands it back as the
parse's failure, and a dbt child process stopped by the signal exits like a failed parse; the run
must still end CANCELLED, as a signal during dbt's execution does, not FAILED with "could not
parse the project" or "dbt deps failed": from the CLI (in-process dbt) and from the webhook
server's second SIGTERM (a dbt child process).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import pytest

from datum_dot.execute import Observer, execute
from datum_dot.history import RunStore
from datum_dot.home.settings import datum_home
from datum_dot.runs.run import RunRequest, RunStatus
from datum_dot.runs.spec import parse_spec
from tests.helpers.example import BIN, ExampleProject
from tests.helpers.webhook import environ, start_server, use_fake_dbt

pytestmark = pytest.mark.slow

CHECKING = "checking that every node lands in the isolated schema"
# dbt says this as its parse begins (the example is parsed from scratch at a new commit); the
# full parse takes over a second, so a signal sent on this line lands inside it.
PARSING = "Starting full parse"


def _build_and_sigterm(example: ExampleProject) -> tuple[int, str]:
    """Run `dot build prod@HEAD`, send SIGTERM once the isolation check's parse has begun."""
    proc = subprocess.Popen(
        [str(BIN / "dot"), "build", "prod@HEAD"],
        cwd=example.path,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    lines: list[str] = []
    sent = threading.Event()

    def pump() -> None:
        assert proc.stdout is not None
        checking = False
        for line in proc.stdout:
            lines.append(line)
            checking = checking or CHECKING in line
            if checking and PARSING in line and not sent.is_set():
                os.kill(proc.pid, signal.SIGTERM)
                sent.set()

    reader = threading.Thread(target=pump, daemon=True)
    reader.start()
    try:
        code = proc.wait(timeout=120)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    reader.join(timeout=10)
    output = "".join(lines)
    assert sent.is_set(), f"the isolation check's parse was never seen:\n{output[-3000:]}"
    return code, output


def test_sigterm_during_isolation_check_is_cancelled_not_a_parse_failure(
    example: ExampleProject,
) -> None:
    code, output = _build_and_sigterm(example)

    assert code == 50, output[-3000:]
    assert "could not parse" not in output
    logs = example.dot("logs", "--json", "--last", "1")
    assert logs.returncode == 0, logs.stderr
    (record,) = json.loads(logs.stdout)
    assert (record["status"], record["exit_code"]) == ("CANCELLED", 50), record
    assert "could not parse" not in (record["error_message"] or "")
    # Nothing was built: the run stopped before dbt's build began.
    assert not example.database.exists() or not any(
        "analytics_" in schema for schema in example.schemas()
    )


class _InterruptedInDbt(Observer):
    """Raises KeyboardInterrupt from inside dbt (an event callback), as a signal handler would."""

    def event(self, name: str, data: Mapping[str, Any]) -> None:
        raise KeyboardInterrupt


def test_interrupt_during_deps_is_cancelled_not_a_deps_failure(example: ExampleProject) -> None:
    request = RunRequest(command=("build",), spec=parse_spec("prod@HEAD"), project_dir=example.path)
    with pytest.raises(KeyboardInterrupt):
        execute(request, observer=_InterruptedInDbt())
    (run,) = RunStore(datum_home()).query(last=1)
    assert (run.status, run.exit_code) == (RunStatus.CANCELLED, 50)
    assert "deps failed" not in (run.error_message or "")


# A dbt whose `parse` says it has begun (a file), then waits while the gate file exists.
PARSE_WAITS = """#!/bin/sh
case " $* " in *" parse "*)
  touch "$FAKE_DBT_PARSING"
  while [ -e "$FAKE_DBT_GATE" ]; do sleep 0.05; done;;
esac
exit 0
"""


def _wait_for(done: Callable[[], bool], what: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not done():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def test_webhook_second_sigterm_during_isolation_check_is_cancelled(
    example: ExampleProject, tmp_path: Path
) -> None:
    fake = tmp_path / "fake-dbt"
    fake.write_text(PARSE_WAITS)
    fake.chmod(0o755)
    use_fake_dbt(example.path, fake)
    gate, parsing = tmp_path / "gate", tmp_path / "parsing"
    gate.touch()
    env = environ(FAKE_DBT_GATE=str(gate), FAKE_DBT_PARSING=str(parsing))
    assert example.dot("init", env=env).returncode == 0
    # A grace period well inside the stop's wait: when it is over, the server cancels again.
    server = start_server(example.path, "--grace", "20", env=env)
    with server.client() as client:
        accepted = client.post("/v1/projects/jaffle_dot/runs", json={"spec": "prod@main"})
    assert accepted.status_code == 202, accepted.text
    _wait_for(parsing.exists, "the isolation check's parse")
    server.proc.send_signal(signal.SIGTERM)  # the first lets running jobs finish
    _wait_for(lambda: "waiting up to" in server.log(), "the server to take the first SIGTERM")
    assert server.stop(signal.SIGTERM) == 0, server.log()  # the second cancels them
    assert "second SIGTERM: cancelling running jobs now" in server.log()

    run = RunStore(Path(env["DATUM_HOME"])).get(accepted.json()["run_id"])
    assert (run.status, run.exit_code) == (RunStatus.CANCELLED, 50), run.error_message
