"""Files only their owner may read: atomic writes with the mode set before the rename.

Keys, the webhook token and `config.yaml` live under `$DATUM_HOME`. Each is written to a temp
file in the same folder, given its mode, flushed, and renamed over the old one, so a reader
never sees half a file and a secret is never readable by others, not even for a moment.

Everything under `$DATUM_HOME` is private, whatever the umask: folders 0700 (made with
`make_private_dirs`), files 0600, with no exception: lock files, the SQLite files and their -wal
and -shm, the session log, `cron.log` and the public keys too. Nothing there is a socket.
"""

from __future__ import annotations

import errno
import os
import shlex
import stat
import tempfile
from collections.abc import Mapping
from pathlib import Path

from datum_dot.errors import DatumHomeError
from datum_dot.home.settings import datum_home

PRIVATE_FILE_MODE = 0o600
PRIVATE_DIR_MODE = 0o700


def make_private_dirs(folder: Path) -> None:
    """Create `folder` and its missing parents, each with mode 0700.

    Raises:
        OSError: A folder could not be created.
    """
    missing: list[Path] = []
    while not folder.exists():
        missing.append(folder)
        folder = folder.parent
    for each in reversed(missing):
        each.mkdir(mode=PRIVATE_DIR_MODE, exist_ok=True)


def write_private(path: Path, data: bytes, *, mode: int = PRIVATE_FILE_MODE) -> None:
    """Write `data` to `path` atomically; the file has `mode` before it appears under its name.

    Raises:
        OSError: The folder is missing or not writable, or the disk is full.
    """
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            os.fchmod(f.fileno(), mode)
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        Path(tmp).replace(path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def file_mode(path: Path) -> int:
    """The permission bits of `path` (`0o600` for a private file).

    Raises:
        OSError: The file does not exist or cannot be examined.
    """
    return stat.S_IMODE(path.stat().st_mode)


def ensure_datum_home(home: Path, *, subdir: str = "") -> Path:
    """Make sure `$DATUM_HOME` (and `subdir` in it) exists and can be written.

    Args:
        home: The state folder.
        subdir: A folder inside it to create as well (`keys`).

    Returns:
        The folder (`home / subdir`).

    Raises:
        DatumHomeError: It cannot be created, or is not a writable folder.
    """
    folder = home / subdir if subdir else home
    try:
        make_private_dirs(folder)
    except OSError as e:
        raise unwritable_home(home, e) from e
    if not folder.is_dir() or not os.access(folder, os.W_OK | os.X_OK):
        raise unwritable_home(home, None, path=folder)
    return folder


def check_datum_home(environ: Mapping[str, str] | None = None) -> Path:
    """Resolve `$DATUM_HOME` and check that nothing but a folder stands where it is.

    A missing folder is fine (the first write makes it) and so is a read-only one (reading the
    history needs no write); a file in its place, or a `~user` that names nobody, is not: every
    read would otherwise find nothing there and say so as if all were well.

    Args:
        environ: The environment to read `DATUM_HOME` and `HOME` from (default `os.environ`).

    Returns:
        The folder.

    Raises:
        DatumHomeError: It cannot be resolved, or it (or a folder above it) is a file.
    """
    try:
        home = datum_home(environ)
    except RuntimeError as e:  # `~user` of no user, or no HOME and no password entry
        value = (os.environ if environ is None else environ).get("DATUM_HOME")
        why = (
            f"DATUM_HOME {value} starts with a '~' that names no user's home"
            if value
            else "DATUM_HOME is not set, and neither is HOME for its default ~/.datum"
        )
        raise DatumHomeError(
            f"cannot find the DATUM_HOME folder: {why}",
            "set DATUM_HOME to an absolute path: export DATUM_HOME=/path/to/folder",
        ) from e
    if _file_in_the_way(home) is not None:
        raise unwritable_home(home, None)
    return home


def home_error(home: Path, error: OSError) -> DatumHomeError | None:
    """The DatumHomeError an OSError met under `$DATUM_HOME` stands for, or None if none.

    It stands for one when it names `home`, a path inside it, or a folder above it that was
    being made, and is of a kind the folder's state explains: read-only, not permitted, full,
    or a file where a folder should be. Any other OSError is left for the caller to report.

    Args:
        home: The state folder.
        error: An OSError that reached the caller.

    Returns:
        The error to report instead, or None.
    """
    if error.errno not in _HOME_ERRNOS:
        return None
    named = [
        Path(os.fsdecode(f))
        for f in (error.filename, error.filename2)
        if isinstance(f, str | bytes)
    ]
    top = home.absolute()
    for path in named:
        absolute = path.absolute()
        if absolute.is_relative_to(top) or top.is_relative_to(absolute):
            return unwritable_home(home, error)
    return None


def unwritable_home(
    home: Path, error: OSError | None, *, path: Path | None = None
) -> DatumHomeError:
    """The error for a `$DATUM_HOME` that cannot be written (to raise from an OSError).

    Args:
        home: The state folder.
        error: What the write met, if it raised.
        path: The folder found unusable without an error (`home` or a folder in it).
    """
    named = (
        Path(os.fsdecode(error.filename))
        if error is not None and isinstance(error.filename, str | bytes)
        else None
    )
    blocker = _file_in_the_way(path or named or home)
    where = f"cannot write to DATUM_HOME {home}"
    if blocker is not None:
        moved = shlex.quote(f"{blocker}.bak")
        return DatumHomeError(
            f"{where}: {blocker} is a file, not a folder",
            f"move the file away (mv {shlex.quote(str(blocker))} {moved}), "
            "or point DATUM_HOME at a folder",
        )
    if (error is not None and error.errno == errno.EROFS) or _is_read_only(home):
        return DatumHomeError(
            f"{where}: it is on a read-only file system",
            "point DATUM_HOME at a folder on a writable file system "
            "(export DATUM_HOME=/path/to/folder), or mount it read-write",
        )
    if error is not None and error.errno in (errno.ENOSPC, errno.EDQUOT):
        return DatumHomeError(
            f"{where}: {error.strerror}",
            f"free some space (df -h {shlex.quote(str(home))}), "
            "or point DATUM_HOME at a folder on another disk",
        )
    why = f": {error.strerror or error}" if error is not None else ": not a writable folder"
    return DatumHomeError(
        f"{where}{why}",
        f"make it writable (ls -ld {shlex.quote(str(home))}), "
        "or point DATUM_HOME at a folder you own",
    )


# What a folder's state explains: read-only, not permitted, full, a file where a folder should be.
_HOME_ERRNOS = frozenset(
    {
        errno.EROFS,
        errno.EACCES,
        errno.EPERM,
        errno.ENOSPC,
        errno.EDQUOT,
        errno.EEXIST,
        errno.ENOTDIR,
        errno.EISDIR,
    }
)


def _nearest_existing(path: Path) -> Path:
    path = path.absolute()
    while not os.path.lexists(path) and path != path.parent:
        path = path.parent
    return path


def _file_in_the_way(path: Path) -> Path | None:
    """The file standing where `path` or a folder above it should be, if any."""
    existing = _nearest_existing(path)
    return None if existing.is_dir() else existing


def _is_read_only(home: Path) -> bool:
    try:
        return bool(os.statvfs(_nearest_existing(home)).f_flag & os.ST_RDONLY)
    except OSError:
        return False
