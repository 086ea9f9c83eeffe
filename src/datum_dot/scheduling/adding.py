"""`dot schedule add`: check everything, show the line, then save the schedule and install it.

Adding is two steps so the CLI can ask in between: `plan_add` checks the cron expression, the
name, the spec (the environment and the ref must resolve now; `--pin` stores the commit) and the
crontab, and renders the exact line; `apply_add` registers the project if it is not yet (as
`dot init` would), saves the schedule, rehearses the line's command with `--dry-run` in cron's
environment, and only then writes the crontab. A failed rehearsal or crontab write takes the
schedule out of config.yaml again, so neither is left half-done.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

from datum_dot.errors import DotError, ScheduleError
from datum_dot.execute import execute
from datum_dot.home import registration, userconfig
from datum_dot.home.privatefiles import PRIVATE_FILE_MODE
from datum_dot.runs import commits
from datum_dot.runs.planner import find_project_dir
from datum_dot.runs.run import RunRequest
from datum_dot.runs.spec import parse_spec
from datum_dot.scheduling import cronenv, cronlines
from datum_dot.scheduling.cronexpr import CronExpression, parse_cron
from datum_dot.scheduling.crontab import Crontab, change_crontab, open_crontab, render_line
from datum_dot.scheduling.fire import spec_to_build, state_options
from datum_dot.scheduling.schedules import (
    Overlap,
    Schedule,
    check_name,
    name_for_spec,
    update_project_schedules,
)

NEXT_TIMES = 3


@dataclass(frozen=True)
class AddRequest:
    """What `dot schedule add` was asked for.

    Attributes:
        name: The schedule's name; None: made from the spec (`prod@v1.2` -> `prod-v1.2`).
        cron: The cron expression as typed.
        spec: `[env][@ref]`.
        project_dir: Where to look for the dbt project.
        command: The dbt command words.
        dbt_args: Arguments for dbt (after `--`).
        pin: Resolve the ref now and always build that commit.
        fetch: `git fetch` before each firing resolves the ref.
        fetch_optional: A failed fetch does not fail the firing.
        overlap: What a firing does while the previous one runs.
        timeout: Seconds before dbt is stopped; also the longest `queue` wait.
        defer: `--defer` (`prod`, `prod@main`), or None.
        state_source: Where a live `defer` reads its state (`history`, `cloud`).
        state_from: `--state-from` (`prod@main`), or None.
        max_state_age: `--max-state-age` in seconds, or None.
    """

    name: str | None
    cron: str
    spec: str
    project_dir: Path
    command: tuple[str, ...] = ("build",)
    dbt_args: tuple[str, ...] = ()
    pin: bool = False
    fetch: bool = False
    fetch_optional: bool = False
    overlap: Overlap = Overlap.SKIP
    timeout: float | None = None
    defer: str | None = None
    state_source: Literal["history", "cloud"] = "history"
    state_from: str | None = None
    max_state_age: float | None = None


@dataclass(frozen=True)
class AddPlan:
    """A checked schedule and the crontab change that would install it.

    Attributes:
        project_id: The project's id (the one it will get, when `register`).
        project_dir: The dbt project folder.
        register: The project is not registered yet: `apply_add` registers it.
        schedule: The schedule to save.
        expression: Its cron expression.
        crontab: Where the line goes.
        line: The exact line to add.
        replaced: Lines of a schedule of the same name already in the crontab (removed).
        command: The line's command, in parts.
        commit: The commit the ref resolves to now (None without a ref).
        next_times: The next fire times, local time.
    """

    project_id: str
    project_dir: Path
    register: bool
    schedule: Schedule
    expression: CronExpression
    crontab: Crontab
    line: str
    replaced: tuple[str, ...]
    command: cronenv.LineCommand
    commit: str | None
    next_times: tuple[datetime, ...]


def plan_add(request: AddRequest, *, home: Path, environ: Mapping[str, str]) -> AddPlan:
    """Check a new schedule and render its line; nothing is changed.

    Raises:
        ScheduleError: Bad cron expression or name, a duplicate name, `--pin` without a ref,
            `--fetch` without a remote, or an unusable crontab.
        DotError: The spec does not plan: unknown environment, a ref that does not resolve,
            an invalid config (all exit 20).
    """
    expression = parse_cron(request.cron)
    spec = parse_spec(request.spec)
    name = check_name(request.name or name_for_spec(request.spec))
    project_dir = find_project_dir(request.project_dir)
    project_id, entry = _project(home, project_dir)
    if entry is not None:
        _refuse_duplicate(project_id, entry, name)
    crontab = open_crontab(environ)
    commit = _resolve(project_dir, spec.ref, pin=request.pin, fetch=request.fetch)
    schedule = Schedule(
        name=name,
        cron=expression.text,
        spec=str(spec),
        command=request.command,
        dbt_args=request.dbt_args,
        pinned_commit=commit if request.pin else None,
        pinned_ref=spec.ref if request.pin else None,
        pinned_at=datetime.now(UTC) if request.pin else None,
        fetch=request.fetch,
        fetch_optional=request.fetch_optional,
        overlap=request.overlap,
        timeout=request.timeout,
        created_at=datetime.now(UTC),
        defer=request.defer,
        state_source=request.state_source,
        state_from=request.state_from,
        max_state_age=request.max_state_age,
    )
    check_plans(schedule, project_dir)
    command, line, replaced = render(crontab, home, project_id, project_dir, schedule)
    return AddPlan(
        project_id=project_id,
        project_dir=project_dir,
        register=entry is None,
        schedule=schedule,
        expression=expression,
        crontab=crontab,
        line=line,
        replaced=replaced,
        command=command,
        commit=commit,
        next_times=tuple(expression.next_times(NEXT_TIMES)),
    )


def apply_add(plan: AddPlan, *, home: Path) -> AddPlan:
    """Register the project if needed, save the schedule, rehearse the line, install it.

    Returns:
        The plan as carried out (the project id can differ when another project took the
        planned one meanwhile).

    Raises:
        ScheduleError: The rehearsal failed or the crontab could not be written (the schedule
            is taken out of config.yaml again), or the name was taken meanwhile.
        DotError: Registering the project failed.
    """
    if plan.register:
        outcome = registration.init_project(
            registration.InitRequest(repo_path=plan.project_dir), home=home
        )
        if outcome.project_id != plan.project_id:
            command, line, replaced = render(
                plan.crontab, home, outcome.project_id, plan.project_dir, plan.schedule
            )
            plan = replace(
                plan, project_id=outcome.project_id, command=command, line=line, replaced=replaced
            )

    def add(schedules: list[Schedule]) -> list[Schedule]:
        if any(s.name == plan.schedule.name for s in schedules):
            raise duplicate(plan.project_id, plan.schedule.name)
        return [*schedules, plan.schedule]

    update_project_schedules(home, plan.project_id, add)
    try:
        # cron.log is made here, private: cron's shell would make it with cron's umask (0644).
        os.close(
            os.open(plan.command.log, os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC, PRIVATE_FILE_MODE)
        )
        cronenv.check_command(plan.command, cronenv.cron_environ(plan.crontab.read()))
        change_crontab(plan.crontab, home=home, add=[plan.line], remove=plan.replaced)
    except BaseException:
        with contextlib.suppress(DotError):
            update_project_schedules(
                home,
                plan.project_id,
                lambda schedules: [s for s in schedules if s.name != plan.schedule.name],
            )
        raise
    return plan


def render(
    crontab: Crontab, home: Path, project_id: str, project_dir: Path, schedule: Schedule
) -> tuple[cronenv.LineCommand, str, tuple[str, ...]]:
    """A schedule's line command, its rendered line, and lines of the same schedule to replace.

    Raises:
        ScheduleError: The crontab cannot be read, or a path cannot go on a crontab line.
    """
    text = crontab.read()
    command = cronenv.line_command(
        project_id=project_id,
        schedule=schedule.name,
        project_dir=project_dir,
        home=home,
        cron_home=Path(cronenv.cron_environ(text)["HOME"]),
    )
    line = render_line(
        schedule.cron, command.shell(), project_id=project_id, schedule=schedule.name
    )

    stale = tuple(
        ln.text
        for ln in cronlines.marked_lines(text, project_id)
        if ln.schedule == schedule.name and ln.text != line
    )
    return command, line, stale


def check_plans(schedule: Schedule, project_dir: Path) -> None:
    """Plan the schedule's run (a dry run, in process): the environment and command must be valid.

    Raises:
        DotError: The plan failed (unknown environment, invalid vars, ...).
    """
    execute(
        RunRequest(
            command=tuple(schedule.command),
            spec=spec_to_build(schedule),
            project_dir=project_dir,
            dbt_args=tuple(schedule.dbt_args),
            dry_run=True,
            **state_options(schedule),
        )
    )


def duplicate(project_id: str, name: str) -> ScheduleError:
    """The error for a name the project already has."""
    return ScheduleError(
        f"project '{project_id}' already has a schedule named '{name}'",
        f"pick another name (dot schedule add <name> ...), or remove it first: "
        f"dot schedule remove {name}",
    )


def _project(home: Path, project_dir: Path) -> tuple[str, userconfig.ProjectEntry | None]:
    config = userconfig.load_user_config(home)
    found = userconfig.find_project_by_path(config, project_dir)
    if found is not None:
        return found
    name = registration.read_project_name(project_dir)
    return userconfig.unique_project_id(config, name), None


def _refuse_duplicate(project_id: str, entry: userconfig.ProjectEntry, name: str) -> None:
    if any(str(raw.get("name")) == name for raw in entry.schedules):
        raise duplicate(project_id, name)


def _resolve(project_dir: Path, ref: str | None, *, pin: bool, fetch: bool) -> str | None:
    if ref is None:
        if pin:
            raise ScheduleError(
                "--pin needs a spec with a git ref to resolve (env@ref)",
                "for example: dot schedule add nightly --cron '0 2 * * *' prod@main --pin",
            )
        if fetch:
            raise ScheduleError(
                "--fetch needs a spec with a git ref: without one the working tree is built",
                "name the ref to build after fetching, for example prod@origin/main",
            )
        return None
    repo_root = commits.find_repo_root(project_dir)
    if repo_root is None:
        raise ScheduleError(
            f"the spec names a git ref ('{ref}') but {project_dir} is not in a git repository",
            "schedule the working tree (a spec without @), or `git init` the project",
        )
    if fetch and not commits.has_remote(repo_root):
        raise ScheduleError(
            f"--fetch: the repository {repo_root} has no remote to fetch from",
            "add one (git remote add origin <url>), or drop --fetch",
        )
    return commits.resolve_commit(repo_root, ref)
