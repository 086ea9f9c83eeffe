"""A schedule as a Dagster definitions file: `dot_schedule(...)` with the schedule's settings.

The file calls `datum_dot.dagster.dot_schedule` (a one-op job and a Dagster schedule) with the
same cron expression and time zone, the spec a firing builds (a pinned schedule's ref replaced by
the full commit hash; a schedule that follows a branch keeps it, on purpose), the same overlap
policy, timeout and paused state; the run goes through the Python API on Dagster's side (trigger
`dagster`), into the same history as the schedule's other runs. Literals are JSON strings and
numbers, which Python reads as written: the same schedule gives the same bytes.
"""

from __future__ import annotations

import json
import textwrap
from dataclasses import dataclass

from datum_dot.errors import ScheduleError
from datum_dot.scheduling.export.artifact import ExportedFile, Rendering, describe
from datum_dot.scheduling.export.source import ExportSource
from datum_dot.scheduling.fire import spec_to_build
from datum_dot.scheduling.schedules import Overlap, Schedule

INSTALL = "datum-dot[dagster]"
SCHEDULE_TAG = "datum_dot/schedule"


@dataclass(frozen=True)
class DagsterOptions:
    """How the definitions are written (nothing to choose yet: the project is the registered one)."""


def render_definitions(source: ExportSource, options: DagsterOptions) -> Rendering:
    """`datum_dot_<project>_<schedule>_defs.py`, a definitions file for a Dagster code location.

    Raises:
        ScheduleError: The schedule uses a setting the API's runs cannot carry.
    """
    schedule = source.located.schedule
    _refuse_unsupported(schedule)
    name = "datum_dot_" + source.slug.replace("-", "_") + "_defs"
    call = [
        ("cron", _literal(schedule.cron)),
        ("timezone", _literal(source.zone)),
        ("spec", _literal(str(spec_to_build(schedule)))),
        ("command", _literal(list(schedule.command))),
    ]
    if schedule.dbt_args:
        call.append(("args", _literal(list(schedule.dbt_args))))
    if schedule.defer is not None:
        call.append(("defer", _literal(schedule.defer)))
    if schedule.timeout is not None:
        call.append(("timeout", _literal(schedule.timeout)))
    call += [("overlap", _literal(schedule.overlap.value)), ("enabled", _bool(schedule.enabled))]
    resource = [
        ("project_dir", _literal(str(source.located.project.path))),
        ("runtime", _literal(source.located.project.runtime)),
    ]
    lines = [
        *_header(source),
        "import dagster as dg",
        "",
        "from datum_dot.dagster import DatumDotResource, dot_schedule",
        "",
        "defs = dg.Definitions(",
        "    schedules=[",
        "        dot_schedule(",
        f"            {_literal(schedule.name)},",
        *(f"            {key}={value}," for key, value in call),
        "        ),",
        "    ],",
        "    resources={",
        f'        "dot": DatumDotResource({", ".join(f"{k}={v}" for k, v in resource)}),',
        "    },",
        ")",
    ]
    notes = (
        f"add {{dir}}/{name}.py to a Dagster code location (dagster dev -f {name}.py); its "
        f"workers need pip install '{INSTALL}' with the project's adapter",
        f"the job builds the project at {source.located.project.path} where Dagster runs it: "
        "the repository must be there",
        f"dagster.yaml: run_queue.tag_concurrency_limits [{{key: {SCHEDULE_TAG}, "
        f"value: {schedule.name}, limit: 1}}] keeps two runs of it from running at once",
    )
    return Rendering((ExportedFile(f"{name}.py", "\n".join(lines) + "\n"),), notes)


def _refuse_unsupported(schedule: Schedule) -> None:
    hint = "export a schedule without it, or run this one with cron: dot schedule list"
    if schedule.state_from is not None:
        raise ScheduleError("--state-from cannot be exported to Dagster: the API has no such option", hint)  # fmt: skip
    if schedule.max_state_age is not None:
        raise ScheduleError("--max-state-age cannot be exported to Dagster: the API has no such option", hint)  # fmt: skip
    if schedule.defer is not None and schedule.state_source == "cloud":
        raise ScheduleError("a --defer to dbt Cloud state cannot be exported to Dagster", hint)
    if schedule.fetch and schedule.pinned_commit is None:
        raise ScheduleError(
            "--fetch cannot be exported to Dagster: the job builds the clone where Dagster runs "
            "it, as it is",
            f"pin the schedule to a commit first: dot schedule pin {schedule.name} <ref>",
        )


def _header(source: ExportSource) -> list[str]:
    schedule = source.located.schedule
    comment = [
        f"{describe(source)}, as Dagster definitions: one job builds what "
        f"`dot schedule run {schedule.name}` builds.",
        f"Written by `dot schedule export {schedule.name} --to dagster`: export again after "
        "changing the schedule.",
        f"cron '{schedule.cron}' in {source.zone}.",
    ]
    if schedule.pinned_commit is not None:
        comment.append(
            f"Pinned (from {schedule.pinned_ref or 'a ref'}): the clone Dagster runs in must have "
            "the commit."
        )
    elif "@" in schedule.spec:
        comment.append("Not pinned: each run builds where the ref points in Dagster's clone.")
    if schedule.overlap is Overlap.SKIP:
        comment.append(
            "overlap skip: a firing while a run of the job is queued or running is skipped "
            f"(the reason is in the tick log); runs carry the tag {SCHEDULE_TAG}={schedule.name}."
        )
    else:
        comment.append(
            f"overlap queue: runs carry the tag {SCHEDULE_TAG}={schedule.name}; a run-queue limit "
            "of 1 on it (dagster.yaml) holds the next run until the running one ends."
        )
    if not schedule.enabled:
        comment.append("The schedule is paused: it starts stopped in Dagster.")
    wrapped = [part for line in comment for part in textwrap.wrap(line, width=97)]
    return [f"# {line}" for line in wrapped] + [""]


def _literal(value: str | float | list[str]) -> str:
    # JSON strings, numbers and lists of strings are Python literals as written
    return json.dumps(value, ensure_ascii=True)


def _bool(value: bool) -> str:
    return "True" if value else "False"
