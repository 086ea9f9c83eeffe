"""The Dagster tests run in their own virtual environment (`scripts/test-dagster`), where Dagster
is installed; the main environment has no Dagster (it would move dbt's protobuf), so there this
folder is not collected at all, and its marker is registered here with the tests it marks."""

from __future__ import annotations

import importlib.util

import pytest

collect_ignore_glob = [] if importlib.util.find_spec("dagster") else ["test_*.py"]


def pytest_configure(config: pytest.Config) -> None:
    """Register the `dagster` marker (`pytest -m dagster` runs these tests)."""
    config.addinivalue_line("markers", "dagster: needs Dagster (scripts/test-dagster)")
