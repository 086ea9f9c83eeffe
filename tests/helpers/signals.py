"""Starting a child that a test will stop with SIGINT, whatever this process inherited.

A non-interactive shell starts a background job (`./scripts/test &`, `nohup`, some CI runners)
with SIGINT ignored, and an ignored signal stays ignored across `fork` and `exec`: `dot` honours
it (see the README's exit codes), so a test that sends SIGINT must start the child with it
restored.
"""

from __future__ import annotations

import signal
from pathlib import Path


def default_sigint() -> None:
    """For `subprocess.Popen(preexec_fn=...)`: SIGINT at its default in the child."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def ignore_sigint() -> None:
    """For `subprocess.Popen(preexec_fn=...)`: the child starts with SIGINT ignored, as `&` does."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def is_sigint_ignored(pid: int) -> bool:
    """Whether the process `pid` ignores SIGINT (its `SigIgn` mask in /proc)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("SigIgn:"):
            return bool(int(line.split()[1], 16) >> (signal.SIGINT - 1) & 1)
    raise AssertionError(f"no SigIgn line for pid {pid}")


def parent_pid(pid: int) -> int:
    """The parent of the process `pid`."""
    return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
