"""Build worktrees: create, verify, repair and remove the detached checkouts isolated builds use.

Worktrees made here are always detached: no branch gets locked, and the user's own working tree,
index and HEAD are never touched. Callers serialize `ensure_worktree` for one path with a file lock
(see `datum_dot.locks`). Every git call goes through `datum_dot.git.session`.
"""

from __future__ import annotations

import logging
import shutil
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING

from datum_dot import git
from datum_dot.errors import GitError, WorktreeError
from datum_dot.git import Sha

if TYPE_CHECKING:
    from git import Repo

_LOG = logging.getLogger(__name__)


class WorktreeStatus(Enum):
    """What `ensure_worktree` had to do."""

    REUSED = "reused"
    CREATED = "created"
    REPAIRED = "repaired"


@dataclass(frozen=True)
class _Worktree:
    path: Path
    head: str | None
    detached: bool
    locked: bool


def prune_worktrees(repo_root: Path) -> None:
    """Drop git's records of worktrees whose folders are gone (`git worktree prune`).

    Args:
        repo_root: A folder inside the repository.

    Raises:
        GitError: `repo_root` is not in a git repository.
        WorktreeError: git could not prune.
    """
    with git.session(repo_root) as repo:
        _prune(repo)


def remove_worktree(repo_root: Path, path: Path) -> None:
    """Remove a build worktree and its folder, then prune git's records.

    Removing a path that is not a worktree (or is already gone) only prunes.

    Args:
        repo_root: A folder inside the repository.
        path: The worktree's folder.

    Raises:
        GitError: `repo_root` is not in a git repository.
        WorktreeError: The path is the main working tree, or git could not remove it (it may be
            locked).
    """
    path = path.absolute().resolve()
    with git.session(repo_root) as repo:
        worktrees = _list_worktrees(repo)
        _refuse_enclosing(worktrees, path)
        entry = worktrees.get(path)
        if entry is not None and path.exists():
            _remove_registered(repo, entry)
        _prune(repo)


def ensure_worktree(repo_root: Path, path: Path, sha: Sha) -> WorktreeStatus:
    """Make `path` a clean, detached worktree of commit `sha`, reusing what is there.

    Reused when the folder is a registered worktree whose HEAD is `sha` (detached) and
    `git status --porcelain` is empty (git-ignored files such as `target/` do not count).
    Repaired when stale: a deleted folder still registered is pruned and re-added; a folder that
    is not registered is removed and re-added; a worktree at the wrong commit or with changes is
    force-checked-out at `sha` and cleaned, which keeps ignored folders (dbt's partial-parse
    cache). Otherwise created with `git worktree add --detach`.

    Args:
        repo_root: A folder inside the repository.
        path: Where the worktree lives (created with its parents when missing).
        sha: The commit to check out.

    Returns:
        What had to be done.

    Raises:
        GitError: `repo_root` is not in a git repository.
        WorktreeError: The worktree could not be created or repaired; a half-made worktree has
            been cleaned up. Also raised, without deleting anything, when `path` is the main
            working tree, holds it, or is a folder that does not look like a worktree.
    """
    sha = git.validate_sha(sha)
    path = path.absolute().resolve()
    with git.session(repo_root) as repo:
        worktrees = _list_worktrees(repo)
        _refuse_enclosing(worktrees, path)
        entry = worktrees.get(path)
        if entry is None and not path.exists():
            _add_worktree(repo, path, sha)
            return WorktreeStatus.CREATED
        if entry is not None and path.is_dir():
            if _is_ready(path, entry, sha):
                return WorktreeStatus.REUSED
            if _repair_in_place(path, sha):
                return WorktreeStatus.REPAIRED
            _remove_registered(repo, entry)
        elif entry is not None:
            _refuse_locked(entry)
        else:
            _remove_stray_folder(repo, path)
        _prune(repo)
        _add_worktree(repo, path, sha)
        return WorktreeStatus.REPAIRED


# --- worktrees ------------------------------------------------------------------------------


def _list_worktrees(repo: Repo) -> dict[Path, _Worktree]:
    from git import GitCommandError

    try:
        text, sep = repo.git.worktree("list", "--porcelain", "-z"), "\0"
    except GitCommandError:
        # `-z` arrived in git 2.36; older gits (Ubuntu 22.04 has 2.34) only know lines.
        try:
            text, sep = repo.git.worktree("list", "--porcelain"), "\n"
        except GitCommandError as e:
            raise WorktreeError(
                f"could not list the worktrees of {repo.working_dir}: {str(e.stderr).strip()}",
                hint=f"run `git -C {repo.working_dir} worktree list` to see git's complaint",
            ) from e
    records: list[dict[str, str]] = []
    for field in str(text).split(sep):
        key, _, value = field.partition(" ")
        if key == "worktree":
            records.append({})
        if field and records:
            records[-1][key] = value
    worktrees = [
        _Worktree(
            path=Path(r["worktree"]).resolve(),
            head=r.get("HEAD"),
            detached="detached" in r,
            locked="locked" in r,
        )
        for r in records
    ]
    return {w.path: w for w in worktrees}


