"""Which assets a `select=`/`exclude=` of `dot_assets` keeps, as dbt itself selects them.

dbt's selection syntax is dbt's to read (graph operators, `tag:`, `path:`, `state:`...), so
`dbt ls` answers, at the pinned commit, once: its answer is cached beside the manifest, under a
digest of the selection, like the manifest itself.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Sequence
from pathlib import Path

from datum_dot.api.project import Project
from datum_dot.dagster.graph import ASSET_TYPES, DbtGraph
from datum_dot.dagster.pinned import PinnedManifest
from datum_dot.errors import BadInputError, DbtError

# `dbt ls --output json --output-keys unique_id` prints one object per node, at the line's end
# (the run's log puts the time before it).
_LISTED = re.compile(r'\{"unique_id": "([^"\\]+)"\}\s*$')


def selected_ids(
    project: Project,
    pinned: PinnedManifest,
    graph: DbtGraph,
    *,
    select: str | Sequence[str] | None,
    exclude: str | Sequence[str] | None,
    runtime: str | None,
) -> list[str]:
    """The unique ids of the assets the selection keeps, in the manifest's order.

    Raises:
        BadInputError: The selection keeps no asset.
        DbtError: `dbt ls` failed.
    """
    if select is None and exclude is None:
        return list(graph.assets)
    cache = pinned.path.parent / f"selection-{_digest(select, exclude)}.json"
    listed = _cached(cache)
    if listed is None:
        listed = _list(project, pinned.spec, select, exclude, runtime)
        temp = cache.with_name(f".{cache.name}.tmp")
        temp.write_text(json.dumps(sorted(listed)) + "\n", encoding="utf-8")
        temp.replace(cache)
    chosen = [uid for uid in graph.assets if uid in listed]
    if not chosen:
        raise BadInputError(
            f"select={select!r} exclude={exclude!r} keeps no model, seed or snapshot of "
            f"{pinned.spec} (commit {pinned.commit[:8]})",
            f"see what it selects: dot ls {pinned.spec} --select ...",
        )
    return chosen


def _list(
    project: Project,
    spec: str,
    select: str | Sequence[str] | None,
    exclude: str | Sequence[str] | None,
    runtime: str | None,
) -> set[str]:
    kinds = [arg for kind in sorted(ASSET_TYPES) for arg in ("--resource-type", kind)]
    result = project.ls(spec, select=select, exclude=exclude, runtime=runtime,
                        args=[*kinds, "--output", "json", "--output-keys", "unique_id"])  # fmt: skip
    log = result.logs.get("log_file")
    if not result.ok or not isinstance(log, Path):
        first = result.errors[0] if result.errors else f"exit code {result.exit_code}"
        raise DbtError(
            f"dbt ls of {spec} for the selection failed: {first}",
            f"dot logs {result.run_id}" if result.run_id else "check select= and exclude=",
        )
    lines = log.read_text(encoding="utf-8", errors="replace").splitlines()
    return {found[1] for line in lines if (found := _LISTED.search(line))}


def _cached(path: Path) -> set[str] | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(data, list):
        return None
    return {str(uid) for uid in data}


def _digest(select: str | Sequence[str] | None, exclude: str | Sequence[str] | None) -> str:
    def words(value: str | Sequence[str] | None) -> list[str] | None:
        return [value] if isinstance(value, str) else None if value is None else list(value)

    text = json.dumps([words(select), words(exclude)])
    return hashlib.sha256(text.encode()).hexdigest()[:16]
