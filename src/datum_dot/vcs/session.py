"""Opening a repository: `session`, the one way every git call of the product starts.

A session lifts git's repository-locating variables out of the environment and never prompts
for credentials. GitPython is imported inside functions so that `dot --help` never pays for it.
Also here: `find_repo_root`, the errors every git question shares, and `COMMAND_TIMEOUT`.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from datum_dot.errors import GitError, NotARepositoryError

if TYPE_CHECKING:
    from git import Repo


# Local git commands finish in milliseconds; the limit only stops a checkout stuck in a filter
# (git-lfs smudge over a dead network, say) from hanging a scheduled run for ever.
COMMAND_TIMEOUT = 600.0

# Variables that tell git which repository, index or object store to use. A parent git process
# sets them for hooks and `rebase --exec`, and they would then point our calls at the wrong
# repository (GIT_INDEX_FILE from a pre-commit hook would even make `worktree add` write the
# user's index). Config, identity, ssh and GitPython's own variables are kept on purpose.
_REPO_LOCATING_VARS = frozenset(
    {
        "GIT_DIR",
        "GIT_WORK_TREE",
        "GIT_INDEX_FILE",
        "GIT_OBJECT_DIRECTORY",
        "GIT_ALTERNATE_OBJECT_DIRECTORIES",
        "GIT_COMMON_DIR",
        "GIT_IMPLICIT_WORK_TREE",
        "GIT_GRAFT_FILE",
        "GIT_SHALLOW_FILE",
        "GIT_NO_REPLACE_OBJECTS",
        "GIT_REPLACE_REF_BASE",
        "GIT_PREFIX",
        "GIT_NAMESPACE",
        "GIT_CEILING_DIRECTORIES",
        "GIT_DISCOVERY_ACROSS_FILESYSTEM",
        "GIT_QUARANTINE_PATH",
        "GIT_INTERNAL_SUPER_PREFIX",
    }
)
# GitPython builds each child's environment from os.environ and can add or override variables
# but never remove one, and `Repo()` itself reads GIT_WORK_TREE and GIT_COMMON_DIR. So when any
# is set, they are lifted out of os.environ for the duration of a call and put back after. The
# lock keeps concurrent calls from restoring them under each other; re-entrant because calls nest.
_ENV_LOCK = threading.RLock()


def find_repo_root(path: Path) -> Path | None:
    """Return the top folder of the git work tree that contains `path`.

    Args:
        path: A file or folder; a path that does not exist yet is looked up from its nearest
            existing parent.

    Returns:
        The work tree's top folder (symlinks resolved), or None outside any work tree (or in a
        bare repository).

    Raises:
        GitError: The folder cannot be read at all (being outside a repository is not an error).
    """
    from git import InvalidGitRepositoryError, NoSuchPathError

    start = path.absolute()
    while not start.exists() and start != start.parent:
        start = start.parent
    if not start.is_dir():
        start = start.parent
    with scrubbed_environ():
        try:
            repo = open_repo(start, search_parent_directories=True)
        except (InvalidGitRepositoryError, NoSuchPathError):
            return None
        except OSError as e:
            raise GitError(f"cannot read {start} to find its git repository: {e}") from e
        try:
            top = repo.working_tree_dir
        finally:
            repo.close()
    return Path(top).resolve() if top else None


@contextmanager
def scrubbed_environ() -> Iterator[None]:
    """Lift git's repository-locating variables out of `os.environ` for the block."""
    with _ENV_LOCK:
        lifted = {k: os.environ.pop(k) for k in list(os.environ) if k in _REPO_LOCATING_VARS}
        if lifted:
            # Hold the lock until they are back, so no other call sees them half-restored.
            try:
                yield
            finally:
                os.environ.update(lifted)
            return
    # Nothing to lift (the usual case): run without serializing other threads' git calls.
    yield


@contextmanager
def session(repo_root: Path, *, exact: bool = False) -> Iterator[Repo]:
    """Open the repository at `repo_root` for the block, with a clean git environment.

    Git's repository-locating variables (`GIT_DIR`, `GIT_INDEX_FILE`, ...) are lifted out of the
    environment for the block, git never prompts for credentials, and the repository is closed
    afterwards. Every git call of the product goes through here.

    Args:
        repo_root: A folder inside the repository.
        exact: Open `repo_root` itself only, without searching its parents (to ask a
            worktree, not the repository around it).

    Yields:
        The open GitPython repository.

    Raises:
        NotARepositoryError: `repo_root` is not in (with `exact`, not the top of) a git
            repository.
    """
    from git import InvalidGitRepositoryError, NoSuchPathError

    with scrubbed_environ():
        try:
            repo = open_repo(repo_root, search_parent_directories=not exact)
        except (InvalidGitRepositoryError, NoSuchPathError) as e:
            raise NotARepositoryError(
                f"not a git repository: {repo_root}",
                hint="cd into the git repository of your dbt project, "
                "or make one there: git init && git add -A && git commit -m 'dbt project'",
            ) from e
        repo.git.update_environment(GIT_TERMINAL_PROMPT="0")
        try:
            yield repo
        finally:
            repo.close()


def open_repo(path: Path, *, search_parent_directories: bool) -> Repo:
    """`Repo(path)` with `path` taken literally: a folder may be named `$HOME` or `~x`.

    Raises:
        InvalidGitRepositoryError: `path` is not in a repository.
        NoSuchPathError: `path` does not exist.
    """
    from git import Repo

    repo = Repo(
        path.absolute(),  # GitPython expands a leading `~` even without expand_vars
        search_parent_directories=search_parent_directories,
        expand_vars=False,
    )
    # The command wrapper expands `$VAR` and `~` in its folder with no way to say otherwise
    # (gitpython-developers/GitPython#664), and when the expanded folder does not exist it runs
    # git in the current folder: a repository under a folder named `$HOME` would have its git
    # commands run in whatever repository the process stands in.
    repo.git._working_dir = repo.working_dir
    return repo


def raise_if_untrusted(stderr: str, repo_root: Path) -> None:
    """Raise `GitError` with git's fix when `stderr` says the repository's owner is not trusted."""
    if "dubious ownership" in stderr:
        raise GitError(
            f"git refuses to work in {repo_root}: it is owned by another user",
            hint=f"git config --global --add safe.directory {repo_root}",
        )


def git_error(what: str, e: Exception, repo_root: Path) -> GitError:
    """A `GitError` for a failed git command, holding git's stderr (raises for distrust)."""
    stderr = str(getattr(e, "stderr", "") or e).strip()
    raise_if_untrusted(stderr, repo_root)
    return GitError(f"{what}: {stderr}", hint=f"run `git -C {repo_root} status` to check it")
