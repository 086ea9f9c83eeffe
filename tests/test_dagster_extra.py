"""`datum_dot.dagster` without Dagster installed says which extra to install."""

from __future__ import annotations

import importlib
import sys

import pytest


def test_dagster_module_without_dagster_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in [
        n for n in sys.modules if n == "datum_dot.dagster" or n.startswith("datum_dot.dagster.")
    ]:
        monkeypatch.delitem(sys.modules, name)
    # a None entry makes `import dagster` fail as if it were not installed
    monkeypatch.setitem(sys.modules, "dagster", None)
    with pytest.raises(ModuleNotFoundError) as caught:
        importlib.import_module("datum_dot.dagster")
    assert str(caught.value) == "datum_dot.dagster needs Dagster: pip install 'datum-dot[dagster]'"
    assert caught.value.name == "dagster"
