"""The package cache `.dot/cache/deps/<digest>/`: which entries no build uses, and removing one.

Every isolated build's worktree has a digest of its package files (`packages.deps_digest`); an
entry whose digest no remaining worktree has is garbage, and so is a `<digest>.tmp` folder left
by an interrupted install. An entry whose lock an install holds is left alone.
"""

from __future__ import annotations

from collections.abc import Iterable
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

import yaml

from datum_dot.builds.packages import deps_digest
from datum_dot.builds.survey import Project, disk_usage
from datum_dot.errors import DotError
from datum_dot.home.locks import file_lock
from datum_dot.vcs import ownership


@dataclass(frozen=True)
class DepsEntry:
    """A `.dot/cache/deps/<digest>` folder no remaining build uses."""

    path: Path
    size_bytes: int


def unused_deps(project: Project, staying: Iterable[Path]) -> tuple[list[DepsEntry], str | None]:
    """The package cache entries no staying build's worktree uses.

    Returns:
        The entries (leftover `.tmp` folders of interrupted installs included), and a warning
        instead when a worktree's package files cannot be read (then nothing is removed).
    """
    cache = project.deps_cache
    for folder in (cache.parent, cache):
        reason = ownership.foreign_reason(folder)
        if reason is not None:
            return [], f"package cache left alone: {reason}, not a folder dot made"
    if not cache.is_dir():
        return [], None
    used: set[str] = set()
    for build_dir in staying:
        worktree = build_dir / "worktree"
        if not worktree.is_dir():
            continue
        try:
            digest = deps_digest(project.project_in(worktree))
        except (OSError, UnicodeDecodeError, yaml.YAMLError, AttributeError, TypeError) as e:
            # A malformed packages.yml (not a mapping, say): its entry cannot be told apart.
            return [], f"package cache left alone: cannot read the package files of {worktree}: {e}"
        if digest is not None:
            used.add(digest)
    entries = []
    for path in sorted(cache.iterdir()):
        if ownership.kind_of(path) != "dir":
            continue
        if path.name in used:
            continue
        entries.append(DepsEntry(path, disk_usage(path)))
    return entries, None


def remove_entry(entry: DepsEntry) -> bool:
    """Delete one entry unless an install holds its lock; returns whether it is gone."""
    lock = entry.path.with_name(entry.path.name.removesuffix(".tmp") + ".lock")
    try:
        with ExitStack() as stack:
            if lock.exists():
                stack.enter_context(file_lock(lock, timeout=0))
            ownership.remove_tree(entry.path)
    except (DotError, OSError):
        return False
    return True
