"""Whether a warm runner is up: one connect to its socket, nothing else imported.

`dot --version` asks on every call and must stay fast (under 100 ms in all), so this module
holds only the connect that `client` also uses for its requests.
"""

from __future__ import annotations

import socket

from datum_dot.warm.paths import RunnerPaths

PING_SECONDS = 0.05


def is_up(paths: RunnerPaths) -> bool:
    """Whether a runner accepts connections now (one connect, at most `PING_SECONDS`)."""
    sock = connect(paths, PING_SECONDS)
    if sock is None:
        return False
    sock.close()
    return True


def connect(paths: RunnerPaths, timeout: float) -> socket.socket | None:
    """A connection to the runner's socket, or None when nothing accepts it within `timeout`."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(timeout)
    try:
        sock.connect(str(paths.socket))
    except OSError:
        sock.close()
        return None
    return sock
