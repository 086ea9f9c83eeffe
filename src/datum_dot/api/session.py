"""The session a run of the Python API belongs to: this Python process.

The seeds' result names a `session_id` beside the run's id, so that the runs one program made can
be told apart from another's. A process's id is made once, on first use, and stays the same for
every call it makes; a forked child gets one of its own.
"""

from __future__ import annotations

import os
import secrets
import threading

_lock = threading.Lock()
_current: tuple[int, str] | None = None


def session_id() -> str:
    """This process's session id: `sdk-<pid>-<8 hex digits>`, the same for all its runs."""
    global _current
    pid = os.getpid()
    with _lock:
        # a forked child inherits the parent's value; it is a session of its own
        if _current is None or _current[0] != pid:
            _current = (pid, f"sdk-{pid}-{secrets.token_hex(4)}")
        return _current[1]
