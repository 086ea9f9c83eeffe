"""The session log: one JSON object per line under `$DATUM_HOME/logs/`, where tracebacks go."""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from datum_dot.settings import datum_home


def log_path(now: datetime | None = None) -> Path:
    """Today's session log file (one file per UTC day)."""
    now = now or datetime.now(UTC)
    return datum_home() / "logs" / f"dot-{now:%Y%m%d}.jsonl"


def write_event(level: str, message: str, **context: Any) -> Path | None:
    """Append one event to the session log; returns the file, or None if it cannot be written.

    Writing the log must never be the reason a command fails, so OS errors are swallowed.
    """
    now = datetime.now(UTC)
    path = log_path(now)
    record = {
        "time": now.isoformat(timespec="milliseconds"),
        "level": level,
        "pid": os.getpid(),
        "message": message,
        **context,
    }
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("a", encoding="utf-8") as f:
            f.write(json.dumps(record, default=str) + "\n")
    except OSError:
        return None
    return path
