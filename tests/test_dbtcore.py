"""What the warm workers import before they fork."""

from __future__ import annotations

import importlib

from datum_dot import dbtcore


def test_preload_modules_names_only_modules_that_import() -> None:
    modules = dbtcore.preload_modules()
    assert modules[:2] == ["dbt.cli.main", "dbt.adapters.factory"]
    # the dbt-duckdb distribution installed for the example is preloaded; dbt-adapters is no adapter
    assert "dbt.adapters.duckdb" in modules
    assert "dbt.adapters.adapters" not in modules
    for name in modules:
        assert importlib.import_module(name).__name__ == name
