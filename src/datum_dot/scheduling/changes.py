"""`dot schedule pause | resume | remove | pin`: each a planned change, then carried out.

Pause takes the schedule's line out of the crontab and marks it `enabled: false`; resume puts
the line back (after rehearsing it, as `add` does); remove takes out the line and the schedule.
The crontab is changed before config.yaml. `pin` changes config.yaml only: the line names the schedule, not the
commit, so the crontab stays as it is.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from datum_dot.errors import ScheduleError
from datum_dot.history import RunEnd, RunStart, RunStore
from datum_dot.runs import commits
from datum_dot.runs.planner import project_name
from datum_dot.runs.run import RunStatus
from datum_dot.runs.spec import parse_spec
from datum_dot.scheduling import cronenv
from datum_dot.scheduling.adding import check_plans, render
from datum_dot.scheduling.crontab import Crontab, change_crontab, open_crontab, schedule_lines
from datum_dot.scheduling.report import PIN_COMMAND
from datum_dot.scheduling.schedules import Located, Schedule, update_project_schedules


@dataclass(frozen=True)
class Change:
    """A change to one schedule: the crontab lines it adds and removes, and its new state.

    Attributes:
        verb: `pause`, `resume` or `remove`.
        project_id: The schedule's project.
        name: The schedule's name.
        crontab: The crontab changed.
        add: Lines to add.
        remove: Lines to remove.
        schedule: The schedule after the change (None: removed).
        command: The command of the added line, rehearsed before it is installed.
    """

    verb: str
    project_id: str
    name: str
    crontab: Crontab
    add: tuple[str, ...] = ()
    remove: tuple[str, ...] = ()
    schedule: Schedule | None = None
    command: cronenv.LineCommand | None = None

    @property
    def changes_crontab(self) -> bool:
        """Whether any line is added or removed."""
        return bool(self.add or self.remove)


@dataclass(frozen=True)
class PinChange:
    """Moving a pinned schedule to another commit.

    Attributes:
        located: The schedule as it is.
        ref: The ref as given.
        before: The commit it builds now.
        after: The commit it will build.
    """

    located: Located
    ref: str
    before: str
    after: str


def plan_change(
    verb: str, located: Located | None, *, name: str, project_id: str | None, home: Path,
    environ: Mapping[str, str],
) -> Change:  # fmt: skip
    """What pausing, resuming or removing a schedule changes.

    Args:
        verb: `pause`, `resume` or `remove`.
        located: The schedule, or None for `remove` of lines whose schedule is already gone.
        name: The schedule's name.
        project_id: Its project (needed when `located` is None).
        home: `$DATUM_HOME`.
        environ: The environment (`DOT_CRONTAB`, `PATH`).

    Raises:
        ScheduleError: The crontab cannot be used.
    """
    crontab = open_crontab(environ)
    pid = located.project_id if located is not None else project_id
    assert pid is not None  # noqa: S101 - callers pass one or the other
    current = tuple(ln.text for ln in schedule_lines(crontab.lines(pid), pid, name))
    if located is None or verb == "remove":
        return Change(verb, pid, name, crontab, remove=current)
    schedule = located.schedule
    if verb == "pause":
        return Change(
            verb, pid, name, crontab, remove=current, schedule=schedule.model_copy(
                update={"enabled": False})
        )  # fmt: skip
    project_dir = Path(located.project.path)
    command, line, stale = render(crontab, home, pid, project_dir, schedule)
    add = () if line in current else (line,)
    resumed = schedule.model_copy(update={"enabled": True})
    return Change(verb, pid, name, crontab, add=add, remove=stale, schedule=resumed,
                  command=command)  # fmt: skip


def apply_change(change: Change, *, home: Path) -> None:
    """Carry out a planned change.

    Raises:
        ScheduleError: The rehearsal of an added line failed, or the crontab or config.yaml
            could not be written.
    """
    if change.add and change.command is not None:
        cronenv.check_command(change.command, cronenv.cron_environ(change.crontab.read()))
    # The crontab first: a line left behind by a failed config write is harmless (a firing of
    # a paused or removed schedule runs nothing), a schedule marked active without its line
    # would silently never run.
    change_crontab(change.crontab, home=home, add=change.add, remove=change.remove)
    _save(change, home)


def plan_pin(located: Located, ref: str) -> PinChange:
    """Resolve `ref` for a pinned schedule and check that its commit plans.

    Raises:
        ScheduleError: The schedule is not pinned, or the project is not in a git repository.
        DotError: The ref does not resolve, or the schedule's run does not plan at that commit.
    """
    schedule = located.schedule
    if schedule.pinned_commit is None:
        raise ScheduleError(
            f"schedule '{schedule.name}' is not pinned: it builds {schedule.spec or 'the working tree'} "
            "as it is when it fires",
            f"to pin one, remove it and add it again with --pin: dot schedule remove {schedule.name}",
        )
    project_dir = Path(located.project.path)
    repo_root = commits.find_repo_root(project_dir)
    if repo_root is None:
        raise ScheduleError(f"{project_dir} is not in a git repository", "git init it")
    after = commits.resolve_commit(repo_root, ref)
    check_plans(schedule.model_copy(update={"pinned_commit": after}), project_dir)
    return PinChange(located, ref, schedule.pinned_commit, after)


def apply_pin(pin: PinChange, *, home: Path) -> str:
    """Save the new commit in config.yaml and record the promotion in the run history.

    Returns:
        The history record's id.

    Raises:
        ScheduleError: The schedule was removed meanwhile.
    """
    located = pin.located
    name = located.schedule.name
    now = datetime.now(UTC)

    def move(schedules: list[Schedule]) -> list[Schedule]:
        if not any(s.name == name for s in schedules):
            raise ScheduleError(f"schedule '{name}' was removed meanwhile", "dot schedule list")
        return [
            s.model_copy(update={"pinned_commit": pin.after, "pinned_ref": pin.ref,
                                 "pinned_at": now}) if s.name == name else s
            for s in schedules
        ]  # fmt: skip

    update_project_schedules(home, located.project_id, move)
    spec = parse_spec(located.schedule.spec)
    store = RunStore(home)
    run_id = store.begin(
        RunStart(
            project=project_name(Path(located.project.path)),
            spec=f"{spec.env or ''}@{pin.after}",
            command=PIN_COMMAND,
            env=spec.env,
            commit=pin.after,
            runtime=located.project.runtime,
            trigger="manual",
            started_at=now,
            schedule=name,
        )
    )
    message = f"pinned schedule '{name}' from {pin.before} to {pin.after} ({pin.ref})"
    with store.output(run_id) as out:
        out.line("stdout", f"dot: {message}")
    store.finish(run_id, RunEnd(RunStatus.SUCCESS, 0, error_message=None))
    return run_id


def _save(change: Change, home: Path) -> None:
    def apply(schedules: list[Schedule]) -> list[Schedule]:
        if change.schedule is None:
            return [s for s in schedules if s.name != change.name]
        return [change.schedule if s.name == change.name else s for s in schedules]

    update_project_schedules(home, change.project_id, apply)
