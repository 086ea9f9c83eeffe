"""Our lines in a crontab: find them, check them, remove them, and leave every other byte alone.

Every line the tool writes ends with a marker comment naming the project and the schedule:

    0 6 * * * /opt/venv/bin/dot build prod@main ... # datum-dot project=shop schedule=nightly

(cron hands the whole command to `sh`, which reads the trailing `# ...` as a comment). The
crontab is the user's (`crontab -l`, installed with `crontab FILE`) or, when `DOT_CRONTAB`
names one, that file (for tests and `/etc/cron.d`-style set-ups). Lines without our marker are
never touched: removing lines rewrites the text with exactly those lines left out.
"""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
import tempfile
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from pathlib import Path

from datum_dot.errors import CrontabError
from datum_dot.home.privatefiles import PRIVATE_FILE_MODE, file_mode, write_private

CRONTAB_ENV = "DOT_CRONTAB"
_TIMEOUT = 30.0
_MARKER = re.compile(
    r"\s#\s*datum-dot\s+project=(?P<project>[^\s#]+)\s+schedule=(?P<schedule>[^\s#]+)\s*$"
)
_ASSIGNMENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*=")
# Text from `crontab -l` and files keeps undecodable bytes as they were.
_ENCODING = "utf-8"
_ERRORS = "surrogateescape"


@dataclass(frozen=True)
class CrontabSource:
    """Where the crontab is: a file (`DOT_CRONTAB`) or the user's, through `crontab`.

    Attributes:
        file: The crontab file named by `DOT_CRONTAB`, if set.
        program: The `crontab` program, when no file is named.
    """

    file: Path | None = None
    program: Path | None = None

    def __str__(self) -> str:
        return str(self.file) if self.file is not None else "the user's crontab"


@dataclass(frozen=True)
class CronLine:
    """One line the tool wrote.

    Attributes:
        number: Its 1-based line number.
        text: The whole line, without its line ending.
        project: The project id in its marker.
        schedule: The schedule name in its marker.
        timing: The schedule fields (`0 6 * * *` or `@daily`).
        command: The command, without the marker.
    """

    number: int
    text: str
    project: str
    schedule: str
    timing: str
    command: str

    @property
    def executable(self) -> str | None:
        """The program the command starts (after `VAR=value` and `cd DIR &&`), if any."""
        try:
            words = shlex.split(self.command)
        except ValueError:
            return None
        while words:
            if _ASSIGNMENT.match(words[0]):
                words = words[1:]
            elif words[0] == "cd" and "&&" in words:
                words = words[words.index("&&") + 1 :]
            else:
                return words[0]
        return None

    def has_executable(self) -> bool:
        """The program exists and may be executed (found on PATH when not a path)."""
        program = self.executable
        if program is None:
            return False
        if "/" not in program:
            return shutil.which(program) is not None
        path = Path(program)
        return path.is_file() and shutil.which(str(path)) is not None


def crontab_source(environ: Mapping[str, str]) -> CrontabSource | None:
    """The crontab to read: `DOT_CRONTAB`'s file, else the user's; None when neither exists."""
    named = environ.get(CRONTAB_ENV)
    if named:
        return CrontabSource(file=Path(named).expanduser())
    program = shutil.which("crontab", path=environ.get("PATH"))
    return CrontabSource(program=Path(program)) if program else None


def read_crontab(source: CrontabSource) -> str:
    """The crontab's text ("" when there is none yet).

    Raises:
        CrontabError: The file cannot be read, or `crontab -l` failed for another reason than
            there being no crontab.
    """
    if source.file is not None:
        try:
            return source.file.read_bytes().decode(_ENCODING, _ERRORS)
        except FileNotFoundError:
            return ""
        except OSError as e:
            raise CrontabError(
                f"cannot read crontab file {source.file}: {e.strerror}",
                f"check the file and {CRONTAB_ENV}: ls -l {source.file}",
            ) from e
    result = _crontab(source, "-l")
    if result.returncode != 0:
        if "no crontab" in result.stderr.lower():
            return ""
        raise CrontabError(
            f"`crontab -l` failed (exit {result.returncode}): {result.stderr.strip()}",
            "check that cron is installed and you may use it (see /etc/cron.allow)",
        )
    return result.stdout


