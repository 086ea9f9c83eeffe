"""Run dbt from the project folder, as a person running dbt there would.

dbt resolves relative paths it does not own (a DuckDB `path:` in profiles.yml, a key file, a
`--state` folder typed on the command line) from the process's working directory. `dot` may be
started anywhere below the project, so for the length of a run the working directory is the
user's project folder (for an isolated build too: its worktree is a copy of the code, not of
the warehouse, so a relative DuckDB file is the same one `dbt` in the checkout uses). Every
runtime follows it: in-process dbt reads it directly, the forked or fork-server child is sent
it, and the dbt CLI is started in it.

The working directory belongs to the whole process, so runs in threads of one process take
turns when they need different folders; runs of the same project share it.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path


class _ProcessDirectory:
    """The process's working directory, shared by the runs of this process."""

    def __init__(self) -> None:
        self._changed = threading.Condition()
        self._holders: dict[Path, int] = {}
        self._previous: Path | None = None

    @contextmanager
    def entered(self, folder: Path) -> Iterator[None]:
        with self._changed:
            # another thread's run needs another folder: wait for it (no lock is held here)
            self._changed.wait_for(lambda: not self._holders or folder in self._holders)
            if not self._holders:
                self._previous = _current()
                os.chdir(folder)
            self._holders[folder] = self._holders.get(folder, 0) + 1
        try:
            yield
        finally:
            with self._changed:
                self._holders[folder] -= 1
                if not self._holders[folder]:
                    del self._holders[folder]
                    if self._previous is not None and self._previous.is_dir():
                        os.chdir(self._previous)
                    self._changed.notify_all()


_PROCESS = _ProcessDirectory()


def project_cwd(project_dir: Path) -> AbstractContextManager[None]:
    """Make `project_dir` the working directory for a run, and put the old one back after it.

    Args:
        project_dir: The user's dbt project folder.

    Returns:
        A context manager; inside it the working directory is `project_dir`.

    Raises:
        OSError: The folder cannot be entered (on entering the context).
    """
    return _PROCESS.entered(project_dir.resolve())


def _current() -> Path | None:
    try:
        return Path.cwd()
    except FileNotFoundError:  # the folder dot was started in was removed meanwhile
        return None
