"""`dot schedule export`: schedules of config.yaml rendered for another scheduler, and written.

Every schedule is rendered before anything is written, so a schedule that cannot be translated
(exit 20) leaves no file behind, and files are written atomically, so a reader never sees half
of one. The same schedules and options always give byte-identical files.
"""

from __future__ import annotations

import os
import tempfile
from enum import StrEnum
from pathlib import Path

from datum_dot.errors import ScheduleError
from datum_dot.scheduling.export.airflow import AirflowOptions, render_dag
from datum_dot.scheduling.export.artifact import ExportedFile, Rendering
from datum_dot.scheduling.export.dagster import DagsterOptions, render_definitions
from datum_dot.scheduling.export.github import GithubOptions, render_workflow
from datum_dot.scheduling.export.kubernetes import KubernetesOptions, render_cronjob
from datum_dot.scheduling.export.source import export_source
from datum_dot.scheduling.export.systemd import SystemdOptions, render_units
from datum_dot.scheduling.schedules import Located, all_schedules, find_schedule

Options = KubernetesOptions | SystemdOptions | GithubOptions | AirflowOptions | DagsterOptions


class Target(StrEnum):
    """The schedulers a schedule is exported to."""

    KUBERNETES = "kubernetes"
    SYSTEMD = "systemd"
    GITHUB_ACTIONS = "github-actions"
    DAGSTER = "dagster"
    AIRFLOW = "airflow"


def select_schedules(home: Path, *, name: str | None, project_id: str | None) -> list[Located]:
    """The schedule called `name`, or every schedule (of `project_id`) when `name` is None.

    Raises:
        ScheduleError: No such schedule, or no schedule at all.
    """
    if name is not None:
        return [find_schedule(home, name, project_id)]
    found = all_schedules(home, project_id)
    if not found:
        where = f" in project '{project_id}'" if project_id else ""
        raise ScheduleError(
            f"there are no schedules{where} to export",
            "add one first: dot schedule add nightly --cron '0 2 * * *' prod@main",
        )
    return found


def render(located: Located, options: Options, *, zone: str | None) -> Rendering:
    """One schedule rendered for the scheduler `options` is for.

    Raises:
        ScheduleError: It cannot be rendered exactly; the message names the schedule.
    """
    try:
        source = export_source(located, zone=zone)
        if isinstance(options, KubernetesOptions):
            return render_cronjob(source, options)
        if isinstance(options, SystemdOptions):
            return render_units(source, options)
        if isinstance(options, AirflowOptions):
            return render_dag(source, options)
        if isinstance(options, DagsterOptions):
            return render_definitions(source, options)
        return render_workflow(source, options)
    except ScheduleError as e:
        raise ScheduleError(f"schedule '{located.schedule.name}': {e.message}", e.hint) from e


def write_files(files: list[ExportedFile], folder: Path) -> list[Path]:
    """Write each file into `folder` (created), atomically; returns the paths written.

    Raises:
        ScheduleError: The folder cannot be created or written.
    """
    written: list[Path] = []
    try:
        folder.mkdir(parents=True, exist_ok=True)
        for file in files:
            path = folder / file.name
            fd, temp = tempfile.mkstemp(dir=folder, prefix=f".{file.name}.")
            try:
                with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as out:
                    out.write(file.text)
                Path(temp).chmod(0o644)
                Path(temp).replace(path)
            except BaseException:
                Path(temp).unlink(missing_ok=True)
                raise
            written.append(path)
    except OSError as e:
        raise ScheduleError(
            f"cannot write the exported files into {folder}: {e.strerror or e}",
            "choose a folder you can write: -o <folder>, or print them: -o -",
        ) from e
    return written
