"""What dot owns under a project's `.dot/`, and the proof it asks before changing anything there.

dot deletes, resets, checks out or cleans only folders it can prove it made: real directories
(never a symbolic link, at any level from the project folder down) inside the project's own
`.dot/`, which git does not track. Everything else found there is foreign and left alone.

Deletion never follows a link: `remove_tree` opens every folder from `/` down with
`O_NOFOLLOW` and removes relative to the verified parent's descriptor, so a link planted
between a check and the delete cannot redirect it. See ADR 0010.
"""

from __future__ import annotations

import errno
import os
import shutil
import stat
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from datum_dot.errors import OwnershipError
from datum_dot.vcs import git

DOT_DIR = ".dot"
_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


def kind_of(path: Path) -> str:
    """What is at `path`, links not followed: `missing`, `link`, `dir` or `file`.

    Raises:
        OwnershipError: The path cannot be examined (a permission problem, say).
    """
    try:
        mode = os.lstat(path).st_mode
    except (FileNotFoundError, NotADirectoryError):
        return "missing"
    except OSError as e:
        raise OwnershipError(
            f"cannot examine {path}: {e.strerror}", hint=f"check its permissions: ls -ld {path}"
        ) from e
    if stat.S_ISLNK(mode):
        return "link"
    return "dir" if stat.S_ISDIR(mode) else "file"


def foreign_reason(path: Path) -> str | None:
    """Why `path` is not a real folder dot could use (None when it is one or is missing)."""
    kind = kind_of(path)
    if kind == "link":
        return f"{path} is a symbolic link"
    if kind == "file":
        return f"{path} is a file, not a folder"
    return None


def require_real_dirs(root: Path, *parts: str, create: bool = False) -> Path:
    """Walk from `root` down `parts`, each a real folder (not a link), creating missing ones.

    Args:
        root: A trusted folder (the dbt project folder).
        parts: The folder names below it, outermost first (`.dot`, `build`, `<hash>`).
        create: Create missing folders (mode 0700); without it a missing one is an error.

    Returns:
        The innermost folder.

    Raises:
        OwnershipError: A part is a symbolic link or a file, is missing (without `create`),
            or cannot be created.
    """
    path = root
    for part in parts:
        path = path / part
        kind = kind_of(path)
        if kind == "missing" and create:
            kind = _make_dir(path)
        if kind == "link":
            raise OwnershipError(
                f"{path} is a symbolic link; dot never writes, cleans or deletes through a link",
                hint=f"remove the link (its target is left alone): rm {path}",
            )
        if kind == "file":
            raise OwnershipError(
                f"{path} is a file where dot keeps a folder",
                hint=f"move it out of the way: mv {path} {path}.moved",
            )
        if kind == "missing":
            raise OwnershipError(f"{path} does not exist", hint="run the build again")
    return path


def is_real_path(path: Path) -> bool:
    """Whether `path` is absolute and no part of it is a symbolic link."""
    return path.is_absolute() and os.path.realpath(path) == os.path.normpath(path)


def is_below_without_links(root: Path, path: Path) -> bool:
    """Whether `path`, inside `root`, is reached from `root` without going through a link."""
    real_root = Path(os.path.realpath(root))
    try:
        below = path.absolute().relative_to(root.absolute())
    except ValueError:
        return False
    return os.path.realpath(path) == os.path.normpath(real_root / below)


