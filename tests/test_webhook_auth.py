"""Authentication and the guard in front of the routes (narrow tests with FastAPI's TestClient)."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from datum_dot.history import RunStore
from datum_dot.home.tokens import ensure_webhook_token, rotate_webhook_token
from datum_dot.webhook import auth, github
from datum_dot.webhook.app import AppContext, create_app
from datum_dot.webhook.intake import Intake, check_command
from datum_dot.webhook.queue import JobQueue
from datum_dot.webhook.unit import unit_path, unit_text

SECRET = "s3cret-token"  # noqa: S105 - a test value


def make_client(
    home: Path,
    *,
    now: float | None = None,
    base_url: str = "http://testserver",
    allow_open: bool = False,
    peer: str = "127.0.0.1",
) -> TestClient:
    ctx = AppContext(
        home=home,
        queue=JobQueue(home),
        intake=Intake(home),
        store=RunStore(home),
        tokens=auth.TokenSource(home, allow_open=allow_open),
        max_body=1024,
        clock=(lambda: now) if now is not None else time.time,
    )
    return TestClient(create_app(ctx), base_url=base_url, client=(peer, 50000))


def test_auth_bearer_matches_only_the_token() -> None:
    assert auth.bearer_matches(f"Bearer {SECRET}", SECRET)
    assert auth.bearer_matches(f"bearer  {SECRET} ", SECRET)
    assert not auth.bearer_matches(f"Bearer {SECRET}x", SECRET)
    assert not auth.bearer_matches(f"Basic {SECRET}", SECRET)
    assert not auth.bearer_matches(None, SECRET)
    assert not auth.bearer_matches("Bearer ünïcode", SECRET)


def test_auth_signature_round_trip_and_freshness() -> None:
    body = b'{"spec": "prod"}'
    header = auth.signature_header(SECRET, 1000, "POST", "/v1/projects/p/runs", body)
    parsed = auth.parse_signature(header)
    assert parsed is not None
    assert parsed.timestamp == 1000
    request = {"method": "POST", "target": b"/v1/projects/p/runs", "body": body}
    assert auth.verify_signature(parsed, SECRET, **request, now=1100) == parsed.digests[0]
    assert (
        auth.verify_signature(parsed, SECRET, **{**request, "body": body + b" "}, now=1100) is None
    )
    assert auth.verify_signature(parsed, "other", **request, now=1100) is None
    assert auth.verify_signature(parsed, SECRET, **request, now=1000 + 301) is None  # too old
    assert auth.verify_signature(parsed, SECRET, **request, now=1000 - 301) is None  # future
    digest = auth.sign(SECRET, 1000, "POST", "/v1/projects/p/runs", body)
    rotated = auth.parse_signature(f"t=1000,v1={'0' * 64},v1={digest}")
    assert rotated is not None
    assert auth.verify_signature(rotated, SECRET, **request, now=1000)
    for bad in (None, "", "t=abc,v1=00", "v1=" + "0" * 64, "t=1000", "t=1000,v1=xyz"):
        assert auth.parse_signature(bad) is None


def test_auth_signature_covers_method_path_and_query() -> None:
    body = b""
    parsed = auth.parse_signature(auth.signature_header(SECRET, 1000, "GET", "/v1/runs", body))
    assert parsed is not None
    assert auth.verify_signature(
        parsed, SECRET, method="GET", target=b"/v1/runs", body=body, now=1000
    )
    for method, target in (
        ("POST", b"/v1/runs"),
        ("POST", b"/trigger/p/k"),
        ("GET", b"/v1/runs?status=failed"),
        ("GET", b"/v1/runs/x"),
    ):
        assert (
            auth.verify_signature(parsed, SECRET, method=method, target=target, body=body, now=1000)
            is None
        ), (method, target)
    expected = b"1000.GET./v1/runs?limit=5.{}"
    manual = hmac.new(SECRET.encode(), expected, hashlib.sha256).hexdigest()
    assert auth.sign(SECRET, 1000, "get", "/v1/runs?limit=5", b"{}") == manual


def test_auth_body_only_signature_is_recognised_and_never_verifies() -> None:
    body = b'{"spec": "prod"}'
    old = hmac.new(SECRET.encode(), b"1000." + body, hashlib.sha256).hexdigest()
    parsed = auth.parse_signature(f"t=1000,v1={old}")
    assert parsed is not None
    assert auth.is_body_only_signature(parsed, SECRET, body)
    for method, target in (("POST", b"/v1/projects/p/runs"), ("GET", b"/v1/runs")):
        assert (
            auth.verify_signature(parsed, SECRET, method=method, target=target, body=body, now=1000)
            is None
        )
    new = auth.parse_signature(auth.signature_header(SECRET, 1000, "POST", "/x", body))
    assert new is not None
    assert not auth.is_body_only_signature(new, SECRET, body)


def test_auth_github_signature() -> None:
    body = b'{"ref": "refs/heads/main"}'
    good = "sha256=" + __import__("hmac").new(b"gh", body, "sha256").hexdigest()
    assert auth.github_signature_matches(good, body, "gh")
    assert not auth.github_signature_matches(good, body + b"x", "gh")
    assert not auth.github_signature_matches(good.replace("sha256=", "sha1="), body, "gh")
    assert not auth.github_signature_matches(None, body, "gh")


def test_auth_token_source_sees_a_rotation(tmp_path: Path) -> None:
    source = auth.TokenSource(tmp_path, allow_open=True)
    assert source.is_open
    assert source.current() is None
    first = ensure_webhook_token(tmp_path)
    assert source.current() == first
    assert not source.is_open
    second = rotate_webhook_token(tmp_path)
    assert source.current() == second != first


def test_auth_token_source_never_opens_again_once_it_saw_a_token(tmp_path: Path) -> None:
    source = auth.TokenSource(tmp_path, allow_open=True)
    token = ensure_webhook_token(tmp_path)
    assert source.current() == token
    auth.token_path(tmp_path).unlink()
    with pytest.raises(auth.TokenUnavailableError, match="is missing"):
        source.current()
    assert not source.is_open


def test_auth_token_source_opens_only_when_allowed_and_the_file_is_missing(tmp_path: Path) -> None:
    with pytest.raises(auth.TokenUnavailableError, match="is missing"):
        auth.TokenSource(tmp_path).current()
    auth.token_path(tmp_path).write_text("\n")
    empty = auth.TokenSource(tmp_path, allow_open=True)
    assert not empty.is_open
    with pytest.raises(auth.TokenUnavailableError, match="is empty"):
        empty.current()


@pytest.mark.parametrize(
    ("spoil", "problem"),
    [
        (lambda path: path.unlink(), "is missing"),
        (lambda path: path.write_text(""), "is empty"),
        (lambda path: path.write_text("  \n"), "is empty"),
        (lambda path: path.write_bytes(b"\xff\xfe"), "not UTF-8"),
        (lambda path: (path.unlink(), path.mkdir()), "is unreadable"),
    ],
    ids=["missing", "empty", "blank", "not-utf8", "directory"],
)
def test_auth_token_source_fails_closed_when_the_file_goes_bad(
    tmp_path: Path, spoil: Callable[[Path], object], problem: str
) -> None:
    token = ensure_webhook_token(tmp_path)
    source = auth.TokenSource(tmp_path, allow_open=True)
    assert source.current() == token
    spoil(auth.token_path(tmp_path))
    with pytest.raises(auth.TokenUnavailableError, match=problem) as raised:
        source.current()
    assert "dot webhook token --rotate" in raised.value.hint
    assert not source.is_open


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
    path = "/v1/projects/nope/runs"

    def signed(secret: str, t: int) -> dict[str, str]:
        header = auth.signature_header(secret, t, "POST", path, body)
        return {"X-Datum-Signature": header, "Content-Type": "application/json"}

    good = signed(token, int(now))
    first = client.post(path, content=body, headers=good)
    assert first.status_code == 404  # authenticated, then the project is unknown
    assert client.post(path, content=body, headers=good).status_code == 401  # a replay
    assert client.post(path, content=body, headers=signed(token, int(now) - 600)).status_code == 401
    assert client.post(path, content=body, headers=signed("x", int(now) + 1)).status_code == 401


def test_guard_refuses_a_signature_made_for_another_route(tmp_path: Path) -> None:
    token = ensure_webhook_token(tmp_path)
    now = time.time()
    client = make_client(tmp_path, now=now)
    header = {"X-Datum-Signature": auth.signature_header(token, int(now), "GET", "/v1/runs", b"")}
    for method, url in (
        ("POST", "/trigger/p/k"),
        ("POST", "/v1/runs"),
        ("GET", "/v1/runs?status=failed"),
        ("GET", "/openapi.json"),
    ):
        response = client.request(method, url, headers=header)
        assert response.status_code == 401, (method, url)
        assert "<METHOD>.<path?query>" in response.json()["detail"]
    assert client.get("/v1/runs", headers=header).status_code == 200


def test_guard_refuses_the_body_only_signature_saying_why(tmp_path: Path) -> None:
    token = ensure_webhook_token(tmp_path)
    now = int(time.time())
    client = make_client(tmp_path, now=now)
    body = b""
    old = hmac.new(token.encode(), f"{now}.".encode() + body, hashlib.sha256).hexdigest()
    response = client.get("/v1/runs", headers={"X-Datum-Signature": f"t={now},v1={old}"})
    assert response.status_code == 401
    detail = response.json()["detail"]
    assert "must cover the method and path" in detail
    assert "<t>.<METHOD>.<path?query>.<body>" in detail
    assert token not in response.text


def test_guard_answers_503_never_open_when_the_token_file_goes(tmp_path: Path) -> None:
    token = ensure_webhook_token(tmp_path)
    now = int(time.time())
    client = make_client(tmp_path, now=now, base_url="http://localhost", allow_open=True)
    assert client.get("/v1/runs").status_code == 401
    auth.token_path(tmp_path).unlink()
    signed = {"X-Datum-Signature": auth.signature_header(token, now, "GET", "/v1/runs", b"")}
    for headers in ({}, {"Authorization": f"Bearer {token}"}, signed):
        response = client.get("/v1/runs", headers=headers)
        assert response.status_code == 503, headers
        assert "webhook token file" in response.json()["detail"]
        assert "is missing" in response.json()["detail"]
        assert response.json()["hint"] == "create a new token with `dot webhook token --rotate`"
        assert token not in response.text
    assert client.post("/trigger/p/k").status_code == 503
    # The GitHub route keeps checking GitHub's own signature (none is configured here).
    assert client.post("/v1/projects/p/github", content=b"{}").status_code == 401
    assert client.get("/healthz").status_code == 200


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
    assert make_client(tmp_path, allow_open=True).get("/v1/runs").status_code == 401
    local = make_client(tmp_path, base_url="http://127.0.0.1:8080", allow_open=True)
    assert local.get("/v1/runs").status_code == 200
    named = make_client(tmp_path, base_url="http://localhost", allow_open=True)
    assert named.get("/v1/runs").status_code == 200
    mapped = make_client(
        tmp_path, base_url="http://localhost", allow_open=True, peer="::ffff:127.0.0.1"
    )
    assert mapped.get("/v1/runs").status_code == 200


@pytest.mark.parametrize("peer", ["203.0.113.5", "::ffff:203.0.113.5", "2001:db8::1", "testclient"])
def test_guard_without_a_token_refuses_a_peer_that_is_not_loopback(
    tmp_path: Path, peer: str
) -> None:
    client = make_client(tmp_path, base_url="http://localhost", allow_open=True, peer=peer)
    response = client.get("/v1/runs", headers={"Host": "localhost"})
    assert response.status_code == 401
    assert "only requests from this machine" in response.json()["detail"]
    assert client.post("/trigger/p/k", headers={"Host": "localhost"}).status_code == 401


def test_guard_without_a_token_is_not_open_unless_allowed(tmp_path: Path) -> None:
    client = make_client(tmp_path, base_url="http://localhost")
    response = client.get("/v1/runs")
    assert response.status_code == 503
    assert "is missing" in response.json()["detail"]


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
    delivery = "72d3162e-cc78-11e3-81ab-4c9367dc0958"
    assert github.delivery_key(delivery) == f"github-{delivery}"
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
