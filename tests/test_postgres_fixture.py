"""The PostgreSQL test fixture itself: where it finds the programs, and failing (not skipping).

A skipped real-server test would look like a pass in CI, so a machine without PostgreSQL must
turn every test that needs the cluster into an error that says what to install.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.helpers import postgres

pytest_plugins = ["pytester"]


def _programs(folder: Path) -> Path:
    folder.mkdir(parents=True)
    for name in ("initdb", "pg_ctl"):
        (folder / name).write_text("#!/bin/sh\nexit 1\n")
        (folder / name).chmod(0o755)
    return folder


def test_find_bin_dir_follows_path_links_to_the_real_folder(tmp_path: Path) -> None:
    real = _programs(tmp_path / "lib" / "15" / "bin")
    on_path = tmp_path / "path"
    on_path.mkdir()
    for name in ("initdb", "pg_ctl"):
        (on_path / name).symlink_to(real / name)
    assert postgres.find_bin_dir({"PATH": str(on_path)}) == real.resolve()


def test_find_bin_dir_picks_the_newest_debian_version(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for version in ("9.6", "15", "13"):
        _programs(tmp_path / "lib" / version / "bin")
    (tmp_path / "lib" / "16" / "bin").mkdir(parents=True)  # no programs: not a candidate
    monkeypatch.setattr(postgres, "LIB_DIR", tmp_path / "lib")
    assert postgres.find_bin_dir({"PATH": str(tmp_path / "empty")}) == tmp_path / "lib/15/bin"


def test_fixture_fails_and_does_not_skip_without_postgresql(
    pytester: pytest.Pytester, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(postgres, "LIB_DIR", tmp_path / "none")
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    pytester.makepyfile("def test_needs_server(postgres_server):\n    pass\n")
    result = pytester.runpytest_inprocess("-p", "tests.helpers.postgres", "-p", "no:cacheprovider")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(
        ["*the PostgreSQL test cluster failed: PostgreSQL is not installed*apt-get*"]
    )
