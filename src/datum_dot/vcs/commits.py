"""Questions about commits: resolve a ref (the only place a `Sha` is made from user input),
whether a commit exists, and the branches and tags pointing at one.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING

from datum_dot.errors import RefNotFoundError
from datum_dot.vcs.refs import check_ref
from datum_dot.vcs.session import COMMAND_TIMEOUT, git_error, raise_if_untrusted, session
from datum_dot.vcs.sha import Sha, as_sha, validate_sha

if TYPE_CHECKING:
    from git import Repo

_LOG = logging.getLogger(__name__)


def resolve_commit(repo_root: Path, ref: str) -> Sha:
    """Resolve a git ref to the full hash of the commit it names.

    Uses `git rev-parse --verify --end-of-options <ref>^{commit}`, so every form git accepts
    works (branches, tags, short hashes, `HEAD~1`, `HEAD@{1}`, `@{-1}`, `main@{upstream}`), an
    annotated tag gives its commit rather than the tag object, and a ref can never pose as a flag.

    Args:
        repo_root: A folder inside the repository.
        ref: The ref as the user wrote it.

    Returns:
        The commit's full hash.

    Raises:
        SpecError: The ref starts with '-' or holds a control character.
        RefNotFoundError: The ref does not name a commit in this repository.
        GitError: `repo_root` is not in a git repository, or git itself failed.
    """
    check_ref(ref)
    with session(repo_root) as repo:
        status, out, err = repo.git.rev_parse(
            "--verify",
            "--quiet",
            "--end-of-options",
            f"{ref}^{{commit}}",
            with_extended_output=True,
            with_exceptions=False,
            kill_after_timeout=COMMAND_TIMEOUT,
        )
    if status != 0:
        raise_if_untrusted(str(err), repo_root)
        _LOG.debug("git rev-parse %r failed (%s): %s", ref, status, err)
        raise RefNotFoundError(
            f"commit not found: git ref '{ref}' did not resolve to a commit",
            hint=f"check the name with `git show {ref}`; "
            "if it is on a remote, run `git fetch` first",
        )
    return as_sha(str(out).strip())


def has_commit(repo_root: Path, sha: Sha) -> bool:
    """Tell whether the repository holds the commit `sha`.

    Args:
        repo_root: A folder inside the repository.
        sha: A full commit hash.

    Returns:
        True when the object exists and is a commit.

    Raises:
        ValueError: `sha` is not a full commit hash.
        GitError: `repo_root` is not in a git repository.
    """
    sha = validate_sha(sha)
    with session(repo_root) as repo:
        return object_type(repo, sha) == "commit"


def refs_pointing_at(repo_root: Path, sha: Sha) -> list[str]:
    """List the branches and tags whose commit is `sha`.

    Args:
        repo_root: A folder inside the repository.
        sha: A full commit hash.

    Returns:
        Short names (`main`, `v1.2`), branches first, each group sorted; an annotated tag counts
        when the commit it tags is `sha`. A name that is both a branch and a tag is shown as
        `heads/<name>` and `tags/<name>`, as git shows it.

    Raises:
        ValueError: `sha` is not a full commit hash.
        GitError: `repo_root` is not in a git repository, or git failed.
    """
    from git import GitCommandError

    sha = validate_sha(sha)
    with session(repo_root) as repo:
        try:
            out = repo.git.for_each_ref(
                f"--points-at={sha}",
                "--format=%(refname:short)",
                "refs/heads",
                "refs/tags",
                kill_after_timeout=COMMAND_TIMEOUT,
            )
        except GitCommandError as e:
            raise git_error(f"could not list the refs pointing at {sha}", e, repo_root) from e
    return [line for line in str(out).splitlines() if line]


def object_type(repo: Repo, name: str) -> str | None:
    """The type git gives an object name (`commit`, `blob`, ...), or None when it names nothing."""
    status, out, _err = repo.git.cat_file(
        "-t",
        name,
        with_extended_output=True,
        with_exceptions=False,
        kill_after_timeout=COMMAND_TIMEOUT,
    )
    return str(out).strip() if status == 0 else None