def write_crontab(source: CrontabSource, text: str) -> None:
    """Replace the crontab with `text` (a file atomically, keeping its mode).

    Raises:
        CrontabError: It could not be written or `crontab` refused it.
    """
    data = text.encode(_ENCODING, _ERRORS)
    if source.file is not None:
        try:
            mode = file_mode(source.file) if source.file.exists() else PRIVATE_FILE_MODE
            write_private(source.file, data, mode=mode)
        except OSError as e:
            raise CrontabError(
                f"cannot write crontab file {source.file}: {e.strerror}",
                f"check the folder's permissions: ls -ld {source.file.parent}",
            ) from e
        return
    with tempfile.TemporaryDirectory(prefix="dot-crontab-") as folder:
        staged = Path(folder) / "crontab"
        staged.write_bytes(data)
        result = _crontab(source, str(staged))
    if result.returncode != 0:
        raise CrontabError(
            f"`crontab` refused the new crontab (exit {result.returncode}): "
            f"{result.stderr.strip()}",
            "your crontab is unchanged; check it with `crontab -l`",
        )


def marked_lines(text: str, project_id: str | None = None) -> list[CronLine]:
    """Our lines in a crontab's text, optionally only those of one project."""
    found: list[CronLine] = []
    for number, line in enumerate(_split(text), start=1):
        raw = line.rstrip("\r\n")
        stripped = raw.strip()
        if not stripped or stripped.startswith("#"):
            continue
        marker = _MARKER.search(raw)
        if marker is None:
            continue
        if project_id is not None and marker["project"] != project_id:
            continue
        body = raw[: marker.start()].strip()
        parts = body.split(None, 1 if body.startswith("@") else 5)
        fields = 1 if body.startswith("@") else 5
        if len(parts) <= fields:
            continue
        found.append(
            CronLine(
                number=number,
                text=raw,
                project=marker["project"],
                schedule=marker["schedule"],
                timing=" ".join(parts[:fields]),
                command=parts[fields],
            )
        )
    return found


def remove_lines(text: str, lines: Collection[str]) -> str:
    """`text` without the lines equal to one of `lines`; everything else kept byte for byte."""
    unwanted = set(lines)
    return "".join(line for line in _split(text) if line.rstrip("\r\n") not in unwanted)


def remove_from_crontab(source: CrontabSource, lines: Collection[str]) -> int:
    """Remove lines from the crontab (read again now, so concurrent edits are kept).

    Returns:
        How many lines were removed.

    Raises:
        CrontabError: It could not be read or written.
    """
    text = read_crontab(source)
    updated = remove_lines(text, lines)
    removed = len(_split(text)) - len(_split(updated))
    if removed:
        write_crontab(source, updated)
    return removed


def _crontab(source: CrontabSource, *args: str) -> _Completed:
    # Bytes, not `runtimes.process.run`'s text mode: universal newlines would turn a "\r\n" of
    # the user's crontab into "\n", and removing our lines must leave every other byte alone.
    assert source.program is not None  # noqa: S101 - only called for the user's crontab
    argv = [str(source.program), *args]
    try:
        result = subprocess.run(
            argv,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            timeout=_TIMEOUT,
            check=False,
            start_new_session=True,
        )
    except OSError as e:
        raise CrontabError(f"cannot run {source.program}: {e.strerror}", "install cron") from e
    except subprocess.TimeoutExpired as e:
        raise CrontabError(
            f"`crontab {' '.join(args)}` did not finish in {_TIMEOUT:g}s", "try again"
        ) from e
    return _Completed(
        result.returncode,
        result.stdout.decode(_ENCODING, _ERRORS),
        result.stderr.decode(_ENCODING, "replace"),
    )


def _split(text: str) -> list[str]:
    # Lines with their endings, split at "\n" only: a stray form feed stays inside its line.
    parts = text.split("\n")
    lines = [f"{part}\n" for part in parts[:-1]]
    return [*lines, parts[-1]] if parts[-1] else lines


@dataclass(frozen=True)
class _Completed:
    returncode: int
    stdout: str
    stderr: str
