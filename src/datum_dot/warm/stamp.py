"""What the installed code looked like when the runner started: versions and file stamps.

The runner compares a fresh stamp with the one it started with before every run; any
difference (datum-dot's own files edited, dbt-core or an adapter upgraded, a package installed
or removed) means its imported code is stale, and it refuses the run and stops. A stamp is a
few hundred `stat` calls: about a millisecond.
"""

from __future__ import annotations

import sys
from pathlib import Path

Stamp = tuple[tuple[str, int], ...]


def watched_files() -> list[Path]:
    """The files and folders whose modification times make the stamp.

    The site-packages folders change when any distribution is installed, upgraded or removed
    (its `*.dist-info` folder is renamed); datum-dot's own modules change under an editable
    install; dbt's and each adapter's package `__init__` change on a reinstall in place.
    """
    import datum_dot

    found: list[Path] = [Path(p) for p in sys.path if p.endswith("-packages") and Path(p).is_dir()]
    own = Path(datum_dot.__file__).parent
    # Folders too: a module added or removed changes its folder, not any file's time.
    found += sorted(p for p in own.rglob("*") if p.suffix == ".py" or _is_source_folder(p))
    found.append(own)
    dbt = next((Path(p) / "dbt" for p in sys.path if (Path(p) / "dbt").is_dir()), None)
    if dbt is not None:
        found.append(dbt)
        found += sorted(dbt.glob("*/__init__.py"))
        found += sorted((dbt / "adapters").glob("*/__init__.py"))
    return found


def _is_source_folder(path: Path) -> bool:
    return path.is_dir() and path.name != "__pycache__"


def take_stamp(files: list[Path]) -> Stamp:
    """The modification times of `files` (0 for one that is gone)."""
    stamp: list[tuple[str, int]] = []
    for path in files:
        try:
            stamp.append((str(path), path.stat().st_mtime_ns))
        except OSError:
            stamp.append((str(path), 0))
    return tuple(stamp)
