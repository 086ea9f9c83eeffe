"""Exported schedules in tests: schedules registered without cron, the validators, the files read back."""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml

from datum_dot.home.userconfig import ProjectEntry, UserConfig, update_user_config
from datum_dot.scheduling.schedules import Located, Overlap, Schedule
from tests.helpers.ci import skip_or_fail
from tests.helpers.example import BIN, ExampleProject

PROJECT = "shop"
CREATED = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)


def schedule(name: str = "nightly", cron: str = "0 6 * * *", **fields: Any) -> Schedule:
    """A schedule as config.yaml keeps it, with a fixed creation time."""
    values: dict[str, Any] = {"spec": "prod@main", "overlap": Overlap.SKIP, **fields}
    return Schedule(name=name, cron=cron, created_at=CREATED, **values)


def located(example: ExampleProject, item: Schedule) -> Located:
    """The schedule as a project of the example's registers it."""
    entry = ProjectEntry(
        path=example.path, profiles_dir=example.path, target="dev", created_at=CREATED
    )
    return Located(PROJECT, entry, item)


def register(home: Path, example: ExampleProject, schedules: list[Schedule]) -> None:
    """Register the example as project `shop` with these schedules: no crontab is touched."""
    dumped = [s.model_dump(mode="json", exclude_none=True) for s in schedules]
    entry = ProjectEntry(
        path=example.path,
        profiles_dir=example.path,
        target="dev",
        created_at=CREATED,
        schedules=dumped,
    )

    def change(config: UserConfig) -> UserConfig:
        return config.model_copy(update={"projects": {**config.projects, PROJECT: entry}})

    update_user_config(home, change)


def program(name: str) -> str:
    """A validator's path (the virtualenv's, else PATH's); skipped off CI, failed in CI."""
    path = f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"
    found = shutil.which(name, path=path)
    if found is None:
        skip_or_fail(f"{name} is not installed (pip install -e '.[test]' / apt-get install)")
    return found


def validate(argv: list[str]) -> subprocess.CompletedProcess[str]:
    """Run a validator; its output is in the result for the assertion message."""
    return subprocess.run(argv, capture_output=True, text=True, timeout=120, check=False)


def cronjob(text: str) -> dict[str, Any]:
    """The one CronJob of an exported file."""
    documents = [d for d in yaml.safe_load_all(text) if d]
    assert len(documents) == 1, text
    document: dict[str, Any] = documents[0]
    assert document["kind"] == "CronJob"
    return document


def pod(document: dict[str, Any]) -> dict[str, Any]:
    """The pod spec of a CronJob."""
    spec: dict[str, Any] = document["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    return spec


def unit_settings(text: str) -> dict[str, list[str]]:
    """`Key=value` lines of a unit file, by key (values as systemd keeps them, `%%` and all)."""
    found: dict[str, list[str]] = {}
    for line in text.splitlines():
        match = re.fullmatch(r"([A-Za-z]+)=(.*)", line)
        if match:
            found.setdefault(match[1], []).append(match[2])
    return found


def unit_environment(text: str) -> dict[str, str]:
    """What systemd sets from `Environment=` lines: shell-like quotes undone, `%%` as `%`."""
    env: dict[str, str] = {}
    for value in unit_settings(text).get("Environment", []):
        for word in shlex.split(value):
            name, _, rest = word.partition("=")
            env[name] = rest.replace("%%", "%")
    return env
