"""Where the warm runner keeps its files: `$DATUM_HOME/warm/`, a folder only its user can enter."""

from __future__ import annotations

from pathlib import Path

FOLDER = "warm"
# sun_path holds 108 bytes with its terminating NUL: a longer socket path cannot be bound.
MAX_SOCKET_PATH = 107


class RunnerPaths:
    """The runner's files under one `$DATUM_HOME`.

    A plain class, not a dataclass: `dot --version` reaches it, and `dataclasses` costs 10 ms.

    Attributes:
        folder: `$DATUM_HOME/warm` (mode 0700).
        socket: The Unix socket the runner listens on (mode 0600).
        lock: Held (flock) by the one live runner for its whole life.
        pid: The live runner's pid and start time (JSON), for `dot warm stop` when it hangs.
        log: The runner's own stdout and stderr.
    """

    __slots__ = ("folder",)

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def __eq__(self, other: object) -> bool:
        return isinstance(other, RunnerPaths) and other.folder == self.folder

    def __hash__(self) -> int:
        return hash(self.folder)

    def __repr__(self) -> str:
        return f"RunnerPaths(folder={self.folder!r})"

    @property
    def socket(self) -> Path:
        """The socket file."""
        return self.folder / "runner.sock"

    @property
    def lock(self) -> Path:
        """The lock file."""
        return self.folder / "runner.lock"

    @property
    def pid(self) -> Path:
        """The pid file."""
        return self.folder / "runner.pid"

    @property
    def log(self) -> Path:
        """The runner's log file."""
        return self.folder / "runner.log"

    def fits(self) -> bool:
        """Whether the socket's path is short enough to bind (a very deep DATUM_HOME is not)."""
        return len(str(self.socket).encode()) <= MAX_SOCKET_PATH

    def make_private(self) -> None:
        """Create the folder (0700) and make it private if it was not."""
        self.folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        self.folder.chmod(0o700)


def runner_paths(home: Path) -> RunnerPaths:
    """The runner's files for `$DATUM_HOME` = `home`."""
    return RunnerPaths(home / FOLDER)
