"""`dot webhook serve` as a real process on loopback, driven with httpx; dbt is a fake script here.

One server (module-scoped) answers most tests: the example project registered with `dot init`,
a fake dbt for every environment, GitHub pushes to `main` mapped to `prod`. Tests that need their
own server (start-up refusals, shutdown) start one.
"""

from __future__ import annotations

import ast
import hashlib
import hmac
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from datum_dot.history import RUN_ID
from datum_dot.webhook.auth import signature_header
from tests.helpers.example import BIN, ROOT, ExampleProject, make_example
from tests.helpers.webhook import (
    Server,
    configure_github,
    environ,
    free_port,
    start_server,
    use_fake_dbt,
    write_fake_dbt,
)

GH_SECRET = "gh-secret"  # noqa: S105 - a test value
PROJECT = "jaffle_dot"
RUNS = f"/v1/projects/{PROJECT}/runs"


@dataclass
class Served:
    """The module's server and what it serves."""

    server: Server
    example: ExampleProject
    env: dict[str, str]
    gate: Path
    calls: Path

    def post(self, body: Any, **kwargs: Any) -> httpx.Response:
        with self.server.client() as client:
            return client.post(RUNS, json=body, **kwargs)

    def accept(self, body: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        response = self.post(body, **kwargs)
        assert response.status_code == 202, response.text
        data: dict[str, Any] = response.json()
        return data


@pytest.fixture(scope="module")
def served(
    module_monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Served]:
    base = tmp_path_factory.mktemp("webhook")
    module_monkeypatch.setenv("DOT_EXAMPLE_DUCKDB", str(base / "warehouse.duckdb"))
    example = make_example(base, monkeypatch_env=False)
    example.repo.tag("v1.0")
    use_fake_dbt(example.path, write_fake_dbt(base))
    env = environ(
        FAKE_DBT_CALLS=str(base / "calls.log"),
        FAKE_DBT_GATE=str(base / "gate"),
        GH_SECRET=GH_SECRET,
    )
    assert example.dot("init", env=env).returncode == 0
    configure_github(Path(env["DATUM_HOME"]), secret_env="GH_SECRET", branch_envs={"main": "prod"})  # noqa: S106
    server = start_server(example.path, "--workers", "2", env=env)
    try:
        yield Served(server, example, env, base / "gate", base / "calls.log")
    finally:
        (base / "gate").unlink(missing_ok=True)
        assert server.stop() == 0, server.log()


@pytest.fixture
def gate(served: Served) -> Iterator[Path]:
    """While this file exists, fake dbt runs given the argument `gated` wait."""
    served.gate.touch()
    yield served.gate
    served.gate.unlink(missing_ok=True)


def test_webhook_round_trip_runs_the_accepted_commit(served: Served) -> None:
    head = served.example.repo.head()
    accepted = served.accept({"spec": "prod@main", "args": ["--select", "orders+"]})
    run_id = accepted["run_id"]
    assert RUN_ID.fullmatch(run_id)
    assert accepted["status"] == "queued"
    assert accepted["commit"] == head
    assert accepted["status_url"] == f"{served.server.url}/v1/runs/{run_id}"
    assert accepted["log_url"] == f"{served.server.url}/v1/runs/{run_id}/log"
    run_dir = served.server.home / "runs" / run_id
    assert accepted["output_url"] == accepted["status_url"]  # the record, as datum answered
    assert accepted["output_dir"] == str(run_dir)
    record = served.server.wait_for(run_id)
    assert record["status"] == "SUCCESS", record
    assert record["run_id"] == run_id
    assert record["commit"] == head
    assert record["spec"] == "prod@main"
    assert record["trigger"] == "webhook"
    assert record["runtime"] == "subprocess"
    assert record["project_id"] == PROJECT
    assert record["argv"][-2:] == ["--select", "orders+"]
    assert (run_dir / "metadata.json").is_file()
    with served.server.client() as client:
        log = client.get(f"/v1/runs/{run_id}/log")
    assert log.status_code == 200
    assert log.headers["x-run-status"] == "SUCCESS"
    assert "fake dbt ran: --log-format json build" in log.text
    # The workers are ready (one just ran a job), but this server was started without --warm.
    with served.server.client() as client:
        assert client.get("/healthz").json() == {"status": "ok", "warm": False}


def test_webhook_queued_run_is_visible_then_runs_after_the_one_before(
    served: Served, gate: Path
) -> None:
    # ci and prod write to one DuckDB file, and runs on one file take turns (one writer): for
    # this test prod writes to a file of its own, so it may run beside ci.
    profiles = served.example.path / "profiles.yml"
    shared = profiles.read_text()
    head, prod = shared.split("    prod:", 1)
    own = head + "    prod:" + prod.replace('}}"', '}}.prod"', 1)
    assert own.count(".prod") == 1
    profiles.write_text(own)
    try:
        first = served.accept({"spec": "ci", "args": ["--select", "gated"]})
        second = served.accept({"spec": "ci"})  # same environment: waits for the first
        other = served.accept({"spec": "prod"})  # another environment: runs meanwhile
        assert served.server.wait_for(other["run_id"])["status"] == "SUCCESS"
    finally:
        profiles.write_text(shared)
    with served.server.client() as client:
        waiting = client.get(f"/v1/runs/{second['run_id']}").json()
        assert waiting["status"] == "queued"
        assert waiting["queue_position"] == 0
        assert waiting["project_id"] == PROJECT
        listed = client.get("/v1/runs", params={"status": "queued"}).json()["runs"]
        assert [r["run_id"] for r in listed] == [second["run_id"]]
        log = client.get(f"/v1/runs/{second['run_id']}/log")
        assert (log.status_code, log.text, log.headers["x-run-status"]) == (200, "", "queued")
        running = client.get(f"/v1/runs/{first['run_id']}").json()
        assert running["status"] == "RUNNING"
    gate.unlink()
    assert served.server.wait_for(first["run_id"])["status"] == "SUCCESS"
    done = served.server.wait_for(second["run_id"])
    assert done["started_at"] >= served.server.wait_for(first["run_id"])["finished_at"]


def test_webhook_log_streams_while_running(served: Served, gate: Path) -> None:
    run_id = served.accept({"spec": "ci", "args": ["gated"]})["run_id"]
    with served.server.client() as client:
        while client.get(f"/v1/runs/{run_id}").json()["status"] != "RUNNING":
            time.sleep(0.05)
        with client.stream("GET", f"/v1/runs/{run_id}/log") as response:
            assert response.headers["x-run-status"] == "RUNNING"
            gate.unlink()  # the run goes on and ends while the response streams
            text = b"".join(response.iter_bytes()).decode()
    assert "fake dbt ran" in text
    assert served.server.wait_for(run_id)["status"] == "SUCCESS"


def test_webhook_pins_the_commit_the_ref_had_when_accepted(served: Served, gate: Path) -> None:
    blocker = served.accept({"spec": "prod", "args": ["gated"]})
    before = served.example.repo.head()
    accepted = served.accept({"spec": "prod@main"})
    moved = served.example.repo.commit({"README.md": "moved on\n"}, "after the request")
    gate.unlink()
    assert served.server.wait_for(blocker["run_id"])["status"] == "SUCCESS"
    record = served.server.wait_for(accepted["run_id"])
    assert accepted["commit"] == record["commit"] == before != moved


def test_webhook_checks_a_request_at_a_ref_against_that_commits_settings(
    served: Served, tmp_path: Path
) -> None:
    repo = served.example.repo
    other = tmp_path / "other"
    repo.git("worktree", "add", "-q", "-b", "envs-at-ref", str(other), "main")
    environments = (served.example.path / "dot_environments.yml").read_text()
    (other / "dot_environments.yml").write_text(
        environments + "  staging:\n    target: prod\n    vars:\n      sample_rate: 7\n"
    )
    repo.git("commit", "-q", "-am", "a staging environment on a branch", cwd=other)
    # only that commit has `staging`: accepted there, refused at main and in the checkout
    accepted = served.accept({"spec": "staging@envs-at-ref"})
    assert accepted["commit"] == repo.git("rev-parse", "envs-at-ref").strip()
    for spec in ("staging@main", "staging"):
        refused = served.post({"spec": spec})
        assert refused.status_code == 422, refused.text
        assert "staging" in refused.text
    # vars are checked against the commit's declarations too
    bad = served.post({"spec": "staging@envs-at-ref", "vars": {"sample_rate": "all"}})
    assert bad.status_code == 422, bad.text
    assert "sample_rate" in bad.text
    assert served.server.wait_for(accepted["run_id"])["env"] == "staging"


def test_webhook_same_idempotency_key_same_run(served: Served) -> None:
    body = {"spec": "dev", "idempotency_key": "deploy-42"}
    first = served.accept(body)
    again = served.accept(body)
    assert again["run_id"] == first["run_id"]
    assert (first["replayed"], again["replayed"]) == (False, True)
    by_header = served.accept({"spec": "dev"}, headers={"Idempotency-Key": "deploy-42"})
    assert by_header["run_id"] == first["run_id"]
    conflict = served.post({"spec": "prod", "idempotency_key": "deploy-42"})
    assert conflict.status_code == 409
    assert first["run_id"] in conflict.json()["detail"]
    served.server.wait_for(first["run_id"])
    after = served.accept(body)
    assert after["run_id"] == first["run_id"]
    assert after["status"] == "SUCCESS"
    with served.server.client() as client:
        runs = client.get("/v1/runs", params={"limit": 1000}).json()["runs"]
    assert [r["run_id"] for r in runs].count(first["run_id"]) == 1


def test_webhook_trigger_route_uses_the_run_id_as_key(served: Served) -> None:
    with served.server.client() as client:
        first = client.post(
            f"/trigger/{PROJECT}/nightly-7", json={"target": "prod", "vars": {"sample_rate": 5}}
        )
        again = client.post(
            f"/trigger/{PROJECT}/nightly-7", json={"target": "prod", "vars": {"sample_rate": 5}}
        )
        bare = client.post(f"/trigger/{PROJECT}/bare-1")  # no body at all
    assert first.status_code == again.status_code == bare.status_code == 202, first.text
    assert first.json()["run_id"] == again.json()["run_id"]
    record = served.server.wait_for(first.json()["run_id"])
    assert record["status"] == "SUCCESS"
    argv = record["argv"]
    assert argv.count("--target") == 1
    assert argv[argv.index("--target") + 1] == "prod"  # the payload's target, over dev's
    assert served.server.wait_for(bare.json()["run_id"])["env"] == "dev"  # the default


BAD_INPUT = [
    # (what, request kwargs, status, words in the answer)
    (
        "invalid JSON",
        {"content": b'{"spec": ', "headers": {"Content-Type": "application/json"}},
        422,
        "json",
    ),
    (
        "not UTF-8",
        {"content": b"\xff\xfe", "headers": {"Content-Type": "application/json"}},
        422,
        "JSON",
    ),
    ("not an object", {"json": ["prod"]}, 422, ""),
    ("spec missing", {"json": {}}, 422, "spec"),
    ("spec not a string", {"json": {"spec": 5}}, 422, "string"),
    ("args not a list", {"json": {"spec": "prod", "args": "-s x"}}, 422, "list"),
    ("vars not a mapping", {"json": {"spec": "prod", "vars": [1]}}, 422, "dict"),
    ("timeout a string", {"json": {"spec": "prod", "timeout": "60"}}, 422, "number"),
    ("timeout zero", {"json": {"spec": "prod", "timeout": 0}}, 422, "greater"),
    ("unknown field", {"json": {"spec": "prod", "target": "x"}}, 422, "extra"),
    (
        "unknown command",
        {"json": {"spec": "prod", "command": "frobnicate"}},
        422,
        "unknown dbt command",
    ),
    ("docs serve", {"json": {"spec": "prod", "command": "docs serve"}}, 422, "cannot be run"),
    ("ref starting with -", {"json": {"spec": "prod@--output=/tmp/x"}}, 422, "starts with '-'"),
    (
        "ref that does not resolve",
        {"json": {"spec": "prod@no-such-branch"}},
        422,
        "did not resolve",
    ),
    ("unknown environment", {"json": {"spec": "prd"}}, 422, "did you mean 'prod'"),
    (
        "--project-dir in args",
        {"json": {"spec": "prod", "args": ["--project-dir", "/"]}},
        422,
        "project-dir",
    ),
    ("control character in args", {"json": {"spec": "prod", "args": ["a\u0000b"]}}, 422, "control"),
    (
        "strict var violated",
        {"json": {"spec": "prod", "vars": {"sample_rate": "all"}}},
        422,
        "sample_rate",
    ),
    (
        "--vars in args refers to itself",
        {"json": {"spec": "prod", "args": ["--vars", "{a: &x [*x]}"]}},
        422,
        "refers back to the value itself",
    ),
    (
        "--vars in args violates a strict var",
        {"json": {"spec": "prod", "args": ["--vars={sample_rate: 7}"]}},
        422,
        "--vars in the request's args",
    ),
    ("oversized body", {"json": {"spec": "prod", "args": ["x" * 70000]}}, 413, "over 65536 bytes"),
]


@pytest.mark.parametrize(
    ("what", "kwargs", "status", "words"), BAD_INPUT, ids=[b[0] for b in BAD_INPUT]
)
def test_webhook_bad_input(
    served: Served, what: str, kwargs: dict[str, Any], status: int, words: str
) -> None:
    with served.server.client() as client:
        before = client.get("/v1/runs", params={"limit": 1000}).json()["runs"]
        response = client.post(RUNS, **kwargs)
        after = client.get("/v1/runs", params={"limit": 1000}).json()["runs"]
    assert response.status_code == status, (what, response.text)
    assert words in response.text, (what, response.text)
    assert len(after) == len(before)  # nothing was queued or recorded


def test_webhook_unknown_project_and_run_are_404(served: Served) -> None:
    with served.server.client() as client:
        assert client.post("/v1/projects/shop/runs", json={"spec": "prod"}).status_code == 404
        assert client.get("/v1/runs/jaffle_dot-20240101T000000Z-00000000").status_code == 404
        assert client.get("/v1/runs/..%2F..%2Fetc").status_code == 404
        assert client.get("/v1/runs/x/log").status_code == 404
        assert client.get("/v1/runs", params={"status": "bogus"}).status_code == 422
        assert client.get("/v1/runs", params={"project": "shop"}).status_code == 404


@pytest.mark.parametrize("authorization", [None, "Bearer wrong", "Basic x", "Bearer"])
def test_webhook_wrong_or_missing_token_is_401(served: Served, authorization: str | None) -> None:
    headers = {"Authorization": authorization} if authorization else {}
    with served.server.client(auth=False, headers=headers) as client:
        for method, path in (("POST", RUNS), ("GET", "/v1/runs"), ("GET", "/openapi.json")):
            response = client.request(method, path, json={"spec": "prod"})
            assert response.status_code == 401, (method, path)
            assert served.server.token not in response.text
        assert client.get("/healthz").status_code == 200


def test_webhook_signed_request_is_accepted_once(served: Served) -> None:
    body = json.dumps({"spec": "dev"}).encode()
    now = int(time.time())
    token = served.server.token
    headers = {
        "Content-Type": "application/json",
        "X-Datum-Signature": signature_header(token, now, "POST", RUNS, body),
    }
    with served.server.client(auth=False) as client:
        first = client.post(RUNS, content=body, headers=headers)
        replay = client.post(RUNS, content=body, headers=headers)
        old = {
            **headers,
            "X-Datum-Signature": signature_header(token, now - 400, "POST", RUNS, body),
        }
        stale = client.post(RUNS, content=body, headers=old)
    assert first.status_code == 202, first.text
    assert (replay.status_code, stale.status_code) == (401, 401)
    served.server.wait_for(first.json()["run_id"])


def test_webhook_signature_for_one_route_is_refused_on_another(served: Served) -> None:
    now = int(time.time())
    signed = {
        "X-Datum-Signature": signature_header(served.server.token, now, "GET", "/v1/runs", b"")
    }
    with served.server.client(auth=False, headers=signed) as client:
        elsewhere = [
            client.post(f"/trigger/{PROJECT}/captured-key"),
            client.post(RUNS),
            client.get("/v1/runs", params={"status": "failed"}),
            client.get("/openapi.json"),
        ]
        for response in elsewhere:
            assert response.status_code == 401, (response.request.url, response.text)
            assert "<t>.<METHOD>.<path?query>.<body>" in response.json()["detail"]
        # Not used up by the refusals: it was good for the request it was made for.
        assert client.get("/v1/runs").status_code == 200
        assert client.get("/v1/runs").status_code == 401  # and only once
    with served.server.client() as client:
        assert client.get(f"/v1/runs/{PROJECT}-captured-key").status_code == 404


def test_webhook_body_only_signature_is_refused(served: Served) -> None:
    body = json.dumps({"spec": "dev"}).encode()
    now = int(time.time())
    digest = hmac.new(served.server.token.encode(), f"{now}.".encode() + body, hashlib.sha256)
    headers = {
        "Content-Type": "application/json",
        "X-Datum-Signature": f"t={now},v1={digest.hexdigest()}",
    }
    with served.server.client(auth=False) as client:
        response = client.post(RUNS, content=body, headers=headers)
    assert response.status_code == 401, response.text
    assert "must cover the method and path" in response.json()["detail"]


def readme_block(language: str) -> str:
    """The README's `language` code block that signs a request."""
    text = (ROOT / "README.md").read_text()
    blocks = [
        block
        for block in re.findall(rf"^```{language}\n(.*?)^```$", text, re.S | re.M)
        if "X-Datum-Signature" in block
    ]
    assert len(blocks) == 1, blocks
    return blocks[0].replace("http://127.0.0.1:8080", "{url}")


def test_webhook_readme_signed_shell_example_runs_against_the_server(served: Served) -> None:
    script = readme_block("sh").replace("{url}", served.server.url)
    env = {**served.env, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}"}
    result = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", script],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    accepted = json.loads(result.stdout)
    assert accepted["status"] == "queued", accepted
    assert accepted["spec"] == "prod@main"
    assert served.server.wait_for(accepted["run_id"])["status"] == "SUCCESS"


def test_webhook_readme_signed_python_example_runs_against_the_server(served: Served) -> None:
    # Another spec than the shell example's: the same request signed in the same second is a replay.
    script = readme_block("python").replace("{url}", served.server.url)
    assert '{"spec": "prod@main"}' in script
    script = script.replace('{"spec": "prod@main"}', '{"spec": "dev@main"}')
    result = subprocess.run(
        [sys.executable, "-c", script],
        env={**served.env, "WEBHOOK_TOKEN": served.server.token},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    status, printed = result.stdout.split(" ", 1)
    assert status == "202", result.stdout
    accepted = ast.literal_eval(printed)
    assert accepted["spec"] == "dev@main"
    assert served.server.wait_for(accepted["run_id"])["status"] == "SUCCESS"


def github_post(
    served: Served,
    payload: dict[str, Any],
    *,
    event: str = "push",
    secret: str | None = GH_SECRET,
    delivery: str = "d-1",
) -> httpx.Response:
    body = json.dumps(payload).encode()
    headers = {
        "X-GitHub-Event": event,
        "X-GitHub-Delivery": delivery,
        "Content-Type": "application/json",
    }
    if secret is not None:
        digest = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
        headers["X-Hub-Signature-256"] = f"sha256={digest}"
    with served.server.client(auth=False) as client:
        return client.post(f"/v1/projects/{PROJECT}/github", content=body, headers=headers)


def test_webhook_github_push_builds_the_pushed_commit(served: Served) -> None:
    after = served.example.repo.head()
    payload = {"ref": "refs/heads/main", "after": after, "deleted": False}
    response = github_post(served, payload, delivery="delivery-1")
    assert response.status_code == 202, response.text
    redelivered = github_post(served, payload, delivery="delivery-1")
    assert redelivered.json()["run_id"] == response.json()["run_id"]
    record = served.server.wait_for(response.json()["run_id"])
    assert record["status"] == "SUCCESS"
    assert (record["spec"], record["env"], record["commit"]) == ("prod@main", "prod", after)


def test_webhook_github_other_events_and_branches(served: Served) -> None:
    ping = github_post(served, {"zen": "Keep it logically awesome."}, event="ping")
    assert (ping.status_code, ping.json()["status"]) == (200, "pong")
    issue = github_post(served, {"action": "opened"}, event="issues")
    assert issue.status_code == 202
    assert "issues" in issue.json()["reason"]
    other = github_post(served, {"ref": "refs/heads/feature", "after": "b" * 40})
    assert other.status_code == 202
    assert "not mapped" in other.json()["reason"]
    tag = github_post(served, {"ref": "refs/tags/v2", "after": "b" * 40})
    assert "not a branch" in tag.json()["reason"]
    missing = github_post(served, {"ref": "refs/heads/main", "after": "c" * 40})
    assert missing.status_code == 422  # a commit this clone does not have
    assert "git fetch" in missing.json()["hint"]


@pytest.mark.parametrize("secret", [None, "wrong-secret"])
def test_webhook_github_bad_signature_is_401(served: Served, secret: str | None) -> None:
    payload = {"ref": "refs/heads/main", "after": served.example.repo.head()}
    response = github_post(served, payload, secret=secret)
    assert response.status_code == 401
    assert GH_SECRET not in response.text


def test_webhook_openapi_is_served(served: Served) -> None:
    with served.server.client() as client:
        schema = client.get("/openapi.json").json()
    paths = {
        "/v1/projects/{project}/runs",
        "/trigger/{project_id}/{run_id}",
        "/v1/runs/{run_id}",
        "/v1/runs/{run_id}/log",
        "/v1/runs",
        "/v1/projects/{project}/github",
        "/healthz",
    }
    assert paths <= set(schema["paths"])
    assert "HTTPBearer" in schema["components"]["securitySchemes"]


# --- servers of their own ------------------------------------------------------------------------


def test_webhook_serve_refuses_a_port_in_use(example: ExampleProject) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = example.dot("webhook", "serve", "--port", str(port), timeout=60)
    assert result.returncode == 20, result.stderr
    assert f"port {port} on 127.0.0.1 is already in use" in result.stderr
    assert "Traceback" not in result.stderr


def test_webhook_serve_refuses_other_addresses_without_a_token(example: ExampleProject) -> None:
    result = example.dot("webhook", "serve", "--host", "0.0.0.0", "--port", str(free_port()))  # noqa: S104
    assert result.returncode == 20, result.stderr
    assert "refusing to listen on 0.0.0.0 without a webhook token" in result.stderr
    assert "hint: create a token with `dot webhook token`" in result.stderr


def test_webhook_token_shows_and_rotates(example: ExampleProject, hermetic: Path) -> None:
    shown = example.dot("webhook", "token")
    assert shown.returncode == 0, shown.stderr
    token_file = hermetic / ".datum" / "webhook.token"
    assert token_file.stat().st_mode & 0o777 == 0o600
    assert shown.stdout.strip() == token_file.read_text().strip()
    assert example.dot("webhook", "token").stdout == shown.stdout
    rotated = example.dot("webhook", "token", "--rotate", "--json")
    data = json.loads(rotated.stdout)
    assert data["rotated"] is True
    assert data["token"] != shown.stdout.strip()
    assert data["token"] == token_file.read_text().strip()


def test_webhook_rotated_token_takes_effect_without_restart(
    example: ExampleProject, tmp_path: Path
) -> None:
    assert example.dot("init").returncode == 0
    server = start_server(example.path, env=environ())
    try:
        old = server.token
        with server.client(bearer=old) as client:
            assert client.get("/v1/runs").status_code == 200
        assert example.dot("webhook", "token", "--rotate").returncode == 0
        with server.client(bearer=old) as client:
            assert client.get("/v1/runs").status_code == 401
        with server.client() as client:
            assert client.get("/v1/runs").status_code == 200
    finally:
        assert server.stop() == 0


def test_webhook_token_file_gone_after_start_is_503_never_open(
    example: ExampleProject, tmp_path: Path
) -> None:
    assert example.dot("init").returncode == 0
    server = start_server(example.path, env=environ())
    token_file = server.home / "webhook.token"
    old = server.token

    def answers(**headers: str) -> list[httpx.Response]:
        with server.client(auth=False, headers={"Host": "localhost", **headers}) as client:
            return [client.post(RUNS, json={"spec": "prod"}), client.get("/v1/runs")]

    def signed() -> dict[str, str]:
        t = int(time.time())
        return {"X-Datum-Signature": signature_header(old, t, "GET", "/v1/runs", b"")}

    try:
        spoil = {
            "missing": token_file.unlink,
            "empty": lambda: token_file.write_text(""),
            "unreadable (not UTF-8 text)": lambda: token_file.write_bytes(b"\xff\xfe\n"),
            "unreadable (Is a directory)": token_file.mkdir,
        }
        for problem, make in spoil.items():
            make()
            for response in (
                *answers(),
                *answers(Authorization=f"Bearer {old}"),
                *answers(**signed()),
            ):
                assert response.status_code == 503, (problem, response.status_code, response.text)
                assert f"{token_file} is {problem}" in response.json()["detail"]
                assert "dot webhook token --rotate" in response.json()["hint"]
            if token_file.is_dir():
                token_file.rmdir()
            token_file.unlink(missing_ok=True)
        with server.client(auth=False) as client:
            assert client.get("/healthz").status_code == 200
        assert "ERROR the webhook token file" in server.log()
        assert old not in server.log()
        # A new token takes effect without a restart; the old one stays refused.
        assert example.dot("webhook", "token", "--rotate").returncode == 0
        with server.client(bearer=old) as client:
            assert client.get("/v1/runs").status_code == 401
        with server.client() as client:
            assert client.get("/v1/runs").status_code == 200
    finally:
        assert server.stop() == 0, server.log()


@pytest.mark.parametrize(
    ("content", "problem"),
    [(b"", "empty"), (b" \n", "empty"), (b"\xff\xfe", "unreadable (not UTF-8 text)")],
)
def test_webhook_serve_refuses_an_empty_or_unreadable_token_file(
    example: ExampleProject, hermetic: Path, content: bytes, problem: str
) -> None:
    token_file = hermetic / ".datum" / "webhook.token"
    token_file.parent.mkdir(parents=True, exist_ok=True)
    token_file.write_bytes(content)
    result = example.dot("webhook", "serve", "--port", str(free_port()), timeout=60)
    assert result.returncode == 20, result.stderr
    assert f"the webhook token file {token_file} is {problem}" in result.stderr
    assert "hint: create a new token with `dot webhook token --rotate`" in result.stderr
    assert "Traceback" not in result.stderr


def test_webhook_tokenless_server_refuses_a_peer_that_is_not_loopback(
    example: ExampleProject,
) -> None:
    server = start_server(example.path, env=environ())
    try:
        assert "no webhook token" in server.log()
        local = {"Host": "localhost"}
        # uvicorn reports the peer a proxy on loopback names in X-Forwarded-For as the client.
        proxied = {**local, "X-Forwarded-For": "203.0.113.5"}
        with server.client(auth=False) as client:
            assert client.get("/v1/runs", headers=local).status_code == 200
            for response in (
                client.get("/v1/runs", headers=proxied),
                client.post(RUNS, json={"spec": "prod"}, headers=proxied),
            ):
                assert response.status_code == 401, response.text
                assert "only requests from this machine" in response.json()["detail"]
            assert client.get("/v1/runs", headers={"Host": "evil.example"}).status_code == 401
    finally:
        assert server.stop() == 0, server.log()


def test_webhook_sigterm_cancels_after_grace_and_keeps_the_queue(
    example: ExampleProject, tmp_path: Path
) -> None:
    use_fake_dbt(example.path, write_fake_dbt(tmp_path))
    env = environ(FAKE_DBT_GATE=str(tmp_path / "gate"), FAKE_DBT_CALLS=str(tmp_path / "calls"))
    (tmp_path / "gate").touch()
    assert example.dot("init", env=env).returncode == 0
    server = start_server(example.path, "--grace", "1", env=env)
    with server.client() as client:
        running = client.post(RUNS, json={"spec": "prod", "args": ["gated"]}).json()["run_id"]
        waiting = client.post(RUNS, json={"spec": "prod"}).json()["run_id"]
        while client.get(f"/v1/runs/{running}").json()["status"] != "RUNNING":
            time.sleep(0.05)
    started = time.monotonic()
    assert server.stop(signal.SIGTERM) == 0, server.log()
    assert time.monotonic() - started < 20
    assert "1 running jobs cancelled, 1 left queued" in server.log()
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{server.url}/healthz")
    (tmp_path / "gate").unlink()
    again = start_server(example.path, env=env)
    try:
        assert again.wait_for(running)["status"] == "CANCELLED"
        assert again.wait_for(waiting)["status"] == "SUCCESS"  # resumed after the restart
    finally:
        assert again.stop() == 0


def test_webhook_full_queue_is_503_with_retry_after(
    example: ExampleProject, tmp_path: Path
) -> None:
    use_fake_dbt(example.path, write_fake_dbt(tmp_path))
    env = environ(FAKE_DBT_GATE=str(tmp_path / "gate"), FAKE_DBT_CALLS=str(tmp_path / "calls"))
    (tmp_path / "gate").touch()
    assert example.dot("init", env=env).returncode == 0
    server = start_server(example.path, "--max-queue", "2", "--workers", "1", env=env)
    try:
        with server.client() as client:
            running = client.post(RUNS, json={"spec": "prod", "args": ["gated"]})
            waiting = client.post(RUNS, json={"spec": "prod"})
            assert (running.status_code, waiting.status_code) == (202, 202)
            full = client.post(RUNS, json={"spec": "dev"})
            assert full.status_code == 503, full.text
            assert int(full.headers["retry-after"]) > 0
            assert "queue" in full.json()["detail"]
            (tmp_path / "gate").unlink()
            for answer in (running, waiting):
                assert server.wait_for(answer.json()["run_id"])["status"] == "SUCCESS"
            # room again: nothing was lost, and the next request is taken
            again = client.post(RUNS, json={"spec": "dev"})
            assert again.status_code == 202, again.text
            assert server.wait_for(again.json()["run_id"])["status"] == "SUCCESS"
    finally:
        assert server.stop() == 0, server.log()


def test_webhook_datum_spelling_starts_the_same_server(example: ExampleProject) -> None:
    assert example.dot("init").returncode == 0
    server = start_server(
        example.path, env=environ(), program="datum", command=("dbt", "schedule", "--webhook")
    )
    try:
        with server.client() as client:
            assert client.get("/v1/runs").status_code == 200
        assert "webhook server listening on http://127.0.0.1:" in server.log()
        assert f"/v1/projects/{PROJECT}/runs" in server.log()
        assert f"{server.url}/trigger/{PROJECT}/<request-id>" in server.log()
    finally:
        assert server.stop(signal.SIGINT) == 0


def test_webhook_install_service_writes_a_user_unit(
    example: ExampleProject, tmp_path: Path
) -> None:
    env = {"XDG_CONFIG_HOME": str(tmp_path / "config")}
    result = example.dot("webhook", "install-service", "--port", "9123", "--workers", "3", env=env)
    assert result.returncode == 0, result.stderr
    unit = tmp_path / "config" / "systemd" / "user" / "datum-webhook.service"
    text = unit.read_text()
    assert f"ExecStart={BIN / 'dot'} webhook serve --host 127.0.0.1 --port 9123 --workers 3" in text
    assert "systemctl --user enable --now datum-webhook.service" in result.stdout
    again = example.dot("webhook", "install-service", "--port", "9123", "--workers", "3", env=env)
    assert "unchanged" in again.stdout
    changed = example.dot("webhook", "install-service", "--port", "9124", env=env)
    assert changed.returncode == 20
    assert "--force" in changed.stderr
    printed = example.dot("webhook", "install-service", "--print", "--host", "0.0.0.0", env=env)  # noqa: S104
    assert printed.returncode == 20  # no token yet: the service could not start


def test_webhook_killed_server_leaves_no_dbt_running(
    example: ExampleProject, tmp_path: Path
) -> None:
    calls = tmp_path / "calls"
    use_fake_dbt(example.path, write_fake_dbt(tmp_path))
    env = environ(FAKE_DBT_CALLS=str(calls))
    assert example.dot("init", env=env).returncode == 0
    first = start_server(example.path, "--workers", "1", env=env)
    with first.client() as client:
        running = client.post(RUNS, json={"spec": "prod", "args": ["slow"]}).json()["run_id"]
        waiting = client.post(RUNS, json={"spec": "prod"}).json()["run_id"]
        while client.get(f"/v1/runs/{running}").json()["status"] != "RUNNING":
            time.sleep(0.05)
    first.proc.kill()  # the server alone: its worker sees it go and cancels the run
    first.proc.wait(timeout=30)
    fake_pid = int(calls.read_text().split()[0])
    deadline = time.monotonic() + 30
    while Path(f"/proc/{fake_pid}").exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not Path(f"/proc/{fake_pid}").exists(), "dbt was left running"
    second = start_server(example.path, env=env)
    try:
        assert second.wait_for(running)["status"] == "CANCELLED"
        assert second.wait_for(waiting)["status"] == "SUCCESS"
    finally:
        assert second.stop() == 0
    assert len(calls.read_text().splitlines()) == 2  # the cancelled run was not run again