def _refuse_enclosing(worktrees: dict[Path, _Worktree], path: Path) -> None:
    """Refuse the main worktree and any folder holding other worktrees: they are not ours."""
    # git lists the main worktree (or a bare repository's folder) first.
    main = next(iter(worktrees), None)
    holds_other = any(path in w.parents for w in worktrees)
    if path == main or holds_other:
        raise WorktreeError(
            f"{path} is (or holds) a working tree of the repository, not a build worktree",
            hint="pass a folder of its own, such as <project>/.dot/build/<hash>/worktree",
        )


def _refuse_locked(entry: _Worktree) -> None:
    if entry.locked:
        raise WorktreeError(
            f"worktree {entry.path} is locked, so dot will not replace it",
            hint=f"git worktree unlock {entry.path}",
        )


def _is_ready(path: Path, entry: _Worktree, sha: Sha) -> bool:
    if entry.head != sha or not entry.detached:
        return False
    return _worktree_status(path) == ""


def _worktree_status(path: Path) -> str | None:
    """Porcelain status of the worktree at `path`, or None when it is not a usable worktree."""
    from git import GitCommandError

    try:
        with git.session(path, exact=True) as wt:
            # Porcelain status leaves out ignored files, so dbt's target/ and logs/ are not changes.
            return str(wt.git.status("--porcelain", "-z", kill_after_timeout=git.COMMAND_TIMEOUT))
    except (GitError, GitCommandError):
        return None


def _repair_in_place(path: Path, sha: Sha) -> bool:
    from git import GitCommandError

    try:
        with git.session(path, exact=True) as wt:
            wt.git.checkout("--detach", "--force", sha, kill_after_timeout=git.COMMAND_TIMEOUT)
            # -fd without -x: untracked files go, ignored ones (target/, dbt_packages/) stay.
            wt.git.clean("-fd", kill_after_timeout=git.COMMAND_TIMEOUT)
            head = str(wt.git.rev_parse("HEAD", kill_after_timeout=git.COMMAND_TIMEOUT)).strip()
    except (GitError, GitCommandError) as e:
        _LOG.info("repairing worktree %s in place failed, re-creating it: %s", path, e)
        return False
    return head == sha and _worktree_status(path) == ""


def _add_worktree(repo: Repo, path: Path, sha: Sha) -> None:
    from git import GitCommandError

    existed = path.exists()
    try:
        repo.git.worktree(
            "add", "--detach", "--", str(path), sha, kill_after_timeout=git.COMMAND_TIMEOUT
        )
    except GitCommandError as e:
        _clean_up_half_made(repo, path, delete_folder=not existed)
        raise WorktreeError(
            f"could not create a worktree of commit {sha} at {path}: {str(e.stderr).strip()}",
            hint=f"run `git -C {repo.working_dir} worktree prune` and try again; "
            f"if it persists, remove {path}",
        ) from e


def _clean_up_half_made(repo: Repo, path: Path, *, delete_folder: bool) -> None:
    from git import GitCommandError

    try:
        repo.git.worktree("remove", "--force", "--force", "--", str(path))
    except GitCommandError as e:
        _LOG.debug("nothing registered to remove at %s: %s", path, e)
    if delete_folder and path.is_dir():
        shutil.rmtree(path, ignore_errors=True)
    _prune(repo)


def _remove_registered(repo: Repo, entry: _Worktree) -> None:
    from git import GitCommandError

    _refuse_locked(entry)
    try:
        repo.git.worktree(
            "remove", "--force", "--", str(entry.path), kill_after_timeout=git.COMMAND_TIMEOUT
        )
    except GitCommandError as e:
        # A worktree whose `.git` file was deleted cannot be removed by git; its folder is ours
        # to delete once git's own record shows it is a linked worktree of this repository.
        if not (entry.path / ".git").exists():
            shutil.rmtree(entry.path)
            return
        raise WorktreeError(
            f"could not remove worktree {entry.path}: {str(e.stderr).strip()}",
            hint=f"git -C {repo.working_dir} worktree remove --force {entry.path}",
        ) from e


def _remove_stray_folder(repo: Repo, path: Path) -> None:
    """Delete a folder at `path` that git does not know as a worktree, if it is safe to."""
    dotgit = path / ".git"
    looks_ours = (
        not path.is_symlink()
        and path.is_dir()
        and not dotgit.is_dir()
        and (dotgit.is_file() or not any(path.iterdir()) or git.is_ignored_in(repo, path))
    )
    if not looks_ours:
        raise WorktreeError(
            f"{path} exists but is not a worktree of this repository; dot will not delete it",
            hint=f"move it away or delete it yourself (rm -rf {path}), then run dot again",
        )
    shutil.rmtree(path)


def _prune(repo: Repo) -> None:
    from git import GitCommandError

    try:
        repo.git.worktree("prune", kill_after_timeout=git.COMMAND_TIMEOUT)
    except GitCommandError as e:
        raise WorktreeError(
            f"git worktree prune failed in {repo.working_dir}: {str(e.stderr).strip()}",
            hint=f"run `git -C {repo.working_dir} worktree prune -v` to see git's complaint",
        ) from e
