"""Every question the product asks git, one small function each.

This is the only module, with `datum_dot.vcs.worktrees`, that talks to git. It uses GitPython, and
reaches raw git only through GitPython's command wrapper (`repo.git.<command>(...)`) with list
arguments. GitPython is imported inside functions so that `dot --help` never pays for it.

`session` is the one way to open a repository (it lifts git's repository-locating variables out of
the environment and never prompts for credentials); `datum_dot.vcs.worktrees` builds on it and on
`validate_sha`, `is_ignored_in` and `COMMAND_TIMEOUT`.

About 680 lines, over the house norm: most of it is docstrings of small, independent functions,
one per question, and the session that every one of them shares.
"""

from __future__ import annotations

import logging
import os
import re
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, NewType

from datum_dot.errors import GitError, NotARepositoryError, RefNotFoundError, WorktreeError
from datum_dot.vcs.refs import check_ref

if TYPE_CHECKING:
    from git import Repo

Sha = NewType("Sha", str)
"""A full commit hash: 40 lowercase hex digits. Only this module makes one."""

_LOG = logging.getLogger(__name__)
_SHA_RE = re.compile(r"[0-9a-f]{40}")
_SHA256_RE = re.compile(r"[0-9a-f]{64}")
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
    with _scrubbed_environ():
        try:
            repo = _open_repo(start, search_parent_directories=True)
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
    sha = validate_sha(sha)
    with session(repo_root) as repo:
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
    spec = f"{validate_sha(sha)}:{_repo_relpath(relpath)}"
    with session(repo_root) as repo:
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
    spec = f"{validate_sha(sha)}:{_repo_relpath(relpath)}"
    with session(repo_root) as repo:
        if _object_type(repo, spec) != "blob":
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
    clean = {rel: _repo_relpath(rel) for rel in relpaths}
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

    rel = _repo_relpath(relpath)
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
            raise _git_error(f"could not list the files git tracks in {rel}", e, repo_root) from e
    return [name for name in str(out).split("\0") if name]


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
    with session(repo_root) as repo:
        return is_ignored_in(repo, target)


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


# --- sessions and shared helpers -------------------------------------------------------------------


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

    with _scrubbed_environ():
        try:
            repo = _open_repo(repo_root, search_parent_directories=not exact)
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


def _open_repo(path: Path, *, search_parent_directories: bool) -> Repo:
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


def validate_sha(sha: str) -> Sha:
    """Check that `sha` is a full commit hash before it reaches git as a bare argument.

    Returns:
        `sha`, typed as a `Sha`.

    Raises:
        ValueError: `sha` is not 40 lowercase hex digits (so it could pose as a flag or a ref).
    """
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
        kill_after_timeout=COMMAND_TIMEOUT,
    )
    return str(out).strip() if status == 0 else None


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
    _raise_if_untrusted(str(err), top)
    raise GitError(
        f"git check-ignore failed for {target}: {str(err).strip()}",
        hint=f"run `git -C {top} check-ignore -v {arg}` to see git's complaint",
    )
