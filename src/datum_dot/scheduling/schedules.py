"""Schedules as `$DATUM_HOME/config.yaml` keeps them: under their project, one entry each.

A schedule says what to build and how (`spec`, `command`, `dbt_args`, `fetch`, `overlap`,
`timeout`, a `pinned_commit`); the crontab line only says when and names the schedule, so
`dot schedule run` reads everything else from here and a change of anything but the time never
touches the crontab. Every change is a read-modify-write of the config under its lock.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from datum_dot.errors import ScheduleError
from datum_dot.home.userconfig import ProjectEntry, UserConfig, load_user_config, update_user_config

NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,62}")
# The datum CLI's single schedule, as `userconfig` migrates it: `cron_expression`, `last_run_at`.
_LEGACY_KEYS = {"cron_expression": "cron"}
_DROPPED_KEYS = ("last_run_at",)


class Overlap(StrEnum):
    """What a firing does while the previous run of the same schedule is still running."""

    SKIP = "skip"
    QUEUE = "queue"


class Schedule(BaseModel):
    """One schedule of a project.

    Attributes:
        name: Unique within the project; the crontab marker and the history name it.
        cron: When it fires (`0 6 * * *`, `@hourly`), in the machine's local time.
        spec: `[env][@ref]` as given (`prod@main`).
        command: The dbt command words (`["build"]`).
        dbt_args: Arguments passed to dbt untouched.
        pinned_commit: With `--pin`: the full hash every firing builds, instead of the ref.
        pinned_ref: The ref `pinned_commit` was resolved from.
        pinned_at: When it was pinned (UTC).
        fetch: Run `git fetch` before resolving the ref.
        fetch_optional: A failed fetch is a warning, not the run's failure.
        overlap: `skip` (record SKIPPED) or `queue` (wait) while the previous run still runs.
        timeout: Seconds before dbt is stopped (and the longest `queue` wait); None: no limit.
        enabled: False while paused (the crontab line is removed).
        created_at: When it was added (UTC).
        defer: `--defer`: `env` (the live environment) or `env@ref` (a build), or None.
        state_source: Where a live `defer` reads its state: `history` or `cloud`.
        state_from: `--state-from env@ref`: a commit parsed and compared against, or None.
        max_state_age: `--max-state-age` in seconds, or None.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    cron: str = Field(min_length=1)
    spec: str = ""
    command: tuple[str, ...] = ("build",)
    dbt_args: tuple[str, ...] = ()
    pinned_commit: str | None = Field(default=None, pattern=r"^[0-9a-f]{40}$")
    pinned_ref: str | None = None
    pinned_at: datetime | None = None
    fetch: bool = False
    fetch_optional: bool = False
    overlap: Overlap = Overlap.SKIP
    timeout: float | None = Field(default=None, gt=0)
    enabled: bool = True
    created_at: datetime
    defer: str | None = None
    state_source: Literal["history", "cloud"] = "history"
    state_from: str | None = None
    max_state_age: float | None = Field(default=None, gt=0)

    @field_validator("name")
    @classmethod
    def _name_is_a_word(cls, value: str) -> str:
        return check_name(value)


@dataclass(frozen=True)
class Located:
    """A schedule and the registered project it belongs to.

    Attributes:
        project_id: The project's id in config.yaml.
        project: The project's registration.
        schedule: The schedule.
    """

    project_id: str
    project: ProjectEntry
    schedule: Schedule


def check_name(name: str) -> str:
    """A schedule name: letters, digits, `_`, `.` and `-`, starting with a letter or digit.

    Raises:
        ScheduleError: It is not.
    """
    if not NAME.fullmatch(name):
        raise ScheduleError(
            f"schedule name '{name}' must be letters, digits, '_', '.' and '-' (up to 63), "
            "starting with a letter or digit",
            "for example: dot schedule add nightly --cron '0 2 * * *' prod@main",
        )
    return name


def name_for_spec(spec: str) -> str:
    """The name `dot schedule --cron ... SPEC` gives a schedule: `prod@v1.2` -> `prod-v1.2`."""
    slug = re.sub(r"[^A-Za-z0-9_.-]+", "-", spec).strip("-_.")
    return slug[:63].rstrip("-_.") or "default"


def project_schedules(project_id: str, entry: ProjectEntry) -> list[Schedule]:
    """The project's schedules, checked.

    Raises:
        ScheduleError: An entry in config.yaml is not a valid schedule (the message names it).
    """
    return [_parse(project_id, index, raw) for index, raw in enumerate(entry.schedules)]


