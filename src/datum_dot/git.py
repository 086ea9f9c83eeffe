"""Every question the product asks git, one small function each.

This is the only module that talks to git. It uses GitPython, and reaches raw git only through
GitPython's command wrapper (`repo.git.<command>(...)`) with list arguments. GitPython is imported
inside functions so that `dot --help` never pays for it.

Worktrees made here are always detached: no branch gets locked, and the user's own working tree,
index and HEAD are never touched. Callers serialize `ensure_worktree` for one path with a file lock
(see `datum_dot.locks`).

The module is longer than the house norm on purpose: it is the one owner of git, and worktree
repair is most of it. If it grows further, the worktree half is the piece to split out.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, NewType

from datum_dot.errors import GitError, RefNotFoundError, WorktreeError
from datum_dot.spec import check_ref

if TYPE_CHECKING:
    from git import Repo

Sha = NewType("Sha", str)
"""A full commit hash: 40 lowercase hex digits. Only this module makes one."""

_LOG = logging.getLogger(__name__)
_SHA_RE = re.compile(r"[0-9a-f]{40}")
_SHA256_RE = re.compile(r"[0-9a-f]{64}")
# Local git commands finish in milliseconds; the limit only stops a checkout stuck in a filter
# (git-lfs smudge over a dead network, say) from hanging a scheduled run for ever.
_TIMEOUT = 600.0

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
    from git import InvalidGitRepositoryError, NoSuchPathError, Repo

    start = path.absolute()
    while not start.exists() and start != start.parent:
        start = start.parent
    if not start.is_dir():
        start = start.parent
    with _scrubbed_environ():
        try:
            repo = Repo(start, search_parent_directories=True)
        except (InvalidGitRepositoryError, NoSuchPathError):
            return None
        except OSError as e:
            raise GitError(f"cannot read {start} to find its git repository: {e}") from e
        try:
            top = repo.working_tree_dir
        finally:
            repo.close()
    return Path(top).resolve() if top else None


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
    with _session(repo_root) as repo:
        status, out, err = repo.git.rev_parse(
            "--verify",
            "--quiet",
            "--end-of-options",
            f"{ref}^{{commit}}",
            with_extended_output=True,
            with_exceptions=False,
            kill_after_timeout=_TIMEOUT,
        )
    if status != 0:
        _raise_if_untrusted(str(err), repo_root)
        _LOG.debug("git rev-parse %r failed (%s): %s", ref, status, err)
        raise RefNotFoundError(
            f"commit not found: git ref '{ref}' did not resolve to a commit",
            hint=f"check the name with `git show {ref}`; "
            "if it is on a remote, run `git fetch` first",
        )
    return _as_sha(str(out).strip())


def short_hash(sha: Sha, length: int = 8) -> str:
    """Return a fixed-length prefix of a commit hash.

    Unlike `git rev-parse --short`, the length never grows with the repository, so schema names
    and build folders stay stable.

    Args:
        sha: A full commit hash.
        length: How many hex digits to keep, 4 to 40.

    Returns:
        The first `length` characters of `sha`.

    Raises:
        ValueError: `length` is out of range or `sha` is not a full hash.
    """
    if not 4 <= length <= 40:
        raise ValueError(f"short hash length must be between 4 and 40, got {length}")
    if not _SHA_RE.fullmatch(sha):
        raise ValueError(f"not a full commit hash: {sha!r}")
    return sha[:length]


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
    sha = _checked_sha(sha)
    with _session(repo_root) as repo:
        return _object_type(repo, sha) == "commit"


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
    spec = f"{_checked_sha(sha)}:{_repo_relpath(relpath)}"
    with _session(repo_root) as repo:
        return _object_type(repo, spec) == "blob"


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
    spec = f"{_checked_sha(sha)}:{_repo_relpath(relpath)}"
    with _session(repo_root) as repo:
        if _object_type(repo, spec) != "blob":
            return None
        status, out, _err = repo.git.cat_file(
            "blob",
            spec,
            with_extended_output=True,
            with_exceptions=False,
            strip_newline_in_stdout=False,
            kill_after_timeout=_TIMEOUT,
        )
    return str(out) if status == 0 else None


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

    sha = _checked_sha(sha)
    with _session(repo_root) as repo:
        try:
            out = repo.git.for_each_ref(
                f"--points-at={sha}",
                "--format=%(refname:short)",
                "refs/heads",
                "refs/tags",
                kill_after_timeout=_TIMEOUT,
            )
        except GitCommandError as e:
            raise _git_error(f"could not list the refs pointing at {sha}", e, repo_root) from e
    return [line for line in str(out).splitlines() if line]


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
    with _session(repo_root) as repo:
        return _ignored(repo, target)


def remote_names(repo_root: Path) -> list[str]:
    """The names of the repository's remotes (`git remote`), sorted.

    Raises:
        GitError: `repo_root` is not in a git repository.
    """
    with _session(repo_root) as repo:
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

    with _session(repo_root) as repo:
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


def prune_worktrees(repo_root: Path) -> None:
    """Drop git's records of worktrees whose folders are gone (`git worktree prune`).

    Args:
        repo_root: A folder inside the repository.

    Raises:
        GitError: `repo_root` is not in a git repository.
        WorktreeError: git could not prune.
    """
    with _session(repo_root) as repo:
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
    with _session(repo_root) as repo:
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
    sha = _checked_sha(sha)
    path = path.absolute().resolve()
    with _session(repo_root) as repo:
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


# --- sessions and errors -------------------------------------------------------------------


@contextmanager
def _scrubbed_environ() -> Iterator[None]:
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
def _session(repo_root: Path, *, exact: bool = False) -> Iterator[Repo]:
    """Open the repository at `repo_root` with a clean git environment for the block."""
    from git import InvalidGitRepositoryError, NoSuchPathError, Repo

    with _scrubbed_environ():
        try:
            repo = Repo(repo_root, search_parent_directories=not exact)
        except (InvalidGitRepositoryError, NoSuchPathError) as e:
            raise GitError(
                f"not a git repository: {repo_root}",
                hint="run dot inside the git repository of your dbt project "
                "(or `git init` one there)",
            ) from e
        repo.git.update_environment(GIT_TERMINAL_PROMPT="0")
        try:
            yield repo
        finally:
            repo.close()


def _raise_if_untrusted(stderr: str, repo_root: Path) -> None:
    if "dubious ownership" in stderr:
        raise GitError(
            f"git refuses to work in {repo_root}: it is owned by another user",
            hint=f"git config --global --add safe.directory {repo_root}",
        )


def _git_error(what: str, e: Exception, repo_root: Path) -> GitError:
    stderr = str(getattr(e, "stderr", "") or e).strip()
    _raise_if_untrusted(stderr, repo_root)
    return GitError(f"{what}: {stderr}", hint=f"run `git -C {repo_root} status` to check it")


def _as_sha(text: str) -> Sha:
    if _SHA_RE.fullmatch(text):
        return Sha(text)
    if _SHA256_RE.fullmatch(text):
        raise GitError(
            f"commit {text} uses SHA-256 object names, which dot does not support yet",
            hint="use a repository with SHA-1 object names",
        )
    raise GitError(f"git returned {text!r} where a commit hash was expected")


def _checked_sha(sha: str) -> Sha:
    # A Sha reaches git as a bare argument; checking it keeps anything else from doing so.
    if not _SHA_RE.fullmatch(sha):
        raise ValueError(f"not a full commit hash: {sha!r}")
    return Sha(sha)


def _repo_relpath(relpath: str) -> str:
    # `<commit>:./x` would be read relative to git's current folder; normalize it away.
    clean = os.path.normpath(relpath).replace(os.sep, "/")
    if clean.startswith(("/", "../")) or clean in {"..", "."}:
        raise ValueError(f"path {relpath!r} is not a file path inside the repository")
    return clean


def _object_type(repo: Repo, name: str) -> str | None:
    status, out, _err = repo.git.cat_file(
        "-t",
        name,
        with_extended_output=True,
        with_exceptions=False,
        kill_after_timeout=_TIMEOUT,
    )
    return str(out).strip() if status == 0 else None


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
        with _session(path, exact=True) as wt:
            # Porcelain status leaves out ignored files, so dbt's target/ and logs/ are not changes.
            return str(wt.git.status("--porcelain", "-z", kill_after_timeout=_TIMEOUT))
    except (GitError, GitCommandError):
        return None


def _repair_in_place(path: Path, sha: Sha) -> bool:
    from git import GitCommandError

    try:
        with _session(path, exact=True) as wt:
            wt.git.checkout("--detach", "--force", sha, kill_after_timeout=_TIMEOUT)
            # -fd without -x: untracked files go, ignored ones (target/, dbt_packages/) stay.
            wt.git.clean("-fd", kill_after_timeout=_TIMEOUT)
            head = str(wt.git.rev_parse("HEAD", kill_after_timeout=_TIMEOUT)).strip()
    except (GitError, GitCommandError) as e:
        _LOG.info("repairing worktree %s in place failed, re-creating it: %s", path, e)
        return False
    return head == sha and _worktree_status(path) == ""


def _add_worktree(repo: Repo, path: Path, sha: Sha) -> None:
    from git import GitCommandError

    existed = path.exists()
    try:
        repo.git.worktree("add", "--detach", "--", str(path), sha, kill_after_timeout=_TIMEOUT)
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
        repo.git.worktree("remove", "--force", "--", str(entry.path), kill_after_timeout=_TIMEOUT)
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
        and (dotgit.is_file() or not any(path.iterdir()) or _ignored(repo, path))
    )
    if not looks_ours:
        raise WorktreeError(
            f"{path} exists but is not a worktree of this repository; dot will not delete it",
            hint=f"move it away or delete it yourself (rm -rf {path}), then run dot again",
        )
    shutil.rmtree(path)


def _ignored(repo: Repo, target: Path) -> bool:
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
        kill_after_timeout=_TIMEOUT,
    )
    if status in (0, 1):
        return bool(status == 0)
    _raise_if_untrusted(str(err), top)
    raise GitError(
        f"git check-ignore failed for {target}: {str(err).strip()}",
        hint=f"run `git -C {top} check-ignore -v {arg}` to see git's complaint",
    )


def _prune(repo: Repo) -> None:
    from git import GitCommandError

    try:
        repo.git.worktree("prune", kill_after_timeout=_TIMEOUT)
    except GitCommandError as e:
        raise WorktreeError(
            f"git worktree prune failed in {repo.working_dir}: {str(e.stderr).strip()}",
            hint=f"run `git -C {repo.working_dir} worktree prune -v` to see git's complaint",
        ) from e
