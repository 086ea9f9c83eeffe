"""The webhook refuses a privileged port (below 1024) unless `--allow-privileged-port` says so."""

from __future__ import annotations

from pathlib import Path

from tests.helpers.example import ExampleProject


def test_webhook_ports_below_1024_are_refused_without_the_flag(
    example: ExampleProject, tmp_path: Path
) -> None:
    refused = example.dot("webhook", "serve", "--port", "80")
    assert refused.returncode == 20
    assert "error: port 80 (--port) is below 1024: listening there needs root" in refused.stderr
    assert "hint: use a port such as 8080 (--port 8080), or pass --allow-privileged-port" in (
        refused.stderr
    )
    assert "Traceback" not in refused.stderr
    assert example.dot("config", "set", "webhook.port", "443").returncode == 0
    from_config = example.dot("webhook", "serve")
    assert from_config.returncode == 20
    assert "port 443 (webhook.port in config.yaml) is below 1024" in from_config.stderr
    unit = example.dot("webhook", "install-service", "--print")
    assert unit.returncode == 20
    assert "port 443 (webhook.port in config.yaml)" in unit.stderr


def test_webhook_ports_below_1024_with_the_flag_go_into_the_unit(
    example: ExampleProject,
) -> None:
    unit = example.dot(
        "webhook", "install-service", "--port", "443", "--allow-privileged-port", "--print"
    )
    assert unit.returncode == 0, unit.stderr
    assert "webhook serve --host 127.0.0.1 --port 443 --workers 2 --allow-privileged-port" in (
        unit.stdout
    )
    usual = example.dot("webhook", "install-service", "--port", "1024", "--print")
    assert usual.returncode == 0, usual.stderr
    assert "--allow-privileged-port" not in usual.stdout
