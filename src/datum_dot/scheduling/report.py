"""What `dot schedule list` and `dot schedule status` show: each schedule, its next and last run.

`status` adds the crontab: where it is, our exact lines, and what is wrong with them (a line
missing for an active schedule, a line left for a paused or deleted one, a line whose timing
differs from config.yaml, a program that no longer exists).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from datum_dot.errors import DotError
from datum_dot.history import RunStore, StoredRun
from datum_dot.runs.planner import project_name
from datum_dot.scheduling.cronexpr import CronExpression, zone_name
from datum_dot.scheduling.cronlines import CronLine
from datum_dot.scheduling.crontab import open_crontab
from datum_dot.scheduling.schedules import Located, all_schedules

PIN_COMMAND = ("schedule", "pin")
ACTIVE = "ACTIVE"
PAUSED = "PAUSED"


@dataclass(frozen=True)
class ScheduleView:
    """One schedule as shown.

    Attributes:
        located: The schedule and its project.
        next_run: When it fires next (local time), None while paused.
        last_run: Its newest run in the history.
        lines: Its crontab lines (`status` only).
        problems: What is wrong with its lines (`status` only).
    """

    located: Located
    next_run: datetime | None
    last_run: StoredRun | None
    lines: tuple[CronLine, ...] = ()
    problems: tuple[str, ...] = ()

    @property
    def state(self) -> str:
        """ACTIVE or PAUSED."""
        return ACTIVE if self.located.schedule.enabled else PAUSED

    def to_json(self) -> dict[str, Any]:
        """The view as JSON-ready data."""
        s = self.located.schedule
        last = self.last_run
        return {
            "project": self.located.project_id,
            "project_dir": str(self.located.project.path),
            **s.model_dump(mode="json"),
            "state": self.state,
            "next_run": self.next_run.isoformat() if self.next_run else None,
            "time_zone": zone_name(self.next_run) if self.next_run else None,
            "last_run": None
            if last is None
            else {
                "run_id": last.run_id,
                "status": last.status.value,
                "started_at": last.started_at.isoformat(),
                "trigger": last.start.trigger,
                "commit": last.start.commit,
            },
            "crontab_lines": [ln.text for ln in self.lines],
            "problems": list(self.problems),
        }


@dataclass(frozen=True)
class Report:
    """Every schedule shown, and for `status` the crontab's side.

    Attributes:
        views: One per schedule, by project then name.
        crontab: Where the crontab is (`status` only).
        orphans: Our lines whose schedule is not in config.yaml (`status` only).
        warnings: Problems that are not one schedule's.
    """

    views: tuple[ScheduleView, ...]
    crontab: str | None = None
    orphans: tuple[CronLine, ...] = ()
    warnings: tuple[str, ...] = field(default_factory=tuple)

    @property
    def problems(self) -> list[str]:
        """Every problem found, for the exit code."""
        found = [p for v in self.views for p in v.problems]
        found += [
            f"crontab line {ln.number} belongs to no schedule: {ln.text}" for ln in self.orphans
        ]
        return found + list(self.warnings)


def report(
    home: Path, *, project_id: str | None, environ: Mapping[str, str], crontab: bool
) -> Report:
    """Describe the schedules (of one project, or all), with the crontab when `crontab`.

    Raises:
        ConfigError: config.yaml is invalid.
        ScheduleError: `project_id` is unknown, or an entry is not a valid schedule.
    """
    located = all_schedules(home, project_id)
    store = RunStore(home)
    if not crontab:
        return Report(tuple(_view(item, store) for item in located))
    warnings: list[str] = []
    lines: list[CronLine] = []
    where = None
    try:
        tab = open_crontab(environ)
        where = tab.describe()
        lines = tab.lines(project_id)
    except DotError as e:
        warnings.append(f"{e.message} ({e.hint})" if e.hint else e.message)
    views = [_view(item, store, lines) for item in located]
    known = {(v.located.project_id, v.located.schedule.name) for v in views}
    orphans = tuple(ln for ln in lines if (ln.project, ln.schedule) not in known)
    return Report(tuple(views), where, orphans, tuple(warnings))


def _view(located: Located, store: RunStore, lines: list[CronLine] | None = None) -> ScheduleView:
    schedule = located.schedule
    next_run = CronExpression(schedule.cron).next_times(1)[0] if schedule.enabled else None
    recent = store.query(
        last=5, project=project_name(Path(located.project.path)), schedule=schedule.name
    )
    # `dot schedule pin` is recorded too, but it is not a run of the schedule.
    runs = [run for run in recent if run.start.command != PIN_COMMAND]
    if lines is None:
        return ScheduleView(located, next_run, runs[0] if runs else None)
    mine = tuple(
        ln for ln in lines if ln.project == located.project_id and ln.schedule == schedule.name
    )
    return ScheduleView(
        located, next_run, runs[0] if runs else None, mine, _problems(located, mine)
    )


def _problems(located: Located, lines: tuple[CronLine, ...]) -> tuple[str, ...]:
    schedule = located.schedule
    name = schedule.name
    found: list[str] = []
    if schedule.enabled and not lines:
        found.append(
            f"schedule '{name}' is ACTIVE but has no crontab line: it never fires "
            f"(dot schedule resume {name} --project {located.project_id} puts it back)"
        )
    if not schedule.enabled and lines:
        found.append(
            f"schedule '{name}' is PAUSED but still has a crontab line (dot schedule pause {name} "
            "takes it out)"
        )
    for line in lines:
        if line.timing != schedule.cron:
            found.append(
                f"schedule '{name}': crontab line {line.number} fires at '{line.timing}', "
                f"config.yaml says '{schedule.cron}'"
            )
        if not line.has_executable():
            found.append(
                f"schedule '{name}': crontab line {line.number} runs {line.executable}, which no "
                "longer exists (re-create the schedule with this installation of dot)"
            )
    return tuple(found)
