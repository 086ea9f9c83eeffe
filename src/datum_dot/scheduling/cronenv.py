"""What a crontab line runs, and a rehearsal of it in the environment cron gives it.

cron starts a command with almost nothing: `sh -c`, PATH=/usr/bin:/bin, HOME, LOGNAME and SHELL
from the password file, the crontab's own `NAME=value` lines, no terminal, no virtualenv, and the
home folder as the current folder. So the line names everything it needs:

    cd /src/shop && DATUM_HOME=/srv/datum /opt/venv/bin/dot schedule run nightly \\
        --project shop --from-cron >>/srv/datum/cron.log 2>&1

the absolute path of the installed entry point (not `dot` on a PATH cron does not have), the
project folder, `DATUM_HOME` when it is not the default cron would give, and where its own output
goes: the run's output is in the history; `cron.log` only gets one summary line per firing (and
anything printed before dot could start), never cron's mail. Before a line is installed, its
command is run with `--dry-run` in that environment (`check_command`).
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from datum_dot.errors import ScheduleError

CRON_PATH = "/usr/bin:/bin"
CRON_LOG = "cron.log"
CHECK_TIMEOUT = 120.0
_ASSIGNMENT = re.compile(r"^\s*([A-Za-z_][A-Za-z0-9_]*)\s*=\s*(.*?)\s*$")
_ENTRY_POINTS = ("dot", "datum")
# What cron gives every command (`cron_environ`): a folder, a user, programs; never a secret.
_CRON_GIVEN = frozenset({"HOME", "LOGNAME", "SHELL", "PATH"})


@dataclass(frozen=True)
class LineCommand:
    """The command of a schedule's crontab line, in parts.

    Attributes:
        folder: The project folder the command changes into.
        environ: Variables set for the command (`DATUM_HOME` when it is not cron's default).
        argv: The entry point and its arguments.
        log: The file the command's own stdout and stderr are appended to.
    """

    folder: Path
    environ: Mapping[str, str]
    argv: tuple[str, ...]
    log: Path

    def shell(self) -> str:
        """The command as cron hands it to `sh -c` (before cron's `%` escaping)."""
        return f"{self._prefix()} >>{shlex.quote(str(self.log))} 2>&1"

    def dry_run(self) -> str:
        """The same command with `--dry-run`, its output not redirected: what is rehearsed."""
        return f"{self._prefix()} --dry-run"

    @property
    def executable(self) -> str:
        """The program the line starts."""
        return self.argv[0]

    def _prefix(self) -> str:
        words = ["cd", shlex.quote(str(self.folder)), "&&"]
        words += [f"{key}={shlex.quote(value)}" for key, value in self.environ.items()]
        words += [shlex.quote(arg) for arg in self.argv]
        return " ".join(words)


def line_command(
    *, project_id: str, schedule: str, project_dir: Path, home: Path, cron_home: Path
) -> LineCommand:
    """The command that runs `schedule` of `project_id` from cron.

    Args:
        project_id: The registered project.
        schedule: The schedule's name.
        project_dir: The project folder (the command changes into it).
        home: `$DATUM_HOME`, passed on when it is not `<cron_home>/.datum`.
        cron_home: The HOME cron gives the command.

    Raises:
        ScheduleError: A path holds a line break, which a crontab line cannot carry.
    """
    environ: dict[str, str] = {}
    home = home.absolute()
    if home != cron_home / ".datum":
        environ["DATUM_HOME"] = str(home)
    argv = (*entry_point(), "schedule", "run", schedule, "--project", project_id, "--from-cron")
    command = LineCommand(project_dir.absolute(), environ, argv, home / CRON_LOG)
    if "\n" in command.shell() or "\r" in command.shell():
        raise ScheduleError(
            f"a path of the schedule holds a line break: {command.shell()!r}",
            "move the project or DATUM_HOME to a folder whose path has no line break",
        )
    return command


def entry_point() -> tuple[str, ...]:
    """The absolute path of this installation's `dot`, or `<python> -m datum_dot` without one.

    The script that was started is preferred; else the `dot` next to the interpreter (a
    virtualenv's `bin/`). Symlinks are kept: resolving a virtualenv's python would leave it.
    """
    started = Path(sys.argv[0]) if sys.argv and sys.argv[0] else None
    if started is not None and started.name in _ENTRY_POINTS and started.is_file():
        return (str(started.absolute()),)
    beside = Path(sys.executable).absolute().parent / "dot"
    if beside.is_file() and os.access(beside, os.X_OK):
        return (str(beside),)
    return (str(Path(sys.executable).absolute()), "-m", "datum_dot")


def cron_environ(crontab_text: str) -> dict[str, str]:
    """The environment cron gives a command of this crontab (Debian's cron, for this user)."""
    import pwd

    try:
        entry = pwd.getpwuid(os.getuid())
        user, home = entry.pw_name, entry.pw_dir
    except KeyError:
        user, home = str(os.getuid()), str(Path.home())
    environ = {"HOME": home, "LOGNAME": user, "SHELL": "/bin/sh", "PATH": CRON_PATH}
    environ.update(crontab_assignments(crontab_text))
    return environ


def crontab_assignments(text: str) -> dict[str, str]:
    """The `NAME=value` lines of a crontab, as cron reads them (quotes around a value dropped)."""
    found: dict[str, str] = {}
    for line in text.split("\n"):
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        match = _ASSIGNMENT.match(line.rstrip("\r"))
        if match is None:
            continue
        value = match[2]
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        found[match[1]] = value
    return found


def check_command(command: LineCommand, environ: Mapping[str, str]) -> str:
    """Rehearse a line's command with `--dry-run` as cron would run it; returns its output.

    Raises:
        ScheduleError: It failed, did not finish in time, or `sh` could not be started; the
            message holds the command's last lines of output.
    """
    script = command.dry_run()
    try:
        # The rehearsal goes through `sh -c` on purpose: that is what cron does with the line.
        result = subprocess.run(
            ["/bin/sh", "-c", script],
            cwd=environ.get("HOME") if Path(environ.get("HOME", "/")).is_dir() else "/",
            env=dict(environ),
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=CHECK_TIMEOUT,
            check=False,
            start_new_session=True,
        )
    except subprocess.TimeoutExpired as e:
        raise ScheduleError(
            f"the crontab line's command did not finish its --dry-run in {CHECK_TIMEOUT:g}s "
            "under cron's environment; the line was not installed",
            f"run it by hand to see why: env -i {_env_words(environ)} sh -c {shlex.quote(script)}",
        ) from e
    except OSError as e:
        raise ScheduleError(f"cannot start /bin/sh: {e.strerror}", "check /bin/sh") from e
    if result.returncode != 0:
        output = (result.stderr.strip() or result.stdout.strip()).splitlines()[-6:]
        detail = " | ".join(output) or "no output"
        raise ScheduleError(
            f"the crontab line's command fails under cron's environment (exit "
            f"{result.returncode}): {detail}; the line was not installed",
            f"run it as cron would: env -i {_env_words(environ)} sh -c {shlex.quote(script)}"
            " (with the values of the crontab's NAME=value lines in your shell; set what it"
            " needs as NAME=value lines in the crontab)",
        )
    return result.stdout


def _env_words(environ: Mapping[str, str]) -> str:
    """`NAME=value` words for a hint, with a value only for what cron itself gives a command.

    The crontab's own `NAME=value` lines often hold secrets (a warehouse password, an API
    token), and hints reach the terminal and the session log: those are named, read from the
    shell (`NAME="$NAME"`), never written out.
    """
    return " ".join(
        shlex.quote(f"{key}={value}") if key in _CRON_GIVEN else f'{key}="${key}"'
        for key, value in environ.items()
    )
