"""A schedule as an Airflow DAG file: one `DotOperator` task that builds what a firing builds.

The DAG fires on the schedule's cron expression in its time zone (`CronTriggerTimetable`); the
task's spec is the schedule's, with a pinned schedule's ref replaced by the full commit hash (a
schedule that follows a branch keeps the branch: it does so on purpose). Overlap: Airflow never
starts a run beside a running one with `max_active_runs=1`, and `catchup=False` keeps firings
missed meanwhile from piling up. dot's own timeout stops dbt first; `execution_timeout` adds a
grace period over it. The run goes through the Python API on the worker (trigger `airflow`),
so it is in the same history as the schedule's other runs. The text is Python source built from
`repr()`-like literals (JSON strings are Python strings): the same schedule gives the same bytes.
"""

from __future__ import annotations

import json
import math
import textwrap
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from datum_dot.errors import ScheduleError
from datum_dot.scheduling.export.artifact import TIMEOUT_GRACE, ExportedFile, Rendering, describe
from datum_dot.scheduling.export.source import ExportSource
from datum_dot.scheduling.fire import spec_to_build
from datum_dot.scheduling.schedules import Overlap, Schedule

INSTALL = "datum-dot[airflow]"


@dataclass(frozen=True)
class AirflowOptions:
    """How the DAG is written (nothing to choose yet: the project folder is the registered one)."""


def render_dag(source: ExportSource, options: AirflowOptions) -> Rendering:
    """`datum_dot_<project>_<schedule>.py`, a DAG file for Airflow's dags folder.

    Raises:
        ScheduleError: The schedule uses a setting `DotOperator` cannot carry.
    """
    schedule = source.located.schedule
    _refuse_unsupported(schedule)
    name = "datum_dot_" + source.slug.replace("-", "_")
    lines = [
        *_header(source),
        *(["from datetime import timedelta", ""] if schedule.timeout is not None else []),
        "import pendulum",
        "from airflow.sdk import DAG, CronTriggerTimetable",
        "",
        "from datum_dot.airflow import DotOperator",
        "",
        "with DAG(",
        *_arguments(_dag_arguments(source, name), indent=4),
        "):",
        "    DotOperator(",
        *_arguments(_task_arguments(source), indent=8),
        "    )",
    ]
    text = "\n".join(lines) + "\n"
    notes = (
        f"copy {{dir}}/{name}.py into Airflow's dags folder; its workers need "
        f"pip install '{INSTALL}' with the project's adapter",
        f"the task builds the project at {source.located.project.path} on the worker: the "
        "repository must be there",
    )
    return Rendering((ExportedFile(f"{name}.py", text),), notes)


def _refuse_unsupported(schedule: Schedule) -> None:
    hint = "export a schedule without it, or run this one with cron: dot schedule list"
    if schedule.state_from is not None:
        raise ScheduleError(
            "--state-from cannot be exported to Airflow: DotOperator has no such option", hint
        )
    if schedule.max_state_age is not None:
        raise ScheduleError(
            "--max-state-age cannot be exported to Airflow: DotOperator has no such option", hint
        )
    if schedule.defer is not None and schedule.state_source == "cloud":
        raise ScheduleError("a --defer to dbt Cloud state cannot be exported to Airflow", hint)
    if schedule.fetch and schedule.pinned_commit is None:
        raise ScheduleError(
            "--fetch cannot be exported to Airflow: the task builds the worker's clone as it is",
            f"pin the schedule to a commit first: dot schedule pin {schedule.name} <ref>",
        )


def _header(source: ExportSource) -> list[str]:
    schedule = source.located.schedule
    comment = [
        f"{describe(source)}, as an Airflow DAG: one DotOperator task builds what "
        f"`dot schedule run {schedule.name}` builds.",
        f"Written by `dot schedule export {schedule.name} --to airflow`: export again after "
        "changing the schedule.",
        f"cron '{schedule.cron}' in {source.zone}.",
    ]
    if schedule.pinned_commit is not None:
        comment.append(
            f"Pinned (from {schedule.pinned_ref or 'a ref'}): the worker's clone must have the "
            "commit."
        )
    elif "@" in schedule.spec:
        comment.append("Not pinned: each run builds where the ref points in the worker's clone.")
    if schedule.overlap is Overlap.SKIP:
        comment.append(
            "overlap skip: max_active_runs=1 starts no run beside a running one, and "
            "catchup=False drops the firings missed meanwhile (Airflow starts the latest once "
            "the run ends)."
        )
    else:
        comment.append(
            "overlap queue: max_active_runs=1 holds the next run until the running one ends."
        )
    if not schedule.enabled:
        comment.append("The schedule is paused: the DAG is created paused.")
    wrapped = [part for line in comment for part in textwrap.wrap(line, width=97)]
    return [f"# {line}" for line in wrapped] + [""]


def _dag_arguments(source: ExportSource, name: str) -> list[tuple[str, str]]:
    schedule = source.located.schedule
    created = schedule.created_at.astimezone(ZoneInfo(source.zone))
    return [
        ("dag_id", _literal(name)),
        ("description", _literal(describe(source))),
        (
            "schedule",
            f"CronTriggerTimetable({_literal(schedule.cron)}, timezone={_literal(source.zone)})",
        ),
        ("start_date", _start_date(created, source.zone)),
        ("catchup", "False"),
        ("max_active_runs", "1"),
        ("is_paused_upon_creation", _literal(not schedule.enabled)),
        ("tags", _literal(["datum-dot", source.located.project_id])),
    ]


def _task_arguments(source: ExportSource) -> list[tuple[str, str]]:
    schedule = source.located.schedule
    arguments = [
        ("task_id", _literal("_".join(schedule.command).replace("-", "_"))),
        ("spec", _literal(str(spec_to_build(schedule)))),
        ("command", _literal(" ".join(schedule.command))),
    ]
    if schedule.dbt_args:
        arguments.append(("args", _literal(list(schedule.dbt_args))))
    if schedule.defer is not None:
        arguments.append(("defer", _literal(schedule.defer)))
    arguments.append(("runtime", _literal(source.located.project.runtime)))
    arguments.append(("project_dir", _literal(str(source.located.project.path))))
    if schedule.timeout is not None:
        arguments.append(("timeout", _literal(float(schedule.timeout))))
        grace = math.ceil(schedule.timeout) + TIMEOUT_GRACE
        arguments.append(("execution_timeout", f"timedelta(seconds={grace})"))
    # a schedule retries nothing itself: the task does not either
    arguments.append(("retries", "0"))
    return arguments


def _start_date(created: datetime, zone: str) -> str:
    # the day the schedule was added, in its zone: stable, and never before a firing it had
    return f"pendulum.datetime({created.year}, {created.month}, {created.day}, tz={_literal(zone)})"


def _arguments(pairs: list[tuple[str, str]], *, indent: int) -> list[str]:
    pad = " " * indent
    return [f"{pad}{key}={value}," for key, value in pairs]


def _literal(value: str | bool | float | list[str]) -> str:
    # JSON strings (double quotes, ASCII escapes) are Python literals too, as formatters write them
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, list):
        return "[" + ", ".join(_literal(item) for item in value) + "]"
    if isinstance(value, float):
        return repr(value)
    return json.dumps(value, ensure_ascii=True)
