"""The end of a run recorded while the PostgreSQL history was away: kept on local disk, sent later.

A run whose database went away keeps running; when it finishes before the database is back, what
the database lacks of it (its last output lines, its final record) is appended to
`$DATUM_HOME/spool/<run_id>.jsonl`, in order. The next time this host opens the history (any
`dot` command that reads or writes it), each spooled run is sent in one transaction, lines
first, and its file removed. Sending twice is harmless: lines are skipped by their number and
the final record is the same update. A run that keeps its artifacts in the database
(`--artifacts-to-db`) has them stored from its folder then, before its final record.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path

from datum_dot.history import dbartifacts
from datum_dot.history.artifacts import (
    ArtifactFile,
    artifacts_from_json,
    artifacts_to_json,
)
from datum_dot.history.database import FINISH
from datum_dot.history.pgoutput import INSERT_LINES
from datum_dot.history.postgres import DatabaseUnavailableError, PgIndex

SPOOL_DIR = "spool"


def spool(
    home: Path,
    run_id: str,
    lines: Sequence[tuple[int, str, str]],
    finish: Mapping[str, object],
    artifacts: tuple[Path, Mapping[str, ArtifactFile]] | None = None,
) -> Path:
    """Append a run's unsent lines and its final record to its spool file, flushed to disk;
    with `artifacts` (the run's folder and what it kept there), store those in the database
    when sent.

    Raises:
        OSError: The file cannot be written.
    """
    folder = home / SPOOL_DIR
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    path = folder / f"{run_id}.jsonl"
    text = "".join(json.dumps({"line": list(line)}) + "\n" for line in lines)
    if artifacts is not None:
        folder_kept = {"dir": str(artifacts[0]), "kept": artifacts_to_json(artifacts[1])}
        text += json.dumps({"artifacts": folder_kept}) + "\n"
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
        kept: tuple[Path, dict[str, ArtifactFile]] | None = None
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
                elif "artifacts" in entry:
                    folder = Path(entry["artifacts"]["dir"])
                    kept = (folder, artifacts_from_json(entry["artifacts"]["kept"]))
        try:
            with index.session() as s, s.transaction():
                s.run_many(INSERT_LINES, lines)
                if kept is not None:  # before the record that says they are there
                    stored = dbartifacts.store(s, path.stem, *kept)
                    finishes = [{**f, "artifacts": artifacts_to_json(stored)} for f in finishes]
                for finish in finishes:
                    s.run(FINISH, finish)
        except DatabaseUnavailableError:
            return sent
        path.unlink(missing_ok=True)
        sent.append(path.stem)
    return sent
