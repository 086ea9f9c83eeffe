"""The files of one run under `$DATUM_HOME/runs/<run_id>/`, and dbt's run_results.json.

```
metadata.json      the record (no output in it), rewritten atomically at start and end
output.log         stdout and stderr combined, each line `[HH:MM:SS] ` (UTC) stamped
stdout.log         dbt's stdout as it printed it
stderr.log         dbt's stderr as it printed it
run_results.json   dbt's, copied when the run produced one
.reserve           space set aside while the run runs, for its final record (see `recorder`)
```

The log files are written by `output.RunOutput`.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

METADATA = "metadata.json"
OUTPUT_LOG = "output.log"
STDOUT_LOG = "stdout.log"
STDERR_LOG = "stderr.log"
RUN_RESULTS = "run_results.json"
RESERVE = ".reserve"
LOG_FILES = (OUTPUT_LOG, STDOUT_LOG, STDERR_LOG)
STAMP_WIDTH = len("[HH:MM:SS] ")


def utc_now() -> datetime:
    """The current time, in UTC."""
    return datetime.now(UTC)


def unstamp(line: str) -> str:
    """An output.log line without its `[HH:MM:SS] ` stamp (the raw combined output)."""
    if len(line) >= STAMP_WIDTH and line[0] == "[" and line[9:11] == "] ":
        return line[STAMP_WIDTH:]
    return line


def write_json_atomic(path: Path, data: Mapping[str, Any]) -> None:
    """Write a JSON file so that readers see the old or the new file, never half of one."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(data, f, indent=2, sort_keys=True, default=str)
            f.write("\n")
        Path(tmp).replace(path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def last_change(run_dir: Path) -> datetime | None:
    """When a run's files last changed (its output.log, else its metadata.json), if they exist."""
    for name in (OUTPUT_LOG, METADATA):
        with contextlib.suppress(OSError):
            return datetime.fromtimestamp((run_dir / name).stat().st_mtime, tz=UTC)
    return None


def written_since(path: Path, moment: datetime) -> bool:
    """Whether `path` exists and was last written at or after `moment`."""
    try:
        return path.stat().st_mtime >= moment.timestamp()
    except OSError:
        return False


def copy_atomic(source: Path, target: Path) -> None:
    """Copy a file so that `target` is never seen half written; the copy is 0600.

    dbt writes its artifacts with the process's umask; their copies in the history are private.
    """
    fd, name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    tmp = Path(name)
    try:
        with os.fdopen(fd, "wb") as out, source.open("rb") as data:
            shutil.copyfileobj(data, out)
        tmp.replace(target)
    except BaseException:
        tmp.unlink(missing_ok=True)  # half a copy would hold space a full disk needs back
        raise


@dataclass(frozen=True)
class NodeCounts:
    """What one dbt invocation did, counted from its run_results.json.

    Attributes:
        models: Model results.
        seeds: Seed results.
        snapshots: Snapshot results.
        tests: Data test and unit test results.
        failures: Results with status `error`, `fail` or `runtime error`.
        warnings: Results with status `warn`.
        skipped: Results with status `skipped`.
    """

    models: int = 0
    seeds: int = 0
    snapshots: int = 0
    tests: int = 0
    failures: int = 0
    warnings: int = 0
    skipped: int = 0

    def summary(self) -> str:
        """One line for people: `3 models, 1 seed, 5 tests: 1 failed, 2 skipped`."""
        built = [
            f"{n} {word}{'' if n == 1 else 's'}"
            for n, word in (
                (self.models, "model"),
                (self.seeds, "seed"),
                (self.snapshots, "snapshot"),
                (self.tests, "test"),
            )
            if n
        ]
        outcome = [
            f"{n} {word}"
            for n, word in (
                (self.failures, "failed"),
                (self.warnings, "warned"),
                (self.skipped, "skipped"),
            )
            if n
        ]
        head = ", ".join(built) or "no nodes"
        return f"{head}: {', '.join(outcome)}" if outcome else head


_FAILED = {"error", "fail", "runtime error"}
_KINDS = {
    "model": "models",
    "seed": "seeds",
    "snapshot": "snapshots",
    "test": "tests",
    "unit_test": "tests",
}


def node_counts(path: Path) -> NodeCounts | None:
    """Count the results in a dbt run_results.json.

    Args:
        path: The file (`<target>/run_results.json`).

    Returns:
        The counts, or None when the file is missing or is not a run_results document.
    """
    results = _results(path)
    if results is None:
        return None
    return count_nodes((str(r.get("unique_id", "")), str(r.get("status", ""))) for r in results)


@dataclass(frozen=True)
class FailedNode:
    """The first node a run_results.json reports failed, and dbt's message for it.

    Attributes:
        unique_id: dbt's id of the node (`model.shop.orders`).
        message: dbt's message for the node, in full (None when dbt gave none).
    """

    unique_id: str
    message: str | None


def first_failed_node(path: Path) -> FailedNode | None:
    """The first failed result in a dbt run_results.json (dbt lists them in the order run).

    Args:
        path: The file (`<target>/run_results.json`).

    Returns:
        The node, or None when none failed or the file is missing or not a run_results document.
    """
    for result in _results(path) or ():
        if str(result.get("status", "")).lower() in _FAILED:
            message = result.get("message")
            return FailedNode(
                str(result.get("unique_id", "")),
                message if isinstance(message, str) and message.strip() else None,
            )
    return None


def _results(path: Path) -> list[dict[str, Any]] | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    results = data.get("results") if isinstance(data, dict) else None
    if not isinstance(results, list):
        return None
    return [r for r in results if isinstance(r, dict)]


def count_nodes(results: Iterable[tuple[str, str]]) -> NodeCounts:
    """Count node results given as `(unique_id, status)` pairs (for runtimes without a file).

    Args:
        results: Each result's dbt unique id (`model.shop.orders`) and status (`success`).

    Returns:
        The counts.
    """
    counts = dict.fromkeys(("models", "seeds", "snapshots", "tests"), 0)
    outcome = {"failures": 0, "warnings": 0, "skipped": 0}
    for unique_id, raw_status in results:
        kind = _KINDS.get(unique_id.split(".", 1)[0])
        if kind is not None:
            counts[kind] += 1
        status = raw_status.lower()
        if status in _FAILED:
            outcome["failures"] += 1
        elif status == "warn":
            outcome["warnings"] += 1
        elif status == "skipped":
            outcome["skipped"] += 1
    return NodeCounts(**counts, **outcome)
