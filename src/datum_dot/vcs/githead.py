"""Which commit a work tree's HEAD points at, read from the repository's files.

A plain run records the commit it ran (`RunStart.commit`). Asking git costs an import of
GitPython and a `git rev-parse` process (together about 40 ms, on the path of every run);
reading `HEAD` and the ref it names costs a few file reads. Only the common layouts are read:
a `.git` folder or a `.git` file (`gitdir: ...`, as linked worktrees and submodules have), loose
refs and `packed-refs`. Anything else (a reftable repository, an unborn branch, a ref that
points elsewhere) is `UNREADABLE`, and the caller asks git (`git.resolve_commit`).

Like `session.py`, nothing here looks at inherited `GIT_*` variables (`GIT_DIR`, `GIT_WORK_TREE`):
the repository is the one holding the folder.
"""

from __future__ import annotations

import re
from enum import Enum
from pathlib import Path
from typing import Final, Literal

_HASH = re.compile(r"[0-9a-f]{40}|[0-9a-f]{64}")  # SHA-1 or SHA-256
_SYMBOLIC_DEPTH = 5  # git itself follows symbolic refs up to 5 levels deep
# Refs each linked worktree keeps in its own git folder (git-worktree(1), "Refs").
_PER_WORKTREE = ("refs/bisect/", "refs/worktree/", "refs/rewritten/")


class Unreadable(Enum):
    """The type of `UNREADABLE`."""

    UNREADABLE = "unreadable"


UNREADABLE: Final = Unreadable.UNREADABLE
"""The files do not say for sure: ask git."""


def head_commit(path: Path) -> str | Literal[Unreadable.UNREADABLE] | None:
    """The commit HEAD of the work tree holding `path` points at, from the repository's files.

    Args:
        path: A folder inside the work tree (symlinks are resolved first, as git does).

    Returns:
        The commit's full hash; None when no folder from `path` up holds a `.git`; `UNREADABLE`
        when the repository's layout is one this module does not read.
    """
    found = find_git_dir(path)
    if found is None:
        return None
    if found is UNREADABLE:
        return UNREADABLE
    git_dir, common_dir = found
    if (common_dir / "reftable").exists():
        return UNREADABLE
    try:
        return _resolve(git_dir, common_dir, "HEAD")
    except (OSError, UnicodeDecodeError):
        return UNREADABLE


def find_git_dir(path: Path) -> tuple[Path, Path] | Literal[Unreadable.UNREADABLE] | None:
    """The git folder of the work tree holding `path`, and the folder its shared refs are in.

    Returns:
        `(git_dir, common_dir)`: the same folder for a main work tree; for a linked worktree,
        its `.git/worktrees/<name>` folder and the main `.git`. None outside any repository;
        `UNREADABLE` when a `.git` was found but is not a layout this module reads.
    """
    try:
        start = path.resolve()
    except OSError:
        return UNREADABLE
    for folder in (start, *start.parents):
        dot_git = folder / ".git"
        try:
            if dot_git.is_dir():
                git_dir = dot_git
            elif dot_git.is_file():
                text = dot_git.read_text(encoding="utf-8").strip()
                if not text.startswith("gitdir: "):
                    return UNREADABLE
                git_dir = folder / text.removeprefix("gitdir: ")
            else:
                continue
            common = git_dir / "commondir"
            if common.is_file():
                return git_dir, git_dir / common.read_text(encoding="utf-8").strip()
            return git_dir, git_dir
        except (OSError, UnicodeDecodeError):
            return UNREADABLE
    return None


def _resolve(git_dir: Path, common_dir: Path, name: str) -> str | Literal[Unreadable.UNREADABLE]:
    for _ in range(_SYMBOLIC_DEPTH):
        value = _read_ref(git_dir, common_dir, name)
        if value is None:
            return UNREADABLE  # an unborn branch, or a ref stored in a way not read here
        if _HASH.fullmatch(value):
            return value
        if not value.startswith("ref: "):
            return UNREADABLE
        name = value.removeprefix("ref: ").strip()
        if not _is_plain_ref(name):
            return UNREADABLE
    return UNREADABLE


def _read_ref(git_dir: Path, common_dir: Path, name: str) -> str | None:
    """The text of `HEAD` (the work tree's own), or of a shared ref: loose, else packed."""
    if name == "HEAD":
        head = git_dir / "HEAD"
        return head.read_text(encoding="utf-8").strip() if head.is_file() else None
    if name.startswith(_PER_WORKTREE):
        return None
    loose = common_dir / name
    if loose.is_file():
        return loose.read_text(encoding="utf-8").strip()
    packed = common_dir / "packed-refs"
    if not packed.is_file():
        return None
    for line in packed.read_text(encoding="utf-8").splitlines():
        if line.startswith(("#", "^")):
            continue
        value, _, ref = line.partition(" ")
        if ref == name:
            return value
    return None


def _is_plain_ref(name: str) -> bool:
    parts = name.split("/")
    return parts[0] == "refs" and len(parts) > 1 and all(p and not p.startswith(".") for p in parts)
