"""What the API lists: a project's isolated builds, its run history and its environments.

Builds and runs are the rows `dot builds --json` and `dot logs --json` print, so a script can
move between the command line and Python without translating.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from datum_dot.builds.protection import guards
from datum_dot.builds.survey import open_project, survey_builds
from datum_dot.config.environments import load_environments
from datum_dot.errors import BadInputError
from datum_dot.history import STORED_STATUSES, RunStore
from datum_dot.runs.planner import project_name
from datum_dot.runs.run import RunStatus


def list_builds(project_dir: Path, *, home: Path) -> tuple[list[dict[str, Any]], list[str]]:
    """The project's isolated builds, most recently used first, and what could not be checked.

    Returns:
        One row per build, as in `dot builds --json` (`in_use` and `needed_by` included), and
        the warnings `dot builds` prints.

    Raises:
        OwnershipError: `.dot` is a link or a file, or git tracks files under it.
        HistoryError: The run history is unusable.
    """
    project = open_project(project_dir)
    survey = survey_builds(project, home=home)
    guard, warnings = guards(survey.builds, project, home=home)
    rows = []
    for build in survey.builds:
        state = guard.get(build.path)
        rows.append(
            {
                **build.to_json(),
                "in_use": bool(state and state.in_use),
                "needed_by": list(state.needed_by) if state else [],
            }
        )
    return rows, list(warnings)


def list_runs(
    project_dir: Path,
    *,
    home: Path,
    last: int | None,
    status: str | Sequence[str] | None,
    env: str | None,
) -> list[dict[str, Any]]:
    """The project's recorded runs, newest first, as `dot logs --json` prints them.

    Raises:
        BadInputError: `last` is below 1 or a status is not one the history records.
        HistoryError: The history file is unusable.
    """
    if last is not None and (isinstance(last, bool) or not isinstance(last, int)):
        raise TypeError(f"last takes an int or None, got {type(last).__name__}")
    if last is not None and last < 1:
        raise BadInputError(f"last must be 1 or more, got {last}", "pass last=20, for example")
    runs = RunStore(home).query(
        last=last,
        status=parse_statuses(status) if status is not None else None,
        env=env,
        project=project_name(project_dir),
    )
    return [run.with_failed_node().to_json() for run in runs]


def parse_statuses(status: str | Sequence[str]) -> tuple[RunStatus, ...]:
    """`"failed"`, `"FAILED,TIMEOUT"` or `["failed", "timeout"]` as statuses.

    Raises:
        BadInputError: A word is not a status the history records.
    """
    words = status.split(",") if isinstance(status, str) else list(status)
    known = {s.value: s for s in STORED_STATUSES}
    found = []
    for word in words:
        if not isinstance(word, str):
            raise TypeError(f"status takes strings, got {type(word).__name__}")
        value = known.get(word.strip().upper())
        if value is None:
            raise BadInputError(
                f"status {word!r} is not one the history records",
                f"use one of {', '.join(known)}, for example status='FAILED'",
            )
        found.append(value)
    return tuple(found)


def list_environments(project_dir: Path) -> dict[str, dict[str, Any]]:
    """Each environment of `dot_environments.yml` (and the user file), resolved.

    Returns:
        Name -> `default` (whether a spec without env runs it), `flags` (the dbt flags it
        passes), `vars` and `runtime`, in the order the files define them.

    Raises:
        ConfigError: A file is malformed.
    """
    config = load_environments(project_dir)
    found: dict[str, dict[str, Any]] = {}
    for name in config.names:
        env = config.resolve(name)
        found[name] = {
            "default": name == config.default,
            "flags": dict(env.flags),
            "vars": dict(env.vars),
            "runtime": env.runtime,
        }
    return found
