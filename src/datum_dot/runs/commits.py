"""The commits a run's spec names, asked of git on behalf of the scheduler and the webhook.

The scheduler and the webhook never call git themselves (an import contract says so): they ask
here which repository holds a project, which commit a ref names now, and to fetch before a
scheduled build. Each function is the git adapter's answer (`vcs.git`), unchanged.
"""

from __future__ import annotations

from pathlib import Path

from datum_dot.vcs import git

Sha = git.Sha
"""A full commit hash, as git's adapter types it."""


def find_repo_root(project_dir: Path) -> Path | None:
    """The top folder of the git work tree holding `project_dir`, or None outside one.

    Raises:
        GitError: The folder cannot be read at all.
    """
    return git.find_repo_root(project_dir)


def resolve_commit(repo_root: Path, ref: str) -> git.Sha:
    """The full hash of the commit `ref` names in the repository at `repo_root`.

    Raises:
        SpecError: The ref starts with '-' or holds a control character.
        RefNotFoundError: The ref does not name a commit in this repository.
        GitError: `repo_root` is not in a git repository, or git itself failed.
    """
    return git.resolve_commit(repo_root, ref)


def has_remote(repo_root: Path) -> bool:
    """True when the repository has a remote to fetch from.

    Raises:
        GitError: `repo_root` is not in a git repository.
    """
    return bool(git.remote_names(repo_root))


def fetch(repo_root: Path, *, timeout: float) -> None:
    """Update every remote's branches and tags (`git fetch --all --prune --tags`).

    Raises:
        GitError: git failed or did not finish within `timeout`.
    """
    git.fetch(repo_root, timeout=timeout)
