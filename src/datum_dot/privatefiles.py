"""Files only their owner may read: atomic writes with the mode set before the rename.

Keys, the webhook token and `config.yaml` live under `$DATUM_HOME`. Each is written to a temp
file in the same folder, given its mode, flushed, and renamed over the old one, so a reader
never sees half a file and a secret is never readable by others, not even for a moment.
"""

from __future__ import annotations

import os
import stat
import tempfile
from pathlib import Path

from datum_dot.errors import DatumHomeError

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
        raise unwritable_home(home, None)
    return folder


def unwritable_home(home: Path, error: OSError | None) -> DatumHomeError:
    """The error for a `$DATUM_HOME` that cannot be written (to raise from an OSError)."""
    why = f": {error.strerror or error}" if error is not None else ": not a writable folder"
    return DatumHomeError(
        f"cannot write to DATUM_HOME {home}{why}",
        f"make it writable (ls -ld {home}), or point DATUM_HOME at a folder you own",
    )
