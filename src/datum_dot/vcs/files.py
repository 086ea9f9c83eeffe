"""Files as git knows them: read from a commit without checking it out, or listed as tracked."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from datum_dot.errors import GitError
from datum_dot.vcs.commits import object_type
from datum_dot.vcs.session import COMMAND_TIMEOUT, git_error, session
from datum_dot.vcs.sha import Sha, validate_sha


def path_in_commit(repo_root: Path, sha: Sha, relpath: str) -> bool:
    """Tell whether a file exists at `relpath` in commit `sha`.

    Args:
        repo_root: A folder inside the repository.
        sha: A full commit hash.
        relpath: A path relative to the repository's top, with '/' separators
            (for example `analytics/dbt_project.yml`).

    Returns:
        True when the commit has a file (or symlink) at that path; False for folders,
        submodules and missing paths.

    Raises:
        ValueError: `relpath` is absolute or climbs out of the repository, or `sha` is not a
            full commit hash.
        GitError: `repo_root` is not in a git repository.
    """
    spec = f"{validate_sha(sha)}:{repo_relpath(relpath)}"
    with session(repo_root) as repo:
        return object_type(repo, spec) == "blob"


def read_file_at(repo_root: Path, sha: Sha, relpath: str) -> str | None:
    """Read a file's text as of commit `sha`, without checking the commit out.

    Args:
        repo_root: A folder inside the repository.
        sha: A full commit hash.
        relpath: A path relative to the repository's top, with '/' separators.

    Returns:
        The file's text (UTF-8), or None when the commit has no file at that path.

    Raises:
        ValueError: `relpath` is absolute or climbs out of the repository, or `sha` is not a
            full commit hash.
        GitError: `repo_root` is not in a git repository.
    """
    spec = f"{validate_sha(sha)}:{repo_relpath(relpath)}"
    with session(repo_root) as repo:
        if object_type(repo, spec) != "blob":
            return None
        status, out, _err = repo.git.cat_file(
            "blob",
            spec,
            with_extended_output=True,
            with_exceptions=False,
            strip_newline_in_stdout=False,
            kill_after_timeout=COMMAND_TIMEOUT,
        )
    return str(out) if status == 0 else None


def read_files_at(repo_root: Path, sha: Sha, relpaths: Sequence[str]) -> dict[str, str | None]:
    """Read several files' text as of commit `sha` in one session, without checking it out.

    Like `read_file_at` for each path, but the commit's trees and blobs are read through one
    long-lived `git cat-file --batch` (GitPython's object database) instead of two git
    processes per file: a plan reads several settings files of the commit it builds.

    Args:
        repo_root: A folder inside the repository.
        sha: A full commit hash.
        relpaths: Paths relative to the repository's top, with '/' separators.

    Returns:
        Each path's text (UTF-8; an undecodable byte is replaced), or None where the commit
        has no file (folders and submodules count as no file).

    Raises:
        ValueError: A path is absolute or climbs out of the repository, or `sha` is not a full
            commit hash.
        GitError: `repo_root` is not in a git repository, or the commit cannot be read.
    """
    from git import BadName, BadObject

    sha = validate_sha(sha)
    clean = {rel: repo_relpath(rel) for rel in relpaths}
    found: dict[str, str | None] = {}
    with session(repo_root) as repo:
        try:
            tree = repo.commit(sha).tree
        except (BadName, BadObject, ValueError) as e:
            raise GitError(f"cannot read commit {sha} in {repo_root}: {e}") from e
        for rel, path in clean.items():
            try:
                item = tree / path
            except KeyError:
                found[rel] = None
                continue
            is_file = item.type == "blob"
            found[rel] = item.data_stream.read().decode("utf-8", "replace") if is_file else None
    return found


def tracked_paths(repo_root: Path, relpath: str, sha: Sha | None = None) -> list[str]:
    """List the files git tracks at or under `relpath`: in the index, or in commit `sha`.

    Args:
        repo_root: A folder inside the repository.
        relpath: A path relative to the repository's top, with '/' separators.
        sha: A commit to look in instead of the index.

    Returns:
        The tracked paths (relative to the top), a symlink or submodule counting as one.

    Raises:
        ValueError: `relpath` climbs out of the repository, or `sha` is not a full hash.
        GitError: `repo_root` is not in a git repository, or git failed.
    """
    from git import GitCommandError

    rel = repo_relpath(relpath)
    with session(repo_root) as repo:
        try:
            if sha is None:
                out = repo.git.ls_files(
                    "-z", "--cached", "--", rel, kill_after_timeout=COMMAND_TIMEOUT
                )
            else:
                out = repo.git.ls_tree(
                    "-r",
                    "-z",
                    "--name-only",
                    validate_sha(sha),
                    "--",
                    rel,
                    kill_after_timeout=COMMAND_TIMEOUT,
                )
        except GitCommandError as e:
            raise git_error(f"could not list the files git tracks in {rel}", e, repo_root) from e
    return [name for name in str(out).split("\0") if name]


def repo_relpath(relpath: str) -> str:
    """A path inside the repository, normalized, with '/' separators.

    Raises:
        ValueError: It is absolute or climbs out of the repository.
    """
    # `<commit>:./x` would be read relative to git's current folder; normalize it away.
    clean = os.path.normpath(relpath).replace(os.sep, "/")
    if clean.startswith(("/", "../")) or clean in {"..", "."}:
        raise ValueError(f"path {relpath!r} is not a file path inside the repository")
    return clean
