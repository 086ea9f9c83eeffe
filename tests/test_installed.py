"""What `dot --version` and each local run report as installed: dbt-core and the adapters, read
from the dist-info folders on `sys.path` (real folders, laid out as pip lays them out)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from datum_dot import installed


def test_the_folder_scan_agrees_with_the_package_metadata() -> None:
    found = installed.versions()
    assert found == dict(
        sorted(installed._from_metadata().items(), key=lambda i: (i[0] != "dbt-core", i[0]))
    )
    assert next(iter(found)) == "dbt-core"
    assert "dbt-duckdb" in found
    assert "dbt-common" not in found  # a library of dbt's, not an adapter


def _dist(site: Path, name: str, version: str, files: tuple[str, ...] = ()) -> None:
    info = site / f"{name}-{version}.dist-info"
    info.mkdir(parents=True)
    project = name.replace("_", "-")
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {project}\nVersion: {version}\n")
    (info / "RECORD").write_text("".join(f"{f},,\n" for f in files))
    for f in files:
        (site / f).parent.mkdir(parents=True, exist_ok=True)
        (site / f).write_text("")


def test_the_first_site_on_sys_path_wins_and_only_adapters_count(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    site = tmp_path / "site"
    _dist(site, "dbt_core", "9.9.9")
    _dist(site, "dbt_warehouse", "1.2.3", ("dbt/adapters/warehouse/__init__.py",))
    # an adapter whose package is not named for its distribution: found from its file list
    _dist(site, "dbt_odd_name", "0.4", ("dbt/adapters/odd/__init__.py",))
    _dist(site, "dbt_helpers", "2.0", ("dbt_helpers/__init__.py",))
    monkeypatch.setattr(sys, "path", [str(site), str(tmp_path / "missing"), *sys.path])
    found = installed.versions()
    assert found["dbt-core"] == "9.9.9"  # not the venv's: this site comes first
    assert found["dbt-warehouse"] == "1.2.3"
    assert found["dbt-odd-name"] == "0.4"
    assert "dbt-helpers" not in found
    assert next(iter(found)) == "dbt-core"
