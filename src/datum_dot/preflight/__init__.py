"""Pre-flight validation (`dot validate`): every check a run, a schedule or the webhook relies on.

Each check answers one question with ✓ (ok), ! (warning), ✗ (failure) or - (skipped), and each
failure says how to fix it; some carry a safe repair that `--auto-fix` makes.

`checks.run_preflight` runs them all (`project`: the dbt project, dot's config and profiles;
`setup`: the registration, keys, token and crontab; `dbt`: dbt, the runtime and, on request,
the connection); `model` holds the report's shapes; `fixes` applies `--auto-fix`.

May import: `scheduling` (to read crontab lines), `execute` and everything below them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from datum_dot.preflight.checks import Options, run_preflight
    from datum_dot.preflight.model import AutoFix, Check, FixKind, Report, Status

__all__ = ["AutoFix", "Check", "FixKind", "Options", "Report", "Status", "run_preflight"]

_FROM_CHECKS = frozenset({"Options", "run_preflight"})


def __getattr__(name: str) -> Any:
    # Loaded when first asked for: a run makes only the cheap checks (`quick`), and importing
    # every check (dbt's, the crontab's, the user config's) would cost it 30 ms.
    if name in _FROM_CHECKS:
        from datum_dot.preflight import checks

        return getattr(checks, name)
    if name in __all__:
        from datum_dot.preflight import model

        return getattr(model, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
