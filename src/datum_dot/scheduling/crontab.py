"""Our crontab lines: rendered and read back with python-crontab, spliced in without touching others.

python-crontab renders each line the tool writes (timing, command with cron's `%` escaped, and the
marker comment `# datum-dot project=<id> schedule=<name>`) and reads the edited crontab back to
prove cron-style parsing finds exactly our entry. It does not write the crontab: its round trip
rewrites lines it did not create (`FOO = bar` dropped, spacing and `\\%` changed, indented comments
moved), and a crontab edit must never change a line the tool did not write. So the text is edited
line by line (`cronlines`), and each change is read back before it is written (ADR 0007).
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from datum_dot.errors import CrontabError, LockTimeoutError, ScheduleError
from datum_dot.home import locks
from datum_dot.scheduling import cronlines
from datum_dot.scheduling.cronlines import CronLine, CrontabSource

MARKER = "datum-dot project={project} schedule={schedule}"
_LOCK = "locks/crontab.lock"
_LOCK_TIMEOUT = 60.0
_PACKAGES = "apt-get install cron (Debian, Ubuntu), dnf install cronie (Fedora, RHEL)"


@dataclass(frozen=True)
class Crontab:
    """The crontab schedules are written to.

    Attributes:
        source: The file named by `DOT_CRONTAB`, or the user's crontab through `crontab`.
    """

    source: CrontabSource

    def describe(self) -> str:
        """For people: `file /etc/cron.d/x (DOT_CRONTAB)` or `the crontab of user ann (...)`."""
        if self.source.file is not None:
            return f"file {self.source.file} ({cronlines.CRONTAB_ENV})"
        return f"the crontab of user {_user()} ({self.source.program} -l)"

    def read(self) -> str:
        """The crontab's text ("" when there is none).

        Raises:
            ScheduleError: It cannot be read.
        """
        try:
            return cronlines.read_crontab(self.source)
        except CrontabError as e:
            raise ScheduleError(e.message, e.hint) from e

    def lines(self, project_id: str | None = None) -> list[CronLine]:
        """Our lines in it, optionally of one project.

        Raises:
            ScheduleError: It cannot be read.
        """
        return cronlines.marked_lines(self.read(), project_id)


def open_crontab(environ: Mapping[str, str]) -> Crontab:
    """The crontab to use: `DOT_CRONTAB`'s file, else the user's.

    Raises:
        ScheduleError: `crontab` is not installed and `DOT_CRONTAB` is not set, or
            `DOT_CRONTAB` names a file in a folder that does not exist or cannot be written.
    """
    source = cronlines.crontab_source(environ)
    if source is None:
        raise ScheduleError(
            "the `crontab` program is not installed (and DOT_CRONTAB names no crontab file)",
            f"install cron: {_PACKAGES}; or set DOT_CRONTAB=<file> to write a crontab file",
        )
    if source.file is not None:
        _check_file(source.file)
    return Crontab(source)


def render_line(timing: str, command: str, *, project_id: str, schedule: str) -> str:
    """One crontab line, rendered by python-crontab: `<timing> <command> # datum-dot ...`.

    Raises:
        ScheduleError: python-crontab does not accept the timing.
    """
    from crontab import CronItem

    item = CronItem(command=command, comment=marker(project_id, schedule))
    try:
        item.setall(timing)
    except (ValueError, KeyError) as e:
        raise ScheduleError(
            f"python-crontab refuses the cron expression '{timing}': {e}",
            "use 5 fields, for example: --cron '0 6 * * *'",
        ) from e
    rendered: str = item.render()
    if not item.is_valid() or "\n" in rendered:
        raise ScheduleError(f"cannot write a crontab line for '{timing}'", "use 5 fields")
    return rendered


def marker(project_id: str, schedule: str) -> str:
    """The comment that marks a line as ours."""
    return MARKER.format(project=project_id, schedule=schedule)


def schedule_lines(lines: Sequence[CronLine], project_id: str, schedule: str) -> list[CronLine]:
    """The lines of one schedule."""
    return [ln for ln in lines if ln.project == project_id and ln.schedule == schedule]


def change_crontab(
    crontab: Crontab, *, home: Path, add: Sequence[str] = (), remove: Sequence[str] = ()
) -> bool:
    """Remove and add whole lines; every other byte of the crontab stays as it was.

    The crontab is read again now (so edits made since it was shown are kept), changed, read
    back with python-crontab, and written only if it changed. Concurrent `dot` edits are
    serialized by a lock in `$DATUM_HOME`.

    Returns:
        Whether the crontab was written.

    Raises:
        ScheduleError: It cannot be read or written, or the edit does not read back.
    """
    try:
        with locks.file_lock(home / _LOCK, timeout=_LOCK_TIMEOUT):
            before = crontab.read()
            after = add_lines(cronlines.remove_lines(before, remove), add)
            _read_back(after, add, remove)
            if after == before:
                return False
            cronlines.write_crontab(crontab.source, after)
    except CrontabError as e:
        raise ScheduleError(e.message, e.hint) from e
    except LockTimeoutError as e:
        raise ScheduleError(e.message, e.hint) from e
    except OSError as e:
        raise ScheduleError(
            f"cannot create the crontab lock in {home}: {e.strerror}", f"check {home}"
        ) from e
    return True


def add_lines(text: str, lines: Sequence[str]) -> str:
    """`text` with `lines` appended (after a line ending, if its last line has none)."""
    new = [line for line in lines if line not in _whole_lines(text)]
    if not new:
        return text
    if text and not text.endswith("\n"):
        text += "\n"
    return text + "".join(f"{line}\n" for line in new)


def _read_back(text: str, added: Sequence[str], removed: Sequence[str]) -> None:
    """python-crontab must find each added line as a job with its timing and marker."""
    from crontab import CronTab

    jobs = [(str(job.slices), job.comment) for job in CronTab(tab=text) if job.is_valid()]
    for line in added:
        ours = cronlines.marked_lines(line)
        found = len(ours) == 1 and (ours[0].timing, marker(ours[0].project, ours[0].schedule))
        if not found or found not in jobs:
            raise ScheduleError(
                f"the edited crontab does not read back: {line!r} is not parsed as a job",
                "report this as a bug; the crontab was not changed",
            )
    present = _whole_lines(text)
    for line in removed:
        if line in present and line not in added:
            raise ScheduleError(
                f"the edited crontab still holds {line!r}",
                "report this as a bug; the crontab was not changed",
            )


def _whole_lines(text: str) -> set[str]:
    return {line.rstrip("\r") for line in text.split("\n")}


def _check_file(path: Path) -> None:
    folder = path.parent
    if not folder.is_dir():
        raise ScheduleError(
            f"DOT_CRONTAB={path} is in a folder that does not exist: {folder}",
            f"create it (mkdir -p {folder}) or point DOT_CRONTAB at a file in an existing folder",
        )
    if path.is_dir():
        raise ScheduleError(
            f"DOT_CRONTAB={path} is a folder, not a crontab file",
            f"point DOT_CRONTAB at a file, for example {path / 'crontab'}",
        )
    if not os.access(folder, os.W_OK | os.X_OK) or (path.exists() and not os.access(path, os.W_OK)):
        raise ScheduleError(
            f"the crontab file {path} cannot be written (permissions of {folder})",
            f"check with `ls -ld {folder} {path}`, or point DOT_CRONTAB at a writable file",
        )


def _user() -> str:
    import pwd

    try:
        return pwd.getpwuid(os.getuid()).pw_name
    except KeyError:
        return str(os.getuid())
