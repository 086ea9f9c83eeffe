"""`datum_dot.airflow` without Airflow installed says which extra to install."""

from __future__ import annotations

import importlib
import sys

import pytest


def test_airflow_module_without_airflow_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in [
        n for n in sys.modules if n == "datum_dot.airflow" or n.startswith("datum_dot.airflow.")
    ]:
        monkeypatch.delitem(sys.modules, name)
    # a None entry makes `import airflow` fail as if it were not installed
    monkeypatch.setitem(sys.modules, "airflow", None)
    with pytest.raises(ModuleNotFoundError) as caught:
        importlib.import_module("datum_dot.airflow")
    assert (
        str(caught.value) == "datum_dot.airflow needs Airflow 3: pip install 'datum-dot[airflow]'"
    )
    assert caught.value.name == "airflow"
