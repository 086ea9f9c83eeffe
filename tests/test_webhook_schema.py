"""Schemathesis against the served /openapi.json, authenticated: no input makes the server fail."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.helpers.example import BIN, ExampleProject
from tests.helpers.webhook import environ, start_server, use_fake_dbt, write_fake_dbt

pytestmark = pytest.mark.slow


def test_webhook_schemathesis_finds_no_server_error(
    example: ExampleProject, tmp_path: Path
) -> None:
    use_fake_dbt(example.path, write_fake_dbt(tmp_path))
    env = environ(FAKE_DBT_CALLS=str(tmp_path / "calls.log"))
    assert example.dot("init", env=env).returncode == 0
    config = tmp_path / "schemathesis.toml"
    # Let generated requests reach a real project, not only the 404 of unknown ones.
    config.write_text(
        '[parameters]\n"path.project" = "jaffle_dot"\n"path.project_id" = "jaffle_dot"\n'
    )
    server = start_server(example.path, "--max-queue", "100000", env=env)
    try:
        result = subprocess.run(
            [
                str(BIN / "schemathesis"),
                "--config-file", str(config),
                "run", f"{server.url}/openapi.json",
                "--header", f"Authorization: Bearer {server.token}",
                "--checks", "not_a_server_error",
                "--max-examples", "15",
                "--workers", "1",
                "--request-timeout", "30",
                "--seed", "20240501",
            ],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )  # fmt: skip
    finally:
        assert server.stop() == 0, server.log()
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]
    assert "passed" in result.stdout
    assert "Traceback" not in server.log()
    assert "Exception in ASGI application" not in server.log()
