"""What a run shows where: colours, the live display, and which of dbt's lines reach the screen.

- Colours: `NO_COLOR` (set and not empty) turns them off everywhere, dbt's included; otherwise
  `FORCE_COLOR` turns them on, a file or a pipe too; otherwise they are on for a terminal only.
  dbt's own `DBT_USE_COLORS` and a `--use-colors`/`--no-use-colors` passed to dbt win over both.
- The live display (a status line, then a progress bar) is drawn when stderr is a terminal.
- dbt's lines: when stdout is not a terminal (a file, a pipe, CI), every line once, as dbt
  wrote it; beside the live display on a terminal, for commands that run nodes, only dbt's
  warnings and errors. Every line is in the run's history either way (`dot logs <run-id>`).
"""

from __future__ import annotations

import os
import sys
from collections.abc import MutableMapping, Sequence
from dataclasses import dataclass
from typing import TextIO

# dbt commands whose progress the bar shows node by node; the others (ls, show, compile, debug,
# deps, docs, run-operation, ...) print what the user asked for, so all their lines are shown.
NODE_COMMANDS = frozenset({"build", "run", "test", "seed", "snapshot", "retry"})
_DBT_COLOUR_FLAGS = ("--use-colors", "--no-use-colors")


@dataclass(frozen=True)
class Screen:
    """What this run draws and shows.

    Attributes:
        live: Draw the status line and the progress bar on stderr.
        problems_only: Show only dbt's warnings and errors of its output.
        colour: Whether dbt writes colour codes.
    """

    live: bool
    problems_only: bool
    colour: bool


def colour_wanted(stream: TextIO, environ: MutableMapping[str, str] | None = None) -> bool:
    """Whether output to `stream` gets colour codes (NO_COLOR, then FORCE_COLOR, then a terminal)."""
    env = os.environ if environ is None else environ
    if env.get("NO_COLOR"):
        return False
    if env.get("FORCE_COLOR"):
        return True
    return _isatty(stream)


def configure(
    command: Sequence[str],
    dbt_args: Sequence[str],
    *,
    stdout: TextIO | None = None,
    stderr: TextIO | None = None,
    environ: MutableMapping[str, str] | None = None,
    live_display: bool = True,
) -> Screen:
    """Decide what a run of `command` shows, and set it up for every runtime.

    The terminal policy is set for this process, and `DBT_USE_COLORS` in `environ` (default:
    this process's environment, which every runtime passes on to dbt) unless the user chose.
    `live_display=False` is for a command that draws no progress display (`schedule run`):
    every line of dbt's is shown, and only the colours are decided.
    """
    out = stdout or sys.stdout
    err = stderr or sys.stderr
    env = os.environ if environ is None else environ
    live = live_display and _isatty(err) and env.get("TERM") != "dumb"
    problems_only = live and _isatty(out) and bool(command) and command[0] in NODE_COMMANDS
    colour = colour_wanted(out, env)
    # lazy: the runtimes' modules load after the status line is up
    from datum_dot.runtimes.output import TerminalPolicy, set_terminal_policy

    set_terminal_policy(TerminalPolicy(problems_only=problems_only))
    chosen = "DBT_USE_COLORS" in env or any(
        arg.split("=", 1)[0] in _DBT_COLOUR_FLAGS for arg in dbt_args
    )
    if not chosen:
        env["DBT_USE_COLORS"] = "true" if colour else "false"
    return Screen(live=live, problems_only=problems_only, colour=colour)


def _isatty(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (OSError, ValueError, AttributeError):
        return False
