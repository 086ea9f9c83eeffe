"""dbt's artifacts, kept with each run: `$DATUM_HOME/runs/<run_id>/<artifact>`, with their sha256.

Plain runs of different environments share the checkout's `target/`, and every dbt invocation
rewrites it: the copy in the run's folder is the only place a run's manifest survives the next
run. It is what `--defer ENV` (the live environment's state) and `dot which` read.

The files are copied, never hard-linked: dbt rewrites its artifacts in place (dbt-common's
`write_file` opens the existing path for writing), so a hard link would become the next run's
file (ADR 0017). The copy hashes as it reads, in one pass.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

ARTIFACT_NAMES = (
    "manifest.json",
    "run_results.json",
    "sources.json",
    "catalog.json",
    "semantic_manifest.json",
)
MANIFEST = "manifest.json"
_CHUNK = 1 << 20


@dataclass(frozen=True)
class ArtifactFile:
    """One artifact kept with a run.

    Attributes:
        name: Its file name (`manifest.json`).
        sha256: The hex digest of its bytes as copied.
        size: Its size in bytes.
        in_db: A copy is in the PostgreSQL history too (`--artifacts-to-db`: see `dbartifacts`).
    """

    name: str
    sha256: str
    size: int
    in_db: bool = False

    def to_json(self) -> dict[str, Any]:
        """The record's form (what the history's `artifacts` column holds)."""
        return {
            "sha256": self.sha256,
            "bytes": self.size,
            **({"in_db": True} if self.in_db else {}),
        }


def keep_artifacts(
    target: Path, run_dir: Path, since: datetime
) -> tuple[dict[str, ArtifactFile], list[str]]:
    """Copy the artifacts dbt wrote into `target` during this run into the run's folder.

    A file last written before `since` belongs to an earlier run and is left out. A copy that
    fails (a full disk) is reported, and the others are still made.

    Args:
        target: dbt's target folder.
        run_dir: The run's folder in the history.
        since: When the run started.

    Returns:
        The artifacts kept, by name; and a line for each one that could not be copied.
    """
    kept: dict[str, ArtifactFile] = {}
    failed: list[str] = []
    for name in ARTIFACT_NAMES:
        source = target / name
        try:
            if source.stat().st_mtime < since.timestamp():
                continue
        except OSError:
            continue
        try:
            kept[name] = copy_hashed(source, run_dir / name)
        except OSError as e:
            failed.append(f"{name} not copied: {e}")
    return kept, failed


def copy_hashed(source: Path, target: Path) -> ArtifactFile:
    """Copy `source` to `target` atomically (mode 0600), hashing it on the way.

    Raises:
        OSError: The copy failed; nothing is left at `target`'s temporary name.
    """
    digest = hashlib.sha256()
    size = 0
    fd, name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    tmp = Path(name)
    try:
        with os.fdopen(fd, "wb") as out, source.open("rb") as data:
            while chunk := data.read(_CHUNK):
                digest.update(chunk)
                out.write(chunk)
                size += len(chunk)
        tmp.replace(target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return ArtifactFile(target.name, digest.hexdigest(), size)


def sha256_of(path: Path) -> str:
    """The hex sha256 of a file's bytes.

    Raises:
        OSError: The file cannot be read.
    """
    digest = hashlib.sha256()
    with path.open("rb") as data:
        while chunk := data.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def artifacts_from_json(text: str | None) -> dict[str, ArtifactFile]:
    """The artifacts a record's `artifacts` column lists (empty for older records)."""
    if not text:
        return {}
    try:
        data = json.loads(text)
    except ValueError:
        return {}
    if not isinstance(data, dict):
        return {}
    return {
        name: ArtifactFile(
            name,
            str(meta.get("sha256", "")),
            int(meta.get("bytes", 0)),
            in_db=meta.get("in_db") is True,
        )
        for name, meta in data.items()
        if isinstance(meta, dict)
    }


def artifacts_to_json(artifacts: Mapping[str, ArtifactFile]) -> str | None:
    """The `artifacts` column's text for these artifacts (None when there are none)."""
    if not artifacts:
        return None
    return json.dumps({n: a.to_json() for n, a in sorted(artifacts.items())}, sort_keys=True)
