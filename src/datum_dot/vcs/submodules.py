"""Submodules of a build worktree, checked out at the commits the superproject recorded."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from datum_dot.errors import WorktreeError
from datum_dot.vcs.session import COMMAND_TIMEOUT, session

if TYPE_CHECKING:
    from git import Repo


def update_submodules(worktree: Path) -> None:
    """Check out, in a build worktree, the submodules its commit records, at their recorded commits.

    Each gitlink in the commit's tree is cloned (recursively, with its own submodules) and
    checked out detached at the commit the superproject recorded. The repository's shared config
    is left alone: `git submodule init` would write each submodule's URL and `active` flag into
    the user's `.git/config`, so instead `submodule.active` is set for this one command, and git
    takes the URL from the user's config where they set one, else from `.gitmodules`.
    Credentials are never prompted for. A commit without `.gitmodules` costs one `stat`.

    Args:
        worktree: The top of a build worktree, checked out at the commit being built.

    Raises:
        WorktreeError: A submodule could not be fetched or checked out; the message names it
            and holds git's reason.
        NotARepositoryError: `worktree` is not the top of a worktree.
    """
    if not (worktree / ".gitmodules").is_file():
        return
    with session(worktree, exact=True) as repo:
        declared = _declared_submodules(repo)
        for path in _gitlinks(repo):
            _update_submodule(repo, worktree, path, declared.get(path))


def _gitlinks(repo: Repo) -> list[str]:
    """The paths at which HEAD's tree records a submodule commit."""
    out = str(
        repo.git.ls_tree("-r", "-z", "--full-tree", "HEAD", kill_after_timeout=COMMAND_TIMEOUT)
    )
    links = []
    for entry in out.split("\0"):
        meta, _, path = entry.partition("\t")
        if meta.split(" ")[1:2] == ["commit"]:
            links.append(path)
    return links


def _declared_submodules(repo: Repo) -> dict[str, tuple[str, str]]:
    """`.gitmodules` as path -> (name, url)."""
    status, out, _err = repo.git.config(
        "--file",
        ".gitmodules",
        "-z",
        "--get-regexp",
        r"^submodule\..*\.(path|url)$",
        with_extended_output=True,
        with_exceptions=False,
        kill_after_timeout=COMMAND_TIMEOUT,
    )
    values: dict[tuple[str, str], str] = {}
    for entry in str(out).split("\0") if status == 0 else []:
        key, _, value = entry.partition("\n")
        name, _, field = key.removeprefix("submodule.").rpartition(".")
        if name:
            values[name, field] = value
    return {
        values[name, "path"]: (name, values.get((name, "url"), ""))
        for name, field in values
        if field == "path"
    }


def _update_submodule(
    repo: Repo, worktree: Path, path: str, declared: tuple[str, str] | None
) -> None:
    from git import GitCommandError

    try:
        status, _, err = repo.git(c="submodule.active=.").submodule(
            "update",
            "--recursive",
            "--",
            path,
            with_extended_output=True,
            with_exceptions=False,
            kill_after_timeout=COMMAND_TIMEOUT,
        )
    except GitCommandError as e:  # GitPython raises on a kill even without exceptions
        status, err = e.status if isinstance(e.status, int) else -1, str(e.stderr or e)
    if status == 0:
        return
    detail = _first_complaint(str(err)) or f"git exited {status}"
    url = f" from {declared[1]}" if declared and declared[1] else ""
    if declared is None:
        hint = (
            f"add '{path}' to .gitmodules with its url (git submodule add URL {path}), or remove it"
        )
    elif "transport 'file' not allowed" in detail:
        hint = (
            f"git refuses local-path submodules by default; if you trust '{path}'{url}, "
            "allow them: git config --global protocol.file.allow always"
        )
    else:
        hint = (
            f"check that git can fetch submodule '{path}'{url} and that its recorded commit is "
            f"pushed: git submodule update --init --recursive -- {path}"
        )
    raise WorktreeError(
        f"submodule '{path}' could not be checked out in the build worktree {worktree}: {detail}",
        hint=hint,
    )


def _first_complaint(stderr: str) -> str:
    """git's first `fatal:` or `error:` line (the cause; later ones repeat it), else its last."""
    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    for line in lines:
        for prefix in ("fatal: ", "error: "):
            if line.startswith(prefix):
                return line.removeprefix(prefix)[:400]
    return lines[-1][:400] if lines else ""
