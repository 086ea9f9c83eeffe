"""The warm-up parse the fork server and the webhook's warm worker run before they fork."""

from __future__ import annotations

import contextlib
import importlib.util
import io
import tempfile
from pathlib import Path

from datum_dot.dbtcore.collector import importing_dbt

_WARMUP_PROJECT = "name: dot_warmup\nversion: '1.0'\nconfig-version: 2\nprofile: dot_warmup\n"
_WARMUP_PROFILE = (
    "dot_warmup:\n  target: t\n  outputs:\n    t:\n      type: duckdb\n      path: ':memory:'\n"
)


def warm_parse() -> bool | None:
    """Parse a throwaway one-model project on in-memory DuckDB once, then drop the adapter.

    The fork server (`runtimes.warmup`) and the webhook's warm worker (`runtimes.warmth`) call
    this so the children they fork start with dbt's serializers and schemas already built and no
    adapter state. The parse never uses dbt's static parser (see below).

    Returns:
        Whether the parse succeeded; None when dbt-duckdb is not installed (nothing was done).
    """
    if importlib.util.find_spec("dbt.adapters.duckdb") is None:
        return None
    with importing_dbt():
        from dbt.adapters.factory import cleanup_connections, reset_adapters
        from dbt.cli.main import dbtRunner

    with tempfile.TemporaryDirectory(prefix="dot-warmup-") as folder:
        root = Path(folder)
        (root / "dbt_project.yml").write_text(_WARMUP_PROJECT)
        (root / "profiles.yml").write_text(_WARMUP_PROFILE)
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
