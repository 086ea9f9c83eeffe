"""Imported by the fork server only: warm dbt up once, so each forked invocation starts warm.

A process's first dbt invocation spends over a second generating serializers and JSON schemas
that every later invocation reuses. The fork server imports this module at start-up; importing
it parses a throwaway one-model project against an in-memory DuckDB database (when dbt-duckdb is
installed; otherwise nothing happens), then drops the adapter again, so the children it forks
inherit the warm caches and no adapter state. It parses without dbt's static parser, whose
thread pool a forked child would not inherit. Nothing else imports this module.
"""

from __future__ import annotations

import contextlib
import importlib.util
import io
import tempfile
from pathlib import Path

_PROJECT = "name: dot_warmup\nversion: '1.0'\nconfig-version: 2\nprofile: dot_warmup\n"
_PROFILE = (
    "dot_warmup:\n  target: t\n  outputs:\n    t:\n      type: duckdb\n      path: ':memory:'\n"
)


def warm() -> bool:
    """Parse the throwaway project once; True if it ran."""
    if importlib.util.find_spec("dbt.adapters.duckdb") is None:
        return False
    from dbt.adapters.factory import cleanup_connections, reset_adapters
    from dbt.cli.main import dbtRunner

    with tempfile.TemporaryDirectory(prefix="dot-warmup-") as folder:
        root = Path(folder)
        (root / "dbt_project.yml").write_text(_PROJECT)
        (root / "profiles.yml").write_text(_PROFILE)
        (root / "models").mkdir()
        (root / "models" / "warmup.sql").write_text("select 1 as x\n")
        # never the static parser here: its worker threads would not exist in the forked
        # children, and their first full parse would wait for them forever
        args = ["parse", "--no-static-parser", "--no-partial-parse", "--quiet"]
        args += ["--project-dir", folder, "--profiles-dir", folder]
        with contextlib.redirect_stdout(io.StringIO()):
            result = dbtRunner().invoke(
                [*args, "--target-path", str(root / "target"), "--log-path", str(root / "logs")]
            )
        cleanup_connections()  # type: ignore[no-untyped-call]
        reset_adapters()  # type: ignore[no-untyped-call]
    return bool(result.success)


WARMED = warm()
