"""`schedule status` (and datum's `schedule --status`) shows the webhook server beside the crontab."""

from __future__ import annotations

import json
import os
import signal
from datetime import UTC, datetime

from tests.helpers.example import ExampleProject
from tests.helpers.webhook import environ, start_server


def _status(example: ExampleProject, env: dict[str, str]) -> tuple[str, dict[str, object]]:
    text = example.dot("schedule", "status", env=env)
    assert text.returncode == 0, text.stderr
    data = example.dot("dbt", "schedule", "--status", "--json", env=env, program="datum")
    assert data.returncode == 0, data.stderr
    webhook: dict[str, object] = json.loads(data.stdout)["webhook"]
    return text.stdout, webhook


def test_schedule_status_shows_the_webhook_server_running_stopped_and_dead(
    example: ExampleProject,
) -> None:
    env = environ(DOT_CRONTAB=str(example.path.parent / "crontab"))
    out, webhook = _status(example, env)
    assert "webhook server: not running; start it: dot webhook serve" in out
    assert webhook == {"running": False, "url": None, "since": None, "pid": None}

    before = datetime.now(UTC).replace(microsecond=0)
    server = start_server(example.path, env=env)
    try:
        out, webhook = _status(example, env)
    finally:
        assert server.stop() == 0
    assert webhook["running"] is True
    assert (webhook["url"], webhook["pid"]) == (server.url, server.proc.pid)
    assert datetime.fromisoformat(str(webhook["since"])) >= before
    since = str(webhook["since"]).replace("T", " ").replace("+00:00", " UTC")
    assert f"webhook server: running at {server.url} since {since} (pid {server.proc.pid})" in out

    out, webhook = _status(example, env)  # stopped cleanly: as if it never ran
    assert "webhook server: not running; start it" in out
    assert webhook["running"] is False

    server = start_server(example.path, env=env, session=True)
    os.killpg(server.proc.pid, signal.SIGKILL)  # its file stays, its processes are gone
    server.proc.wait(timeout=30)
    out, webhook = _status(example, env)
    assert f"not running (the one at {server.url} ended without stopping cleanly)" in out
    assert webhook == {"running": False, "url": server.url, "since": None, "pid": None}
