"""Which dbt-core and adapters are installed here: versions, an adapter's probe, the preload list."""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass

from datum_dot import installed


def versions() -> dict[str, str]:
    """Return the installed versions of dbt-core and every dbt adapter, without importing dbt."""
    return installed.versions()


def preload_modules() -> list[str]:
    """Modules a warm worker imports once, so each invocation it forks starts warm."""
    # distributions named dbt-* include libraries (dbt-adapters, dbt-common) that are no adapter
    candidates = (f"dbt.adapters.{name.removeprefix('dbt-')}" for name in versions())
    adapters = [name for name in candidates if _importable(name)]
    return ["dbt.cli.main", "dbt.adapters.factory", *adapters]


def _importable(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


@dataclass(frozen=True)
class AdapterProbe:
    """Whether dbt's adapter for a profiles.yml `type:` imports here (for `dot validate`).

    Attributes:
        adapter_type: The `type:` (`duckdb`).
        importable: `dbt.adapters.<type>` imported.
        package: The distribution that normally provides it (`dbt-duckdb`).
        version: Its installed version, or "" when it is not installed.
        error: Why the import failed.
    """

    adapter_type: str
    importable: bool
    package: str
    version: str = ""
    error: str = ""


def probe_adapter(adapter_type: str) -> AdapterProbe:
    """Import the adapter plugin for a profiles.yml `type:` and report its version."""
    import importlib
    import re

    package = f"dbt-{adapter_type}"
    version = versions().get(package, "")
    if not re.fullmatch(r"[a-z_][a-z0-9_]*", adapter_type):
        return AdapterProbe(adapter_type, False, package, version, "not an adapter name")
    try:
        importlib.import_module(f"dbt.adapters.{adapter_type}")
    except Exception as e:  # noqa: BLE001 - a broken adapter plugin is a finding, not a crash
        return AdapterProbe(adapter_type, False, package, version, f"{type(e).__name__}: {e}")
    return AdapterProbe(adapter_type, True, package, version)
