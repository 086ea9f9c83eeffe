"""Is the webhook server running? `$DATUM_HOME/webhook.server.json`, written while it serves.

The server writes the file once its socket is bound and removes it when it stops. A server that
was killed leaves the file behind, so the file alone cannot say "running": it keeps the writer's
pid, boot id and start time (see `liveness`), and the server counts as running only while that
process is still the one that wrote it.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

from datum_dot.home.liveness import current_boot_id, is_writer_gone, process_start_ticks
from datum_dot.home.privatefiles import write_private

STATE_FILE = "webhook.server.json"


@dataclass(frozen=True)
class ServerState:
    """What a running webhook server says about itself.

    Attributes:
        url: `http://host:port`, where it listens.
        started_at: When it started listening (UTC, ISO-8601).
        pid: Its process id.
        boot_id: The boot it started in ("" where unknown).
        start_ticks: Its start time in clock ticks since boot (None where unknown).
        workers: Jobs it runs at once.
    """

    url: str
    started_at: str
    pid: int
    boot_id: str = ""
    start_ticks: int | None = None
    workers: int = 0


@dataclass(frozen=True)
class ServerStatus:
    """The webhook server as `schedule status` shows it.

    Attributes:
        running: Whether a server is serving now.
        state: The state file's facts (of the running server, or of one that died); None when
            no server has left one.
    """

    running: bool
    state: ServerState | None

    def to_json(self) -> dict[str, object]:
        """The status as JSON (`running`, `url`, `since`, `pid`)."""
        state = self.state
        return {
            "running": self.running,
            "url": state.url if state else None,
            "since": state.started_at if state and self.running else None,
            "pid": state.pid if state and self.running else None,
        }


def state_path(home: Path) -> Path:
    """`$DATUM_HOME/webhook.server.json`."""
    return home / STATE_FILE


def record_server(home: Path, url: str, *, workers: int, now: datetime | None = None) -> None:
    """Say that this process serves at `url` (the file is replaced atomically, mode 0600)."""
    pid = os.getpid()
    state = ServerState(
        url=url,
        started_at=(now or datetime.now(UTC)).isoformat(timespec="seconds"),
        pid=pid,
        boot_id=current_boot_id(),
        start_ticks=process_start_ticks(pid),
        workers=workers,
    )
    write_private(state_path(home), json.dumps(asdict(state)).encode())


def forget_server(home: Path) -> None:
    """Remove the file, if this process wrote it (another server may have started since)."""
    path = state_path(home)
    state = _read(path)
    if state is not None and state.pid == os.getpid():
        path.unlink(missing_ok=True)


def server_status(home: Path) -> ServerStatus:
    """Whether the webhook server is running, from the file and the process that wrote it."""
    state = _read(state_path(home))
    if state is None:
        return ServerStatus(running=False, state=None)
    gone = is_writer_gone(
        state.pid, state.boot_id, state.start_ticks, now_boot_id=current_boot_id()
    )
    return ServerStatus(running=not gone, state=state)


def _read(path: Path) -> ServerState | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return ServerState(
            url=str(data["url"]),
            started_at=str(data["started_at"]),
            pid=int(data["pid"]),
            boot_id=str(data.get("boot_id") or ""),
            start_ticks=None if data.get("start_ticks") is None else int(data["start_ticks"]),
            workers=int(data.get("workers") or 0),
        )
    except (OSError, ValueError, KeyError, TypeError):
        return None  # none, or not one we can read: no server to speak of
