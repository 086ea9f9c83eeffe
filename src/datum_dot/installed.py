"""Which dbt-core and dbt adapters are installed, and their versions, without importing dbt.

`dot --version` and every local run ask, so the answer comes from the names of the
`*.dist-info` folders on `sys.path` (`dbt_duckdb-1.11.1.dist-info`): a few directory listings.
Parsing every installed package's metadata, as `importlib.metadata.distributions()` does, took
30-80 ms here. An install this scan cannot read (no dist-info folders, an egg) falls back to it.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from importlib import metadata

_SUFFIX = ".dist-info"


def versions() -> dict[str, str]:
    """The installed versions of dbt-core and every dbt adapter, dbt-core first.

    Returns:
        Each distribution's name (`dbt-core`, `dbt-duckdb`) mapped to its version; empty when
        dbt-core is not installed.
    """
    found = _from_folders()
    if "dbt-core" not in found:
        found = _from_metadata()
    return dict(sorted(found.items(), key=lambda item: (item[0] != "dbt-core", item[0])))


def _from_folders() -> dict[str, str]:
    found: dict[str, str] = {}
    for entry in sys.path:
        folder = Path(entry) if entry else Path.cwd()
        try:
            names = [child.name for child in folder.iterdir()]
        except OSError:
            continue  # a zip, a missing folder: the metadata scan covers what this misses
        for name in names:
            lower = name.lower()
            if not (lower.startswith("dbt_") and lower.endswith(_SUFFIX)):
                continue
            project, _, version = name[: -len(_SUFFIX)].partition("-")
            key = project.lower().replace("_", "-")
            if key in found or not version:
                continue  # the first on sys.path is the one imported
            if key == "dbt-core" or _is_adapter(folder, folder / name, key):
                found[key] = version
    return found


def _is_adapter(site: Path, dist_info: Path, key: str) -> bool:
    # dbt-duckdb installs dbt/adapters/duckdb/; a name that does not say where its package
    # went is read from the distribution's file list
    package = key.removeprefix("dbt-").replace("-", "_")
    if (site / "dbt" / "adapters" / package / "__init__.py").is_file():
        return True
    try:
        # The wheel's file list, read directly: importing importlib.metadata costs 30-40 ms
        record = (dist_info / "RECORD").read_text(encoding="utf-8")
    except OSError:
        from importlib import metadata

        return _has_adapter_files(metadata.PathDistribution(dist_info))
    return any(_is_adapter_init(line.split(",", 1)[0]) for line in record.splitlines())


def _from_metadata() -> dict[str, str]:
    from importlib import metadata

    found: dict[str, str] = {}
    for dist in metadata.distributions():
        name = (dist.metadata["Name"] or "").lower()
        if name in found:
            continue
        if name == "dbt-core" or (name.startswith("dbt-") and _has_adapter_files(dist)):
            found[name] = dist.version
    return found


def _has_adapter_files(dist: metadata.Distribution) -> bool:
    return any(_is_adapter_init(str(f)) for f in dist.files or [])


def _is_adapter_init(path: str) -> bool:
    return path.startswith("dbt/adapters/") and path.endswith("__init__.py")
