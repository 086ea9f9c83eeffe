"""The manifest of a pinned commit, parsed once per commit and environment.

`dot_assets` needs the graph when Dagster loads the definitions, before anything runs. The spec
is planned (nothing touched) to learn its commit; a manifest cached for that commit, environment
and parse argv is read back, else `dbt parse` runs in the commit's isolated worktree through the
API (recorded in the history like any run) and its manifest is kept beside the build, in
`.dot/build/<hash>/env/<env>/dagster/`, with the marker of the `--state-from` parses
(`runs.stateparse`). A process keeps what it read, so loading the definitions again is free.
"""

from __future__ import annotations

import json
import shutil
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from datum_dot.errors import BadInputError, DbtError
from datum_dot.runs import stateparse

if TYPE_CHECKING:
    from datum_dot.api.project import Project

CACHE_FOLDER = "dagster"


@dataclass(frozen=True)
class PinnedManifest:
    """A spec's commit and the manifest dbt parsed there.

    Attributes:
        spec: The spec as given (`prod@v1.2`).
        commit: The full hash the spec's ref resolved to.
        environment: The environment the spec names (None: no environments file).
        path: The cached manifest.json.
        manifest: Its content.
    """

    spec: str
    commit: str
    environment: str | None
    path: Path
    manifest: dict[str, Any]


_SEEN: dict[tuple[str, str], PinnedManifest] = {}
_LOCK = threading.Lock()


def pinned_manifest(project: Project, spec: str, *, runtime: str | None = None) -> PinnedManifest:
    """The manifest of the commit `spec` pins, parsed there once and then read from the cache.

    Args:
        project: The project (its runs are recorded with its trigger).
        spec: `env@ref`: a spec without a ref has no commit to pin.
        runtime: The runtime the parse runs with, if it must run.

    Returns:
        The manifest and the commit it belongs to.

    Raises:
        BadInputError: The spec has no ref, or does not plan (exit code 20).
        DbtError: dbt could not parse the commit.
    """
    plan = project.plan(spec, command="parse", runtime=runtime)
    iso = plan.isolated
    if iso is None:
        raise BadInputError(
            f"dot_assets needs a spec pinned to a commit, got {spec!r}",
            f"name a tag, branch or commit after @: '{spec or 'prod'}@v1.2'",
        )
    key = stateparse.parse_key(plan.dbt_args)
    with _LOCK:
        seen = _SEEN.get((str(iso.env_dir), key))
        if seen is not None:
            return seen
        folder = iso.env_dir / CACHE_FOLDER
        if not stateparse.is_cached(folder, key):
            _parse_into(project, spec, folder, runtime=runtime)
            stateparse.mark_cached(folder, key, iso.commit, plan.env.name)
        path = folder / stateparse.MANIFEST
        pinned = PinnedManifest(spec, iso.commit, plan.env.name, path, _read(path))
        _SEEN[(str(iso.env_dir), key)] = pinned
        return pinned


def _parse_into(project: Project, spec: str, folder: Path, *, runtime: str | None) -> None:
    result = project.parse(spec, runtime=runtime)
    manifest = result.artifacts.get("manifest")
    if not result.ok or manifest is None:
        first = result.errors[0] if result.errors else f"exit code {result.exit_code}"
        raise DbtError(
            f"dbt parse of {spec} (commit {(result.commit or '')[:8]}) failed: {first}",
            f"dot logs {result.run_id}" if result.run_id else "run it with echo=True",
        )
    folder.mkdir(parents=True, exist_ok=True)
    temp = folder / f".{stateparse.MANIFEST}.tmp"
    shutil.copyfile(manifest, temp)
    temp.replace(folder / stateparse.MANIFEST)


def _read(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise DbtError(f"{path} cannot be read: {e}", f"delete {path.parent} and load again") from e
    if not isinstance(data, dict):
        raise DbtError(f"{path} is not a dbt manifest", f"delete {path.parent} and load again")
    return data
