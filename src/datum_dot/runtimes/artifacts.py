"""dbt's artifacts on disk: where they are for an argv, and what run_results.json says.

Counts and node statuses are taken from run_results.json (a structured source), never from
dbt's printed summary.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import cast

import yaml

from datum_dot.config.yamlfile import safe_load
from datum_dot.errors import DbtError
from datum_dot.runtimes.base import JsonObject, NodeOutcome, RunResult

MANIFEST = "manifest.json"
RUN_RESULTS = "run_results.json"
CATALOG = "catalog.json"
FAILED_STATUSES = frozenset({"error", "fail", "runtime error"})


def option_value(args: Sequence[str], *names: str) -> str | None:
    """The value of the last `--name value` or `--name=value` among `args`, if any."""
    found: str | None = None
    for index, arg in enumerate(args):
        for name in names:
            if arg == name and index + 1 < len(args):
                found = args[index + 1]
            elif arg.startswith(f"{name}="):
                found = arg.split("=", 1)[1]
    return found


def project_dir_of(args: Sequence[str], cwd: Path | None = None) -> Path:
    """The project folder an argv runs in: `--project-dir`, or the current folder."""
    value = option_value(args, "--project-dir")
    return Path(value) if value else (cwd or Path.cwd())


def target_dir(args: Sequence[str], env: Mapping[str, str], cwd: Path | None = None) -> Path:
    """Where dbt writes artifacts for this argv, as dbt decides it.

    `--target-path`, then `DBT_TARGET_PATH` (from `env`, then the process), then the project's
    `target-path` setting, then `target` in the project folder.
    """
    value = option_value(args, "--target-path") or env.get("DBT_TARGET_PATH")
    value = value or os.environ.get("DBT_TARGET_PATH")
    project = project_dir_of(args, cwd)
    if value:
        path = Path(value)
        return path if path.is_absolute() else project / path
    return project / _project_target_path(project)


def _project_target_path(project: Path) -> str:
    try:
        data = safe_load((project / "dbt_project.yml").read_text())
    except (OSError, yaml.YAMLError):
        return "target"
    value = data.get("target-path") if isinstance(data, dict) else None
    return str(value) if isinstance(value, str) and value else "target"


def read_json(path: Path, *, what: str) -> JsonObject:
    """Read a JSON artifact.

    Raises:
        DbtError: It is missing or not a JSON object.
    """
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError as e:
        raise DbtError(
            f"no {what} at {path}",
            "run dbt first (for example `dot compile` or `dot build`)",
        ) from e
    except (OSError, ValueError) as e:
        raise DbtError(f"{what} at {path} could not be read: {e}", f"rebuild it: {path}") from e
    if not isinstance(data, dict):
        raise DbtError(f"{what} at {path} is not a JSON object", f"rebuild it: {path}")
    return cast(JsonObject, data)


def fresh_run_results(target: Path, since: float) -> JsonObject | None:
    """run_results.json of an invocation that started at `since` (epoch seconds), if it wrote one.

    An older file belongs to an earlier run and is ignored: a run that failed before executing
    anything must not report the statuses of the previous one.
    """
    path = target / RUN_RESULTS
    try:
        if path.stat().st_mtime < since - 1.0:
            return None
        return read_json(path, what=RUN_RESULTS)
    except (OSError, DbtError):
        return None


def node_outcomes(run_results: JsonObject | None) -> tuple[NodeOutcome, ...]:
    """Each result of a run_results.json document."""
    if not run_results:
        return ()
    results = run_results.get("results")
    if not isinstance(results, list):
        return ()
    outcomes: list[NodeOutcome] = []
    for item in results:
        if not isinstance(item, dict):
            continue
        failures = item.get("failures")
        message = item.get("message")
        outcomes.append(
            NodeOutcome(
                unique_id=str(item.get("unique_id", "")),
                status=str(item.get("status", "")),
                message=message if isinstance(message, str) else None,
                failures=failures if isinstance(failures, int) else None,
            )
        )
    return tuple(outcomes)


def run_result(
    *,
    success: bool,
    target: Path,
    seconds: float,
    metadata: Mapping[str, object],
    nodes: Sequence[NodeOutcome] | None = None,
) -> RunResult:
    """A `RunResult` with counts from `target`/run_results.json (or the given nodes)."""
    if nodes is None:
        path = target / RUN_RESULTS
        nodes = node_outcomes(read_json(path, what=RUN_RESULTS)) if path.is_file() else ()
    catalog = target / CATALOG
    extra = {key: value for key, value in metadata.items() if _is_json(value)}
    return RunResult(
        success=success,
        manifest_path=target / MANIFEST,
        run_results_path=target / RUN_RESULTS,
        catalog_path=catalog if catalog.is_file() else None,
        execution_time_seconds=max(seconds, 0.0),
        models_run=sum(1 for n in nodes if n.resource_type == "model"),
        tests_run=sum(1 for n in nodes if n.resource_type in {"test", "unit_test"}),
        failures=sum(1 for n in nodes if n.status in FAILED_STATUSES),
        metadata=cast(JsonObject, extra),
    )


def _is_json(value: object) -> bool:
    return value is None or isinstance(value, str | int | float | bool | list | dict)