def all_schedules(home: Path, project_id: str | None = None) -> list[Located]:
    """Every schedule of every registered project (or of one), by project id then name.

    Raises:
        ConfigError: config.yaml is unreadable or invalid.
        ScheduleError: `project_id` is not registered, or an entry is not a valid schedule.
    """
    config = load_user_config(home)
    if project_id is not None and project_id not in config.projects:
        raise unknown_project(project_id, config)
    found: list[Located] = []
    for pid in sorted(config.projects):
        if project_id is not None and pid != project_id:
            continue
        entry = config.projects[pid]
        found.extend(Located(pid, entry, s) for s in project_schedules(pid, entry))
    return found


def find_schedule(home: Path, name: str, project_id: str | None) -> Located:
    """The schedule called `name`: of `project_id`, or of the one project that has it.

    Raises:
        ScheduleError: No such schedule, or several projects have one of that name.
    """
    found = [s for s in all_schedules(home, project_id) if s.schedule.name == name]
    if len(found) == 1:
        return found[0]
    if found:
        ids = ", ".join(s.project_id for s in found)
        raise ScheduleError(
            f"several projects have a schedule '{name}': {ids}",
            f"name the project: dot schedule ... {name} --project {found[0].project_id}",
        )
    known = [s.schedule.name for s in all_schedules(home, project_id)]
    where = f" in project '{project_id}'" if project_id else ""
    listing = f"; schedules: {', '.join(known)}" if known else "; there are no schedules"
    raise ScheduleError(
        f"no schedule named '{name}'{where}{listing}",
        "run `dot schedule list` to see every schedule",
    )


def update_project_schedules(
    home: Path, project_id: str, change: Callable[[list[Schedule]], list[Schedule]]
) -> list[Schedule]:
    """Replace the project's schedules with `change(current)`, under the config lock.

    Returns:
        The schedules now saved.

    Raises:
        ScheduleError: The project is not registered, or `change` refused.
        ConfigError: config.yaml is invalid (it is left as it is).
    """
    saved: list[Schedule] = []

    def apply(config: UserConfig) -> UserConfig:
        nonlocal saved
        entry = config.projects.get(project_id)
        if entry is None:
            raise unknown_project(project_id, config)
        saved = change(project_schedules(project_id, entry))
        dumped = [_dump(s) for s in saved]
        if dumped == entry.schedules:
            return config
        updated = entry.model_copy(update={"schedules": dumped})
        return config.model_copy(update={"projects": {**config.projects, project_id: updated}})

    update_user_config(home, apply)
    return saved


def by_name(schedules: list[Schedule]) -> Iterator[tuple[str, Schedule]]:
    """(name, schedule) pairs, for lookups."""
    return ((s.name, s) for s in schedules)


def unknown_project(project_id: str, config: UserConfig) -> ScheduleError:
    """The error for a project id config.yaml does not register."""
    known = ", ".join(sorted(config.projects)) or "none"
    return ScheduleError(
        f"no registered project '{project_id}' (registered: {known})",
        "run `dot init` in the project's folder to register it, or pass --project <id>",
    )


def _parse(project_id: str, index: int, raw: Mapping[str, Any]) -> Schedule:
    data = {_LEGACY_KEYS.get(str(k), str(k)): v for k, v in raw.items()}
    for key in _DROPPED_KEYS:
        data.pop(key, None)
    try:
        return Schedule.model_validate(data)
    except (ValidationError, ScheduleError) as e:
        name = data.get("name") or f"#{index + 1}"
        detail = e.errors()[0] if isinstance(e, ValidationError) else None
        why = (
            f"{'.'.join(str(p) for p in detail['loc'])}: {detail['msg']}"
            if detail
            else str(e.message if isinstance(e, ScheduleError) else e)
        )
        raise ScheduleError(
            f"schedule '{name}' of project '{project_id}' in config.yaml is invalid: {why}",
            "fix it in $DATUM_HOME/config.yaml, or remove it: dot schedule remove "
            f"{name} --project {project_id}",
        ) from e


def _dump(schedule: Schedule) -> dict[str, Any]:
    data = schedule.model_dump(mode="json")
    # Unpinned schedules keep the pin fields out of the file: fewer lines to read.
    for key in ("pinned_commit", "pinned_ref", "pinned_at"):
        if data[key] is None:
            del data[key]
    # So do schedules without deferred or compared state.
    for key, default in (("defer", None), ("state_source", "history"), ("state_from", None),
                         ("max_state_age", None)):  # fmt: skip
        if data[key] == default:
            del data[key]
    return data
