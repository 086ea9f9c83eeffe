"""The end of a run recorded while the PostgreSQL history was away: kept on local disk, sent later.

A run whose database went away keeps running; when it finishes before the database is back, what
the database lacks of it (its last output lines, its final record) is appended to
`$DATUM_HOME/spool/<run_id>.jsonl`, in order. The next time this host opens the history (any
`dot` command that reads or writes it), each spooled run is sent in one transaction, lines
first, and its file removed. Sending twice is harmless: lines are skipped by their number and
the final record is the same update.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path

from datum_dot.history.database import FINISH
from datum_dot.history.pgoutput import INSERT_LINES
from datum_dot.history.postgres import DatabaseUnavailableError, PgIndex

SPOOL_DIR = "spool"


def spool(
    home: Path,
    run_id: str,
    lines: Sequence[tuple[int, str, str]],
    finish: Mapping[str, object],
) -> Path:
    """Append a run's unsent lines and its final record to its spool file, flushed to disk.

    Raises:
        OSError: The file cannot be written.
    """
    folder = home / SPOOL_DIR
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    path = folder / f"{run_id}.jsonl"
    text = "".join(json.dumps({"line": list(line)}) + "\n" for line in lines)
    text += json.dumps({"finish": dict(finish)}, default=str) + "\n"
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        os.write(fd, text.encode("utf-8"))
        os.fsync(fd)
    finally:
        os.close(fd)
    return path


def pending(home: Path) -> list[Path]:
    """The spool files waiting to be sent, oldest run first."""
    folder = home / SPOOL_DIR
    try:
        return sorted(folder.glob("*.jsonl"))
    except OSError:
        return []


def send(index: PgIndex, home: Path) -> list[str]:
    """Send every spooled run to the database, in order; stops quietly if it is still away.

    Returns:
        The ids of the runs sent.
    """
    sent: list[str] = []
    for path in pending(home):
        lines: list[tuple[object, ...]] = []
        finishes: list[dict[str, object]] = []
        try:
            raw = path.read_text(encoding="utf-8")
        except OSError:
            continue
        for text in raw.splitlines():
            with contextlib.suppress(ValueError):
                entry = json.loads(text)
                if "line" in entry:
                    lines.append((path.stem, *entry["line"]))
                elif "finish" in entry:
                    finishes.append(entry["finish"])
        try:
            with index.session() as s, s.transaction():
                s.run_many(INSERT_LINES, lines)
                for finish in finishes:
                    s.run(FINISH, finish)
        except DatabaseUnavailableError:
            return sent
        path.unlink(missing_ok=True)
        sent.append(path.stem)
    return sent
