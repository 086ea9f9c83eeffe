"""Whether git's ignore rules (`.gitignore`, `info/exclude`, `core.excludesFile`) ignore a path."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from datum_dot.errors import GitError
from datum_dot.vcs.session import COMMAND_TIMEOUT, raise_if_untrusted, session

if TYPE_CHECKING:
    from git import Repo


def is_ignored(repo_root: Path, path: Path) -> bool:
    """Ask git whether `path` is ignored by the repository's ignore rules.

    A path that does not exist yet is checked as a folder, so a `.dot/` rule counts for a
    `.dot` folder not created yet. Tracked files are never ignored.

    Args:
        repo_root: A folder inside the repository.
        path: The path to check; relative paths are taken from `repo_root`.

    Returns:
        True when a `.gitignore`, `info/exclude` or `core.excludesFile` rule ignores it; False
        when none does or the path is outside the work tree.

    Raises:
        GitError: `repo_root` is not in a git repository, or git failed.
    """
    target = path if path.is_absolute() else repo_root / path
    # Resolve all but the last part, which may itself be a symlink the rules should see as is.
    target = target.parent.resolve() / target.name
    with session(repo_root) as repo:
        return is_ignored_in(repo, target)


def is_ignored_in(repo: Repo, target: Path) -> bool:
    """Ask git, in an open session, whether `target` is ignored (see `is_ignored`).

    Args:
        repo: A repository opened with `session`.
        target: An absolute path, its parent folders already resolved.

    Returns:
        True when an ignore rule matches; False when none does or `target` is outside the work
        tree (or is its top).

    Raises:
        GitError: git check-ignore failed.
    """
    top = Path(repo.working_tree_dir or repo.common_dir).resolve()
    if not target.is_relative_to(top) or target == top:
        return False
    arg = target.relative_to(top).as_posix()
    # check-ignore decides directory-only rules (`.dot/`) from a trailing slash or the disk.
    if target.is_dir() or not target.exists():
        arg += "/"
    status, _out, err = repo.git.check_ignore(
        "--quiet",
        "--",
        arg,
        with_extended_output=True,
        with_exceptions=False,
        kill_after_timeout=COMMAND_TIMEOUT,
    )
    if status in (0, 1):
        return bool(status == 0)
    raise_if_untrusted(str(err), top)
    raise GitError(
        f"git check-ignore failed for {target}: {str(err).strip()}",
        hint=f"run `git -C {top} check-ignore -v {arg}` to see git's complaint",
    )
