"""A local cache of dbt Cloud run artifacts: `.dot/cloud-cache/<run_id>/`.

Each run's folder holds the artifacts and a `metadata.json` (`cached_at`, the ids, the artifact
list). A folder older than the TTL (24 h by default) is a miss. The cache is per project and
per user, never shared; `DOT_DISABLE_CACHE=true` and `--no-cache` bypass it.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from datum_dot.vcs import ownership
from datum_dot.vcs.ownership import DOT_DIR

METADATA = "metadata.json"
DEFAULT_TTL = timedelta(hours=24)
DISABLE_VARIABLE = "DOT_DISABLE_CACHE"


def cache_disabled(environ: Mapping[str, str]) -> bool:
    """True when `DOT_DISABLE_CACHE` is set to a true value."""
    return environ.get(DISABLE_VARIABLE, "").strip().lower() in {"1", "true", "yes", "on"}


@dataclass(frozen=True)
class ArtifactCache:
    """The artifact folders of finished dbt Cloud runs.

    Attributes:
        root: `.dot/cloud-cache` of the project.
        ttl: How long a folder stays valid.
        now: The clock (injected by tests).
    """

    root: Path
    ttl: timedelta = DEFAULT_TTL
    now: Callable[[], datetime] = lambda: datetime.now(UTC)

    def folder(self, run_id: int) -> Path:
        """Where a run's artifacts are (or would be) cached."""
        return self.root / str(run_id)

    def get(self, run_id: int) -> Path | None:
        """The folder of a run's artifacts if it is complete and younger than the TTL."""
        folder = self.folder(run_id)
        try:
            meta = json.loads((folder / METADATA).read_text())
            cached_at = datetime.fromisoformat(str(meta["cached_at"]))
            names = [str(name) for name in meta["artifacts"]]
        except (OSError, ValueError, KeyError, TypeError):
            return None
        if cached_at.tzinfo is None or self.now() - cached_at > self.ttl:
            return None
        if not all((folder / name).is_file() for name in names):
            return None
        return folder

    def put(self, run_id: int, files: Mapping[str, bytes], ids: Mapping[str, object]) -> Path:
        """Store a run's artifacts (replacing an older copy) and return their folder.

        The folder is filled under a temporary name and renamed into place, so a reader never
        sees half a cache entry.

        Raises:
            OwnershipError: `.dot` or the cache folder is a link or a file, or an older copy
                could not be removed.
        """
        # Under a project's `.dot`, every level is checked: dot never writes through a link.
        if self.root.parent.name == DOT_DIR:
            ownership.require_real_dirs(
                self.root.parent.parent, DOT_DIR, self.root.name, create=True
            )
        else:
            self.root.mkdir(parents=True, exist_ok=True)
        _ignore_in_git(self.root.parent)
        staging = Path(tempfile.mkdtemp(prefix=f".{run_id}-", dir=self.root))
        for name, content in files.items():
            (staging / name).write_bytes(content)
        meta = {
            "cached_at": self.now().isoformat(),
            "run_id": str(run_id),
            **{key: str(value) for key, value in ids.items()},
            "artifacts": sorted(files),
        }
        (staging / METADATA).write_text(json.dumps(meta, indent=2) + "\n")
        target = self.folder(run_id)
        ownership.remove_tree(target.absolute())
        staging.replace(target)
        return target


def _ignore_in_git(dot_dir: Path) -> None:
    # `.dot/` keeps a `*` .gitignore (as isolated builds write it), so nothing here is committed.
    marker = dot_dir / ".gitignore"
    if dot_dir.name == DOT_DIR and ownership.kind_of(marker) == "missing":
        marker.write_text("*\n")
