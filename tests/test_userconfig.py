"""`$DATUM_HOME/config.yaml`: load, validate, save atomically, migrate with a backup, lock."""

from __future__ import annotations

import stat
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest
import yaml

from datum_dot.errors import ConfigError, DatumHomeError
from datum_dot.home import userconfig
from datum_dot.home.userconfig import ProjectEntry, UserConfig

NOW = datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC)


def entry(path: Path, target: str = "dev") -> ProjectEntry:
    return ProjectEntry(path=path, profiles_dir=path, target=target, created_at=NOW)


def add(project_id: str, value: ProjectEntry) -> Callable[[UserConfig], UserConfig]:
    def change(config: UserConfig) -> UserConfig:
        return config.model_copy(update={"projects": {**config.projects, project_id: value}})

    return change


def test_userconfig_missing_file_is_empty_and_not_created(tmp_path: Path) -> None:
    assert userconfig.load_user_config(tmp_path) == UserConfig()
    assert not (tmp_path / "config.yaml").exists()


def test_userconfig_saves_atomically_private_with_version(tmp_path: Path) -> None:
    home = tmp_path / "home"
    userconfig.update_user_config(home, add("shop", entry(tmp_path)))
    path = home / "config.yaml"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    data = yaml.safe_load(path.read_text())
    assert data["version"] == 1
    assert data["projects"]["shop"]["target"] == "dev"
    assert "webhook" not in data  # defaults stay out of the file
    assert [p.name for p in home.iterdir() if p.name.endswith(".tmp")] == []
    loaded = userconfig.load_user_config(home)
    assert loaded.projects["shop"] == entry(tmp_path)


def test_userconfig_unchanged_update_does_not_write(tmp_path: Path) -> None:
    userconfig.update_user_config(tmp_path, add("shop", entry(tmp_path)))
    path = tmp_path / "config.yaml"
    before = path.stat().st_mtime_ns
    userconfig.update_user_config(tmp_path, lambda config: config)
    assert path.stat().st_mtime_ns == before


def test_userconfig_bad_yaml_names_file_and_line_and_is_never_overwritten(tmp_path: Path) -> None:
    path = tmp_path / "config.yaml"
    text = "version: 1\nprojects:\n  shop: {path: [\n"
    path.write_text(text)
    with pytest.raises(ConfigError, match=rf"{path}:\d+: not valid YAML"):
        userconfig.load_user_config(tmp_path)
    with pytest.raises(ConfigError):
        userconfig.update_user_config(tmp_path, add("other", entry(tmp_path)))
    assert path.read_text() == text


def test_userconfig_invalid_value_names_file_line_and_key(tmp_path: Path) -> None:
    path = tmp_path / "config.yaml"
    path.write_text(
        "version: 1\nprojects:\n  shop:\n    path: /x\n    profiles_dir: /x\n    target: dev\n"
        "    created_at: 2025-01-01T00:00:00Z\n    colour: blue\n"
    )
    with pytest.raises(ConfigError, match=rf"{path}:8: projects.shop.colour") as info:
        userconfig.load_user_config(tmp_path)
    assert "never overwritten" in info.value.hint


def test_userconfig_newer_version_is_refused(tmp_path: Path) -> None:
    (tmp_path / "config.yaml").write_text("version: 7\nprojects: {}\n")
    with pytest.raises(ConfigError, match="version 7 was written by a newer datum-dot"):
        userconfig.load_user_config(tmp_path)


def test_userconfig_project_ids_must_be_slugs(tmp_path: Path) -> None:
    (tmp_path / "config.yaml").write_text(
        "version: 1\nprojects:\n  Bad Id:\n    path: /x\n    profiles_dir: /x\n"
        "    target: dev\n    created_at: 2025-01-01T00:00:00Z\n"
    )
    with pytest.raises(ConfigError, match="must be lowercase"):
        userconfig.load_user_config(tmp_path)


def test_userconfig_datum_layout_migrates_with_backup_on_first_write(tmp_path: Path) -> None:
    path = tmp_path / "config.yaml"
    original = (
        'version: "1.0"\nproject:\n  project_id: Shop Analytics\n  project_path: /srv/shop\n'
        "  profiles_path: /etc/dbt/profiles.yml\n  target: prod\n  dbt_version: 1.7.0\n"
        "schedule:\n  cron_expression: 0 10 * * *\n  enabled: true\n"
        "webhook:\n  enabled: false\n  port: 9000\n  host: 0.0.0.0\n"
        "private_key_path: /root/.datum/keys/x.pem\n"
    )
    path.write_text(original)
    loaded = userconfig.read_user_config(tmp_path)
    assert loaded.migrated_from == 0
    shop = loaded.config.projects["shop-analytics"]
    assert (shop.path, shop.profiles_dir, shop.target) == (
        Path("/srv/shop"),
        Path("/etc/dbt"),
        "prod",
    )
    assert shop.schedules == [{"name": "datum", "cron_expression": "0 10 * * *", "enabled": True}]
    assert (loaded.config.webhook.host, loaded.config.webhook.port) == ("0.0.0.0", 9000)  # noqa: S104 - migrated as written
    assert path.read_text() == original  # reading never writes
    userconfig.update_user_config(tmp_path, add("other", entry(tmp_path)))
    assert (tmp_path / "config.yaml.v0.bak").read_text() == original
    saved = yaml.safe_load(path.read_text())
    assert saved["version"] == 1
    assert set(saved["projects"]) == {"shop-analytics", "other"}
    assert userconfig.read_user_config(tmp_path).migrated_from is None


def test_userconfig_concurrent_updates_keep_every_project(tmp_path: Path) -> None:
    def register(n: int) -> None:
        userconfig.update_user_config(tmp_path, add(f"p{n}", entry(tmp_path / str(n))))

    threads = [threading.Thread(target=register, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert set(userconfig.load_user_config(tmp_path).projects) == {f"p{n}" for n in range(8)}


def test_userconfig_unwritable_home(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(DatumHomeError, match="cannot write to DATUM_HOME"):
        userconfig.update_user_config(blocker / "home", add("x", entry(tmp_path)))


def test_userconfig_ids_are_unique_slugs(tmp_path: Path) -> None:
    config = UserConfig(projects={"jaffle_shop": entry(tmp_path)})
    assert userconfig.slugify("Jaffle Shop!") == "jaffle-shop"
    assert userconfig.unique_project_id(config, "jaffle_shop") == "jaffle_shop-2"
    assert userconfig.unique_project_id(config, "other") == "other"
    found = userconfig.find_project_by_path(config, tmp_path / "." / "")
    assert found is not None
    assert found[0] == "jaffle_shop"
