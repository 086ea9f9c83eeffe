"""Whether this process is a warm runner's child: what the run record's `warm` field says.

A child forked by the runner is the one process that runs a handed-off command; it marks
itself before it calls the CLI. A fresh `dot` process never does.
"""

from __future__ import annotations

_served: list[bool] = []


def mark_served() -> None:
    """Record that this process is a warm runner's child (called once, in the child)."""
    _served.append(True)


def is_served() -> bool:
    """Whether this process runs a command handed to the warm runner."""
    return bool(_served)
