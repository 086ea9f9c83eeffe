"""The rich consoles the command line prints with, made in one place.

rich ends the process with exit status 1 when its stream's reader goes away (`dot logs | head`);
these consoles raise `BrokenPipeError` instead, so the command line stops as every other write
does there: quietly, with 141 (see `cli.main`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rich.console import Console


def make_console(**options: Any) -> Console:
    """A rich `Console(**options)` whose broken pipe is an exception, not an exit."""
    from rich.console import Console

    class _Console(Console):
        def on_broken_pipe(self) -> None:
            self.quiet = True
            raise BrokenPipeError(32, "the reader of the output went away")

    return _Console(**options)
