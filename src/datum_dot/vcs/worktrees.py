"""Build worktrees: create, verify, repair and remove the detached checkouts isolated builds use.

Worktrees made here are always detached: no branch gets locked, and the user's own working tree,
index and HEAD are never touched. A worktree is changed or deleted only when the repository
registered it at exactly that path and git, asked inside it, names it and its own git dir; it is
deleted by `datum_dot.vcs.ownership.remove_tree` (no link followed), never through its `.git` file.
Callers serialize `ensure_worktree` for one path with a file lock (see `datum_dot.home.locks`). Every
git call goes through `datum_dot.vcs.git.session`.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING

from datum_dot.errors import GitError, OwnershipError, WorktreeError
from datum_dot.vcs import git, ownership
from datum_dot.vcs.git import Sha

if TYPE_CHECKING:
    from git import Repo

_LOG = logging.getLogger(__name__)


class WorktreeStatus(Enum):
    """What `ensure_worktree` had to do."""

    REUSED = "reused"
    CREATED = "created"
    REPAIRED = "repaired"


@dataclass(frozen=True)
class _Registration:
    """A linked worktree as the repository records it.

    Attributes:
        path: The worktree's folder, as git recorded it (links not resolved).
        admin_dir: Its git dir, `<common git dir>/worktrees/<id>`.
        locked: `git worktree lock` was run on it.
    """

    path: Path
    admin_dir: Path
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
    """Delete a build worktree's folder, following no link, then prune git's records.

    The folder must be one the repository registered as a linked worktree at exactly `path`
    (see `foreign_reason`); it is deleted by dot (never through git, which would act through
    the worktree's own, possibly corrupted, `.git` file). A missing folder only prunes.

    Args:
        repo_root: A folder inside the repository.
        path: The worktree's folder.

    Raises:
        GitError: `repo_root` is not in a git repository.
        OwnershipError: The folder is not a worktree dot can prove it made.
        WorktreeError: It is locked, or git could not prune.
    """
    path = path.absolute()
    with git.session(repo_root) as repo:
        reg = _owned_registration(repo, path)
        if reg is not None:
            _refuse_locked(reg)
        ownership.remove_tree(path)
        _prune(repo)


def foreign_reason(repo_root: Path, path: Path) -> str | None:
    """Why the folder at `path` is not a build worktree dot may change or delete.

    A folder is dot's when it is a real folder (no link at any level), the repository has it
    registered as a linked worktree at exactly that path (compared without resolving links,
    recorded under the repository's `worktrees/` folder), and it holds no other worktree. An
    empty folder, or nothing at all, is not foreign either.

    Args:
        repo_root: A folder inside the repository.
        path: The worktree folder, absolute.

    Returns:
        The reason, or None when the folder is dot's, empty or missing.

    Raises:
        GitError: `repo_root` is not in a git repository.
    """
    with git.session(repo_root) as repo:
        return _examine(repo, path.absolute())[1]


def ensure_worktree(repo_root: Path, path: Path, sha: Sha) -> WorktreeStatus:
    """Make `path` a clean, detached worktree of commit `sha`, reusing what is there.

    Nothing is changed in a folder dot cannot prove it made (`foreign_reason`). Before any git
    command runs inside the worktree, its `.git` file and git's own view of it (top level and
    git dir) must be the registered worktree's; a worktree that fails this is deleted (links not
    followed) and added again, so git never acts on another checkout through it.

    Reused when HEAD is `sha` (detached) and `git status --porcelain` is empty (git-ignored
    files such as `target/` do not count). A worktree at the wrong commit or with changes is
    force-checked-out at `sha` and cleaned, which keeps ignored folders (dbt's partial-parse
    cache). A deleted folder still registered is pruned and added again; otherwise the worktree
    is created with `git worktree add --detach`.

    Args:
        repo_root: A folder inside the repository.
        path: Where the worktree lives; its parents must be real folders (no links).
        sha: The commit to check out.

    Returns:
        What had to be done.

    Raises:
        GitError: `repo_root` is not in a git repository.
        OwnershipError: `path` is a link, a file, below a link, holds another worktree, or is a
            non-empty folder git does not know as a worktree there; nothing was changed.
        WorktreeError: The worktree is locked, or could not be created or repaired; a
            half-made worktree has been cleaned up.
    """
    sha = git.validate_sha(sha)
    path = path.absolute()
    with git.session(repo_root) as repo:
        reg = _owned_registration(repo, path)
        if reg is not None:
            _refuse_locked(reg)
        if ownership.kind_of(path) == "missing":
            if reg is None:
                _add_worktree(repo, path, sha)
                return WorktreeStatus.CREATED
            _prune(repo)
        elif reg is None:
            path.rmdir()  # empty: `_owned_registration` refuses any other unregistered folder
        elif _is_healthy(path, reg):
            if _is_ready(path, sha):
                return WorktreeStatus.REUSED
            if _repair_in_place(path, reg, sha):
                return WorktreeStatus.REPAIRED
            ownership.remove_tree(path)
            _prune(repo)
        else:
            _LOG.info("worktree %s does not point at its own git dir; re-creating it", path)
            ownership.remove_tree(path)
            _prune(repo)
        _add_worktree(repo, path, sha)
        return WorktreeStatus.REPAIRED


# --- what the repository registered, and whether a folder is it ------------------------------


def _registrations(repo: Repo) -> dict[Path, _Registration]:
    """The linked worktrees recorded under `<common git dir>/worktrees/`, by recorded path.

    Read from git's own records (each `worktrees/<id>/gitdir` names `<worktree>/.git`) rather
    than from `git worktree list`, which resolves links in the paths it prints.
    """
    admin_root = Path(repo.common_dir) / "worktrees"
    found: dict[Path, _Registration] = {}
    try:
        admins = sorted(admin_root.iterdir())
    except OSError:
        return found
    for admin in admins:
        if ownership.kind_of(admin) != "dir":
            continue
        try:
            recorded = (admin / "gitdir").read_text(encoding="utf-8").strip()
        except (OSError, UnicodeDecodeError):
            continue
        dotgit = Path(recorded) if Path(recorded).is_absolute() else admin / recorded
        if dotgit.name != ".git":
            continue
        path = Path(os.path.normpath(dotgit.parent))
        found[path] = _Registration(path, admin, (admin / "locked").exists())
    return found


def _examine(repo: Repo, path: Path) -> tuple[_Registration | None, str | None]:
    """The registration of the worktree at `path`, and why it is foreign (None: it is not)."""
    registered = _registrations(repo)
    reg = registered.get(path)
    kind = ownership.kind_of(path)
    if kind == "link":
        return reg, f"{path} is a symbolic link, not a worktree dot made"
    if kind == "file":
        return reg, f"{path} is a file, not a worktree dot made"
    if not ownership.is_real_path(path.parent):
        return reg, f"a folder above {path} is a symbolic link"
    main = Path(repo.common_dir).parent
    inner = [p for p in [main, *registered] if p != path and p.is_relative_to(path)]
    if inner:
        return reg, f"{path} holds another working tree of the repository, {inner[0]}"
    if kind == "dir" and reg is None and any(path.iterdir()):
        return None, f"{path} is not registered by git as a worktree at this path"
    return reg, None


def _owned_registration(repo: Repo, path: Path) -> _Registration | None:
    reg, reason = _examine(repo, path)
    if reason is not None:
        raise OwnershipError(
            f"{reason}; dot will not check out, clean or delete it",
            hint=_foreign_hint(path, reason),
        )
    return reg


def _foreign_hint(path: Path, reason: str) -> str:
    if "symbolic link" in reason and reason.startswith(str(path)):
        return f"remove the link (its target is left alone): rm {path}"
    if "not registered" in reason:
        return (
            f"if the repository was moved, run `git worktree repair {path}`; if the folder "
            f"holds nothing of yours, remove it: rm -rf {path}"
        )
    return f"move it out of the way: mv {path} {path}.moved"


def _refuse_locked(reg: _Registration) -> None:
    if reg.locked:
        raise WorktreeError(
            f"worktree {reg.path} is locked, so dot will not replace or remove it",
            hint=f"git worktree unlock {reg.path}",
        )


def _is_healthy(path: Path, reg: _Registration) -> bool:
    """Whether the worktree's `.git` file, and git itself, name the registered git dir.

    Checked before any git command runs inside the worktree: a `.git` file pointing elsewhere
    (at the main repository's `.git`, say) would make a checkout move another working tree.
    """
    admin = os.path.realpath(reg.admin_dir)
    dotgit = path / ".git"
    if ownership.kind_of(dotgit) != "file":
        return False
    try:
        text = dotgit.read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError):
        return False
    if not text.startswith("gitdir:"):
        return False
    pointed = Path(text.removeprefix("gitdir:").strip())
    if os.path.realpath(pointed if pointed.is_absolute() else path / pointed) != admin:
        return False
    view = _git_view(path)
    return view is not None and view == (str(path), admin)


def _git_view(path: Path) -> tuple[str, str] | None:
    """git's idea of the worktree at `path`: its top level and its git dir, links resolved."""
    from git import GitCommandError

    try:
        with git.session(path, exact=True) as wt:
            out = str(
                wt.git.rev_parse(
                    "--show-toplevel", "--absolute-git-dir", kill_after_timeout=git.COMMAND_TIMEOUT
                )
            )
    except (GitError, GitCommandError):
        return None
    lines = out.splitlines()
    if len(lines) != 2:
        return None
    return os.path.normpath(lines[0]), os.path.realpath(lines[1])


def _is_ready(path: Path, sha: Sha) -> bool:
    from git import GitCommandError

    try:
        with git.session(path, exact=True) as wt:
            head = str(wt.git.rev_parse("HEAD", kill_after_timeout=git.COMMAND_TIMEOUT)).strip()
            detached = wt.head.is_detached
            # Porcelain status leaves out ignored files, so dbt's target/ and logs/ are not changes.
            status = str(wt.git.status("--porcelain", "-z", kill_after_timeout=git.COMMAND_TIMEOUT))
    except (GitError, GitCommandError):
        return False
    return head == sha and detached and status == ""


def _repair_in_place(path: Path, reg: _Registration, sha: Sha) -> bool:
    from git import GitCommandError

    try:
        with git.session(path, exact=True) as wt:
            wt.git.checkout("--detach", "--force", sha, kill_after_timeout=git.COMMAND_TIMEOUT)
            # -fd without -x: untracked files go, ignored ones (target/, dbt_packages/) stay.
            wt.git.clean("-fd", kill_after_timeout=git.COMMAND_TIMEOUT)
    except (GitError, GitCommandError) as e:
        _LOG.info("repairing worktree %s in place failed, re-creating it: %s", path, e)
        return False
    return _is_healthy(path, reg) and _is_ready(path, sha)


def _add_worktree(repo: Repo, path: Path, sha: Sha) -> None:
    """`git worktree add --detach`; callers make sure nothing is at `path` first."""
    from git import GitCommandError

    try:
        repo.git.worktree(
            "add", "--detach", "--", str(path), sha, kill_after_timeout=git.COMMAND_TIMEOUT
        )
    except GitCommandError as e:
        _clean_up_half_made(repo, path)
        raise WorktreeError(
            f"could not create a worktree of commit {sha} at {path}: {str(e.stderr).strip()}",
            hint=f"git -C {repo.working_dir} worktree prune",
        ) from e


def _clean_up_half_made(repo: Repo, path: Path) -> None:
    # Nothing was at `path` before `worktree add`, so whatever is there now git made for us.
    try:
        ownership.remove_tree(path)
    except OwnershipError as e:
        _LOG.warning("could not remove the half-made worktree %s: %s", path, e)
    _prune(repo)


def _prune(repo: Repo) -> None:
    from git import GitCommandError

    try:
        repo.git.worktree("prune", kill_after_timeout=git.COMMAND_TIMEOUT)
    except GitCommandError as e:
        raise WorktreeError(
            f"git worktree prune failed in {repo.working_dir}: {str(e.stderr).strip()}",
            hint=f"run `git -C {repo.working_dir} worktree prune -v` to see git's complaint",
        ) from e
