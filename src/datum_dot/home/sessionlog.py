"""The session log: one JSON object per line under `$DATUM_HOME/logs/`, where tracebacks go.

Each event is `{"time", "level", "pid", "run_id", "message", "context"}`; `run_id` is null where
no run is concerned. With `DOT_LOG_FORMAT=json` (what `--log-format json` sets) every event is
also printed on stderr, one JSON object per line.
"""

from __future__ import annotations

import json
import os
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from datum_dot.home.privatefiles import PRIVATE_FILE_MODE, make_private_dirs
from datum_dot.home.settings import datum_home

LOG_FORMAT_ENV = "DOT_LOG_FORMAT"
LOG_FORMATS = ("text", "json")


def log_path(now: datetime | None = None, *, home: Path | None = None) -> Path:
    """Today's session log file (one file per UTC day) under `home` (default `$DATUM_HOME`)."""
    now = now or datetime.now(UTC)
    return (home or datum_home()) / "logs" / f"dot-{now:%Y%m%d}.jsonl"


def write_event(
    level: str,
    message: str,
    *,
    run_id: str | None = None,
    home: Path | None = None,
    **context: Any,
) -> Path | None:
    """Append one event to the session log; returns the file, or None if it cannot be written.

    Writing the log must never be the reason a command fails: an unwritable or unresolvable
    `$DATUM_HOME` makes the event go unrecorded, and nothing is raised.

    Args:
        level: `debug`, `info`, `warning`, `error` or `critical`.
        message: What happened, for people.
        run_id: The run the event belongs to, where there is one.
        home: The state folder whose `logs/` gets the event (default `$DATUM_HOME`).
        **context: Further facts, stored under `context` (JSON-encoded; others as `str()`).
    """
    now = datetime.now(UTC)
    record = {
        "time": now.isoformat(timespec="milliseconds"),
        "level": level,
        "pid": os.getpid(),
        "run_id": run_id,
        "message": message,
        "context": context,
    }
    line = json.dumps(record, default=str) + "\n"
    if os.environ.get(LOG_FORMAT_ENV) == "json":
        try:
            sys.stderr.write(line)
            sys.stderr.flush()
        except (OSError, ValueError):
            pass  # a closed stderr must not fail the command either
    try:
        path = log_path(now, home=home)
        # Private whatever the umask: the log holds tracebacks and hints, and it may be the
        # first thing written, making `$DATUM_HOME` itself.
        make_private_dirs(path.parent)
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, PRIVATE_FILE_MODE)
        with os.fdopen(fd, "a", encoding="utf-8") as f:
            f.write(line)
    except (OSError, RuntimeError):  # RuntimeError: a DATUM_HOME of `~nobody` has no folder
        return None
    return path