def remove_tree(path: Path) -> None:
    """Delete the folder `path` and everything in it, following no link at any level.

    Every folder from `/` to the parent of `path` is opened with `O_NOFOLLOW`, and the tree is
    removed relative to the parent's descriptor by `shutil.rmtree`'s descriptor-based walk, which
    unlinks a link it meets instead of entering it.

    Raises:
        OwnershipError: `path` is not absolute, a part of it is a link or a file, or the
            removal failed.
    """
    if not path.is_absolute() or path.name in ("", ".", ".."):
        raise OwnershipError(f"refusing to delete {path}: not an absolute folder path")
    kind = kind_of(path)
    if kind == "missing":
        return
    if kind != "dir":
        raise OwnershipError(
            f"refusing to delete {path}: it is a {'symbolic link' if kind == 'link' else 'file'}",
            hint=f"look at it yourself: ls -ld {path}",
        )
    try:
        with _open_nofollow(path.parent) as parent:
            shutil.rmtree(path.name, dir_fd=parent)
    except OSError as e:
        raise OwnershipError(
            f"could not delete {path}: {e.strerror or e}",
            hint=f"look at it yourself: ls -la {path}",
        ) from e


@contextmanager
def _open_nofollow(folder: Path) -> Iterator[int]:
    """A descriptor of `folder`, reached from `/` without following any link."""
    fd = os.open("/", _DIR_FLAGS)
    try:
        for part in folder.parts[1:]:
            try:
                child = os.open(part, _DIR_FLAGS, dir_fd=fd)
            except OSError as e:
                if e.errno in (errno.ELOOP, errno.ENOTDIR):
                    raise OwnershipError(
                        f"refusing to go through {folder}: a part of it is a symbolic link or "
                        "a file",
                        hint=f"look at each part of the path: namei -l {folder}",
                    ) from e
                raise
            os.close(fd)
            fd = child
        yield fd
    finally:
        os.close(fd)


def _make_dir(path: Path) -> str:
    try:
        path.mkdir(mode=0o700)
    except FileExistsError:
        pass
    except OSError as e:
        raise OwnershipError(
            f"cannot create {path}: {e.strerror}",
            hint=f"check the permissions of {path.parent}: ls -ld {path.parent}",
        ) from e
    return kind_of(path)


def check_dot_dir(project_dir: Path, repo_root: Path | None, *, commit: str | None = None) -> None:
    """Refuse a `.dot` that is a link or a file, or that git tracks.

    Args:
        project_dir: The dbt project folder.
        repo_root: The top of its git work tree (None outside one: only the link check runs).
        commit: Also refuse when this commit (a full hash) has files under `.dot`.

    Raises:
        OwnershipError: `.dot` is a symbolic link or a file, or git tracks files under it.
        GitError: git could not be asked.
    """
    dot = project_dir / DOT_DIR
    kind = kind_of(dot)
    if kind == "link":
        raise OwnershipError(
            f"{dot} is a symbolic link; dot keeps its builds only in a real .dot folder of "
            "the project, so it will not write, clean or delete through it",
            hint=f"remove the link (its target is left alone): rm {dot}",
        )
    if kind == "file":
        raise OwnershipError(
            f"{dot} is a file where dot keeps its build folders",
            hint=f"move it out of the way: mv {dot} {dot}.moved",
        )
    if repo_root is None:
        return
    rel = (project_dir.relative_to(repo_root) / DOT_DIR).as_posix()
    tracked = git.tracked_paths(repo_root, rel)
    if tracked:
        raise OwnershipError(
            f"git tracks {_some(tracked)} under {dot}; .dot holds only dot's own build "
            "folders, never committed",
            hint=f"stop tracking it (the files stay on disk), then commit: "
            f"git -C {project_dir} rm -r --cached --quiet -- {DOT_DIR}",
        )
    if commit is not None:
        tracked = git.tracked_paths(repo_root, rel, git.validate_sha(commit))
        if tracked:
            raise OwnershipError(
                f"commit {commit[:12]} tracks {_some(tracked)} under {rel}; dot will not "
                "build a commit that puts files into its .dot folder",
                hint=f"untrack .dot and commit, then build the new commit: "
                f"git -C {project_dir} rm -r --cached --quiet -- {DOT_DIR}",
            )


def _some(paths: list[str]) -> str:
    more = f" and {len(paths) - 1} more" if len(paths) > 1 else ""
    return f"{paths[0]}{more}"
