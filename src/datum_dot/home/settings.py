"""Where the tool keeps its per-user state (`DATUM_HOME`), and the defaults every layer shares."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

DEFAULT_RUNTIME = "local"  # dbt-core in process, when nothing names a runtime
CONFIG_FILE = "config.yaml"  # the user config, in DATUM_HOME


def datum_home(environ: Mapping[str, str] | None = None) -> Path:
    """The per-user state folder: `$DATUM_HOME`, or `~/.datum`."""
    env = os.environ if environ is None else environ
    value = env.get("DATUM_HOME")
    return Path(value).expanduser() if value else Path.home() / ".datum"
