"""A repository's remotes: their names, and `git fetch` of all of them."""

from __future__ import annotations

from pathlib import Path

from datum_dot.errors import GitError
from datum_dot.vcs.session import session


def remote_names(repo_root: Path) -> list[str]:
    """The names of the repository's remotes (`git remote`), sorted.

    Raises:
        GitError: `repo_root` is not in a git repository.
    """
    with session(repo_root) as repo:
        return sorted(remote.name for remote in repo.remotes)


def fetch(repo_root: Path, *, timeout: float) -> None:
    """Update every remote's branches and tags (`git fetch --all --prune --tags`).

    Local branches, the index and the work tree are left alone: only remote-tracking branches
    (`origin/main`) and tags move. Credentials are never prompted for.

    Args:
        repo_root: A folder inside the repository.
        timeout: Seconds before git is stopped.

    Raises:
        GitError: `repo_root` is not in a git repository, git failed (the message holds its
            stderr), or it did not finish within `timeout`.
    """
    from git import GitCommandError

    with session(repo_root) as repo:
        try:
            status, _, err = repo.git.fetch(
                "--all",
                "--prune",
                "--tags",
                "--quiet",
                with_extended_output=True,
                with_exceptions=False,
                kill_after_timeout=timeout,
            )
        except GitCommandError as e:  # GitPython raises on a kill even without exceptions
            status, err = e.status if isinstance(e.status, int) else -1, str(e.stderr or e)
    if status != 0:
        detail = " ".join(str(err).split())[-400:] or f"exit {status}"
        if "Timeout" in detail or "timed out" in detail:
            detail = f"did not finish within {timeout:g}s ({detail})"
        raise GitError(
            f"git fetch failed in {repo_root}: {detail}",
            hint=f"run `git -C {repo_root} fetch --all` by hand to see why (network, "
            "credentials, a remote that moved)",
        )
