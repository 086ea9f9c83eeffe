"""dbt's `RuntimeConfig` for a profile's target, rendered once and kept for the next few asks.

The cache of rendered configs lives here and nowhere else.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

# The last few configs rendered, by their arguments and the environment they were rendered in:
# a diff asks for each side's identity and then opens one of them (0.15 s a render).
_CONFIGS: dict[tuple[object, ...], Any] = {}
_CONFIGS_KEPT = 4


def runtime_config(
    project_dir: Path, profiles_dir: Path, target: str | None, variables: Mapping[str, Any]
) -> Any:
    """dbt's `RuntimeConfig` for a profile's target, rendered as `dbt` renders it, or from the cache.

    A profile renders `env_var()` and files on disk: a config is reused only for the same
    arguments, the same environment and unchanged `dbt_project.yml` and `profiles.yml`. Callers
    hold `guards.INVOKE_LOCK`.

    Raises:
        Exception: Whatever dbt raises for a profile or project it cannot render.
    """
    from argparse import Namespace

    from dbt.config.runtime import RuntimeConfig
    from dbt.flags import set_from_args
    from dbt_common.context import set_invocation_context

    args = Namespace(project_dir=str(project_dir), profiles_dir=str(profiles_dir), target=target,
                     profile=None, threads=None, vars=dict(variables))  # fmt: skip
    environ = dict(os.environ)
    set_invocation_context(environ)
    set_from_args(args, {})
    # A profile renders env_var() and files on disk: the key holds the environment, and the
    # files' stamps, so a changed profiles.yml or variable is rendered again.
    key = (str(project_dir), str(profiles_dir), target,
           json.dumps(dict(variables), sort_keys=True, default=str),
           tuple(sorted(environ.items())), _stamps(project_dir, profiles_dir))  # fmt: skip
    if key in _CONFIGS:
        return _CONFIGS[key]
    config = RuntimeConfig.from_args(args)
    if len(_CONFIGS) >= _CONFIGS_KEPT:
        _CONFIGS.pop(next(iter(_CONFIGS)))
    _CONFIGS[key] = config
    return config


def _stamps(project_dir: Path, profiles_dir: Path) -> tuple[tuple[int, int], ...]:
    stamps = []
    for path in (project_dir / "dbt_project.yml", profiles_dir / "profiles.yml"):
        try:
            stat = path.stat()
        except OSError:
            stamps.append((-1, -1))
        else:
            stamps.append((stat.st_mtime_ns, stat.st_size))
    return tuple(stamps)
