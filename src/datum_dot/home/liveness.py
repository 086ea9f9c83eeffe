"""Is the process that wrote a RUNNING record still there?

A pid alone cannot say: pids are reused, and a reboot resets them. So a record keeps three facts
about its writer: the pid, the boot id (`/proc/sys/kernel/random/boot_id`, new at every boot) and
the process's start time in clock ticks since boot (field 22 of `/proc/<pid>/stat`). The writer is
alive only if all three still match. Where `/proc` is missing (not Linux), the boot id and start
time are empty and the pid alone decides.
"""

from __future__ import annotations

import os
from pathlib import Path

BOOT_ID_FILE = Path("/proc/sys/kernel/random/boot_id")


def current_boot_id() -> str:
    """This boot's id, or "" where the kernel does not publish one."""
    try:
        return BOOT_ID_FILE.read_text().strip()
    except OSError:
        return ""


def _proc_stat(pid: int) -> list[str] | None:
    """Fields 3 and on of `/proc/<pid>/stat` (state first), or None if unreadable."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name (field 2) is in parentheses and may itself hold spaces or parentheses.
    return stat[stat.rfind(")") + 2 :].split()


def process_start_ticks(pid: int) -> int | None:
    """When process `pid` started, in clock ticks since boot; None if unknown or gone."""
    fields = _proc_stat(pid)
    try:
        return int(fields[19]) if fields else None  # field 22 overall
    except (IndexError, ValueError):
        return None


def is_pid_alive(pid: int) -> bool:
    """Whether some process (of any user) has this pid now."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # it exists, it is just not ours
    return True


def is_writer_gone(pid: int, boot_id: str, start_ticks: int | None, *, now_boot_id: str) -> bool:
    """Whether a record's writer has ended (or the machine rebooted since it wrote).

    Args:
        pid: The writer's pid, as recorded.
        boot_id: The writer's boot id, as recorded ("" where unknown).
        start_ticks: The writer's start time in clock ticks since boot (None where unknown).
        now_boot_id: The current boot id (`current_boot_id()`), passed in so that a caller
            checking many records reads it once.

    Returns:
        True when the writer is certainly gone: another boot, no such pid, or the pid now
        belongs to a process that started at another time.
    """
    if boot_id and now_boot_id and boot_id != now_boot_id:
        return True
    if not is_pid_alive(pid):
        return True
    fields = _proc_stat(pid)
    if fields is None:
        return False  # no /proc here: the live pid is all we know
    if fields[0] == "Z":
        return True  # a zombie: it has ended, its parent has not reaped it yet
    if start_ticks is None or len(fields) < 20:
        return False
    return fields[19] != str(start_ticks)
