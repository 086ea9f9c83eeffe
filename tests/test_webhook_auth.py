"""Authentication and the guard in front of the routes (narrow tests with FastAPI's TestClient)."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from datum_dot.history import RunStore
from datum_dot.tokens import ensure_webhook_token, rotate_webhook_token
from datum_dot.webhook import auth, github
from datum_dot.webhook.app import AppContext, create_app
from datum_dot.webhook.intake import Intake, check_command
from datum_dot.webhook.queue import JobQueue
from datum_dot.webhook.unit import unit_path, unit_text

SECRET = "s3cret-token"  # noqa: S105 - a test value


def make_client(
    home: Path, *, now: float | None = None, base_url: str = "http://testserver"
) -> TestClient:
    ctx = AppContext(
        home=home,
        queue=JobQueue(home),
        intake=Intake(home),
        store=RunStore(home),
        tokens=auth.TokenSource(home),
        max_body=1024,
        clock=(lambda: now) if now is not None else time.time,
    )
    return TestClient(create_app(ctx), base_url=base_url)


def test_auth_bearer_matches_only_the_token() -> None:
    assert auth.bearer_matches(f"Bearer {SECRET}", SECRET)
    assert auth.bearer_matches(f"bearer  {SECRET} ", SECRET)
    assert not auth.bearer_matches(f"Bearer {SECRET}x", SECRET)
    assert not auth.bearer_matches(f"Basic {SECRET}", SECRET)
    assert not auth.bearer_matches(None, SECRET)
    assert not auth.bearer_matches("Bearer ünïcode", SECRET)


def test_auth_signature_round_trip_and_freshness() -> None:
    body = b'{"spec": "prod"}'
    header = auth.signature_header(SECRET, 1000, body)
    parsed = auth.parse_signature(header)
    assert parsed is not None
    assert parsed.timestamp == 1000
    assert auth.verify_signature(parsed, body, SECRET, now=1100) == parsed.digests[0]
    assert auth.verify_signature(parsed, body + b" ", SECRET, now=1100) is None
    assert auth.verify_signature(parsed, body, "other", now=1100) is None
    assert auth.verify_signature(parsed, body, SECRET, now=1000 + 301) is None  # too old
    assert auth.verify_signature(parsed, body, SECRET, now=1000 - 301) is None  # from the future
    rotated = auth.parse_signature(f"t=1000,v1={'0' * 64},v1={auth.sign(SECRET, 1000, body)}")
    assert rotated is not None
    assert auth.verify_signature(rotated, body, SECRET, now=1000)
    for bad in (None, "", "t=abc,v1=00", "v1=" + "0" * 64, "t=1000", "t=1000,v1=xyz"):
        assert auth.parse_signature(bad) is None


def test_auth_github_signature() -> None:
    body = b'{"ref": "refs/heads/main"}'
    good = "sha256=" + __import__("hmac").new(b"gh", body, "sha256").hexdigest()
    assert auth.github_signature_matches(good, body, "gh")
    assert not auth.github_signature_matches(good, body + b"x", "gh")
    assert not auth.github_signature_matches(good.replace("sha256=", "sha1="), body, "gh")
    assert not auth.github_signature_matches(None, body, "gh")


def test_auth_token_source_sees_a_rotation(tmp_path: Path) -> None:
    source = auth.TokenSource(tmp_path)
    assert source.current() is None
    first = ensure_webhook_token(tmp_path)
    assert source.current() == first
    second = rotate_webhook_token(tmp_path)
    assert source.current() == second != first


def test_guard_requires_a_token_on_every_route_but_healthz(tmp_path: Path) -> None:
    token = ensure_webhook_token(tmp_path)
    client = make_client(tmp_path)
    assert client.get("/healthz").status_code == 200
    for method, path in (("GET", "/v1/runs"), ("GET", "/openapi.json"), ("POST", "/trigger/x/y")):
        for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": token}):
            response = client.request(method, path, headers=headers)
            assert response.status_code == 401, (method, path, headers)
            assert token not in response.text
            assert response.headers["www-authenticate"] == "Bearer"
    ok = client.get("/v1/runs", headers={"Authorization": f"Bearer {token}"})
    assert ok.status_code == 200
    assert ok.json() == {"runs": []}


def test_guard_accepts_a_signature_once(tmp_path: Path) -> None:
    token = ensure_webhook_token(tmp_path)
    now = time.time()
    client = make_client(tmp_path, now=now)
    body = json.dumps({"spec": "prod"}).encode()
    signed = {
        "X-Datum-Signature": auth.signature_header(token, int(now), body),
        "Content-Type": "application/json",
    }
    first = client.post("/v1/projects/nope/runs", content=body, headers=signed)
    assert first.status_code == 404  # authenticated, then the project is unknown
    replay = client.post("/v1/projects/nope/runs", content=body, headers=signed)
    assert replay.status_code == 401
    stale = {**signed, "X-Datum-Signature": auth.signature_header(token, int(now) - 600, body)}
    assert client.post("/v1/projects/nope/runs", content=body, headers=stale).status_code == 401
    wrong = {**signed, "X-Datum-Signature": auth.signature_header("x", int(now) + 1, body)}
    assert client.post("/v1/projects/nope/runs", content=body, headers=wrong).status_code == 401


def test_guard_refuses_large_bodies_with_413(tmp_path: Path) -> None:
    token = ensure_webhook_token(tmp_path)
    client = make_client(tmp_path)
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    big = json.dumps({"spec": "x" * 2000}).encode()
    assert client.post("/v1/projects/p/runs", content=big, headers=headers).status_code == 413

    def chunks():  # no Content-Length: the guard counts as it reads
        yield big[:600]
        yield big[600:]

    assert client.post("/v1/projects/p/runs", content=chunks(), headers=headers).status_code == 413


def test_guard_without_a_token_answers_only_localhost(tmp_path: Path) -> None:
    assert make_client(tmp_path).get("/v1/runs").status_code == 401
    local = make_client(tmp_path, base_url="http://127.0.0.1:8080")
    assert local.get("/v1/runs").status_code == 200
    assert make_client(tmp_path, base_url="http://localhost").get("/v1/runs").status_code == 200


def test_app_maps_undecodable_body_to_422(tmp_path: Path) -> None:
    token = ensure_webhook_token(tmp_path)
    client = make_client(tmp_path)
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    response = client.post("/v1/projects/p/runs", content=b"\xff\xfe{", headers=headers)
    assert response.status_code == 422


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("build", ("build",)),
        ("docs generate", ("docs", "generate")),
        (" source  freshness ", ("source", "freshness")),
        ("run-operation grant_select", ("run-operation", "grant_select")),
    ],
)
def test_intake_check_command_accepts(text: str, words: tuple[str, ...]) -> None:
    assert check_command(text) == words


@pytest.mark.parametrize(
    "text",
    ["", "frobnicate", "docs", "docs serve", "build extra", "run-operation", "clean", "init"],
)
def test_intake_check_command_refuses(text: str) -> None:
    from datum_dot.errors import UsageError

    with pytest.raises(UsageError):
        check_command(text)


def test_github_read_push() -> None:
    sha = "a" * 40
    envs = {"main": "prod"}

    def push(**payload: object) -> github.Push | github.Ignored:
        return github.read_push(json.dumps(payload).encode(), envs)

    assert push(ref="refs/heads/main", after=sha) == github.Push("main", sha, "prod")
    assert isinstance(push(ref="refs/heads/dev", after=sha), github.Ignored)
    assert isinstance(push(ref="refs/tags/v1", after=sha), github.Ignored)
    assert isinstance(push(ref="refs/heads/main", after="0" * 40, deleted=True), github.Ignored)
    from datum_dot.errors import BadInputError

    for bad in (b"not json", b"[]", json.dumps({"ref": "refs/heads/main"}).encode()):
        with pytest.raises(BadInputError):
            github.read_push(bad, envs)
    assert github.delivery_key("72d3162e-cc78-11e3-81ab-4c9367dc0958") is not None
    assert github.delivery_key("../../etc") is None


def test_unit_text_runs_the_server_with_its_options(tmp_path: Path) -> None:
    text = unit_text(["--port", "8080", "--warm"], home=tmp_path / "da tum", grace=30)
    assert "ExecStart=" in text
    assert "webhook serve --port 8080 --warm" in text
    assert f'Environment="DATUM_HOME={tmp_path}/da tum"' in text
    assert "TimeoutStopSec=60" in text
    assert "KillMode=mixed" in text
    assert unit_path({"HOME": "/home/u"}) == Path(
        "/home/u/.config/systemd/user/datum-webhook.service"
    )
    assert unit_path({"XDG_CONFIG_HOME": "/x"}) == Path("/x/systemd/user/datum-webhook.service")
