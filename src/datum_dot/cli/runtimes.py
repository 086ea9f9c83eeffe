"""`dot runtimes`: the installed runtimes, their versions, and which one is the default."""

from __future__ import annotations

import argparse
from pathlib import Path

from datum_dot.cli import render
from datum_dot.config.environments import load_environments
from datum_dot.errors import ExitCode, ProjectNotFoundError
from datum_dot.home.settings import DEFAULT_RUNTIME
from datum_dot.runs.planner import find_project_dir
from datum_dot.runtimes import registry


def run_runtimes(args: argparse.Namespace) -> int:
    """List every registered runtime; returns the exit code."""
    default, used_by = _project_choices(args.project_dir)
    rows = [
        {
            "name": info.name,
            "default": info.name == default,
            "available": info.probe.available,
            "version": info.probe.version,
            "parallel": info.parallel,
            "detail": info.probe.detail,
            "environments": used_by.get(info.name, []),
            "entry_point": info.target,
            "package": info.package,
        }
        for info in registry.installed()
    ]
    if args.json:
        render.print_json({"default": default, "runtimes": rows})
        return int(ExitCode.OK)
    render.print_runtimes(rows)
    return int(ExitCode.OK)


def _project_choices(project_dir: Path | None) -> tuple[str, dict[str, list[str]]]:
    """The default runtime here, and which environments choose each runtime."""
    try:
        folder = find_project_dir(project_dir or Path.cwd())
    except ProjectNotFoundError:
        return DEFAULT_RUNTIME, {}
    config = load_environments(folder)
    default = config.resolve(None).runtime or DEFAULT_RUNTIME
    used_by: dict[str, list[str]] = {}
    for name in config.names:
        used_by.setdefault(config.resolve(name).runtime or DEFAULT_RUNTIME, []).append(name)
    return default, used_by
