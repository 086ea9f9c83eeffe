"""A run's dbt artifacts kept in the PostgreSQL history (`--artifacts-to-db`), so that they
outlive the host that ran it (a Kubernetes pod whose disk goes with it).

Asked for by `--artifacts-to-db` on a dbt command, `DATUM_ARTIFACTS_TO_DB=1` in the environment
(`0` turns off what config.yaml turns on), or `database.artifacts_to_db: true` in config.yaml
(`dot config set database.artifacts-to-db true`). With the history in SQLite there is no
database to keep them in: that is bad input.

At the run's end each artifact the run's folder kept (`artifacts.keep_artifacts`) is compressed
with zlib and written to `run_artifacts` in the transaction that finishes the record, whose
artifacts' index then marks it `in_db`. The sha256 is of the bytes dbt wrote, before
compression: a reader checks what it decompressed against it, whichever host reads it.

Readers (`dot logs RUN --artifact NAME`, `--defer ENV` through `states`) take the run's folder
when it is on this host and its file is still what the run wrote, else the database's copy.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
import time
import zlib
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path

from datum_dot.errors import HistoryError, UsageError
from datum_dot.history.artifacts import ArtifactFile, sha256_of
from datum_dot.history.index import Session
from datum_dot.history.records import StoredRun

VARIABLE = "DATUM_ARTIFACTS_TO_DB"
OPTION = "--artifacts-to-db"
CACHE_DIR = "artifacts"
"""Under `$DATUM_HOME`: artifacts fetched from the database for runs made on other hosts."""
CACHE_DAYS = 1
"""A fetched run's folder unused this many days is removed by the next fetch."""
_CHUNK = 1 << 20
_ON = ("1", "true", "yes", "on")
_OFF = ("", "0", "false", "no", "off")
_INSERT = (
    "INSERT INTO run_artifacts (run_id, name, sha256, bytes, data) VALUES (?, ?, ?, ?, ?)"
    " ON CONFLICT (run_id, name) DO UPDATE SET sha256 = excluded.sha256,"
    " bytes = excluded.bytes, data = excluded.data"
)


def requested(flag: bool, environ: Mapping[str, str], config_setting: bool) -> str | None:
    """Where keeping a run's artifacts in the database was asked for, or None.

    Args:
        flag: `--artifacts-to-db` was given.
        environ: The run's environment (`DATUM_ARTIFACTS_TO_DB`).
        config_setting: config.yaml's `database.artifacts_to_db`.

    Returns:
        `--artifacts-to-db`, `DATUM_ARTIFACTS_TO_DB=...`, or `database.artifacts_to_db in
        config.yaml`; None when it is off.

    Raises:
        UsageError: `DATUM_ARTIFACTS_TO_DB` is neither on (1, true) nor off (0, false).
    """
    if flag:
        return OPTION
    value = environ.get(VARIABLE)
    if value is not None:
        word = value.strip().lower()
        if word in _ON:
            return f"{VARIABLE}={value.strip()}"
        if word not in _OFF:
            raise UsageError(
                f"{VARIABLE} must be 1 or 0 (true or false), not {value!r}",
                f"set {VARIABLE}=1 to keep runs' artifacts in the database, or unset it",
            )
        return None
    return "database.artifacts_to_db in config.yaml" if config_setting else None


def wanted(
    flag: bool, environ: Mapping[str, str], *, home: Path, in_postgres: bool, history: str
) -> bool:
    """Whether a run keeps its artifacts in the database, checked before it starts.

    Args:
        flag: `--artifacts-to-db` was given.
        environ: The run's environment (`DATUM_ARTIFACTS_TO_DB`).
        home: `$DATUM_HOME` (its config.yaml's `database.artifacts_to_db`).
        in_postgres: The history is in PostgreSQL.
        history: Where the history is, for the message.

    Raises:
        UsageError: It is asked for and the history is SQLite, or `DATUM_ARTIFACTS_TO_DB` is
            neither on nor off.
        ConfigError: config.yaml is unusable.
    """
    where = requested(flag, environ, _config_setting(home))
    if where is None:
        return False
    if not in_postgres:
        raise refuse_sqlite(where, history)
    return True


def _config_setting(home: Path) -> bool:
    try:
        if "artifacts_to_db" not in (home / "config.yaml").read_text(errors="replace"):
            return False  # no need to parse (and judge) a file that cannot set it
    except OSError:
        return False
    # lazy: config.yaml is parsed only when it may set it
    from datum_dot.home.userconfig import load_user_config

    return load_user_config(home).database.artifacts_to_db


def refuse_sqlite(where: str, history: str) -> UsageError:
    """The error for asking a history in SQLite to keep artifacts in a database.

    Args:
        where: Where it was asked for (what `requested` returned).
        history: Where the history is (the SQLite file).
    """
    off = {
        OPTION: f"or drop {OPTION}",
        "database.artifacts_to_db in config.yaml": "or dot config set database.artifacts-to-db "
        "false",
    }.get(where, f"or unset {VARIABLE}")
    return UsageError(
        f"{where} keeps a run's artifacts in the PostgreSQL run history, and this history is "
        f"SQLite ({history})",
        "set DATUM_DATABASE_URL (or dot config set database.url postgresql://...) to keep the "
        f"history in PostgreSQL, {off}",
    )


def store(
    s: Session, run_id: str, run_dir: Path, kept: Mapping[str, ArtifactFile]
) -> dict[str, ArtifactFile]:
    """Write the artifacts a run's folder kept into the database, compressed.

    An artifact whose file no longer has the sha256 it was kept with (changed or gone since) is
    left out, and stays listed as kept in the folder only.

    Args:
        s: A session on the PostgreSQL history, in the transaction finishing the run.
        run_id: The run.
        run_dir: Its folder, holding the kept files.
        kept: What `keep_artifacts` kept there.

    Returns:
        `kept`, those stored marked `in_db`.
    """
    stored = dict(kept)
    rows: list[tuple[str, str, str, int, bytes]] = []
    for name, artifact in sorted(kept.items()):
        try:
            data, digest = _compressed(run_dir / name)
        except OSError:
            continue
        if digest != artifact.sha256:
            continue
        rows.append((run_id, name, artifact.sha256, artifact.size, data))
        stored[name] = replace(artifact, in_db=True)
    s.run_many(_INSERT, rows)
    return stored


def read(s: Session, run: StoredRun, name: str) -> bytes:
    """An artifact's bytes as the database keeps them, checked against the record's sha256.

    Raises:
        HistoryError: The database has no such artifact of the run, or its bytes are not what
            the run wrote (sha256 differs, not zlib).
    """
    row = s.one(
        "SELECT sha256, data FROM run_artifacts WHERE run_id = ? AND name = ?", (run.run_id, name)
    )
    if row is None:
        raise HistoryError(
            f"run {run.run_id} has no {name} in the database",
            f"list what it kept: dot logs {run.run_id} --artifacts",
        )
    try:
        data = zlib.decompress(bytes(row["data"]))
    except zlib.error as e:
        raise _damaged(run, name, f"not zlib data ({e})") from e
    if hashlib.sha256(data).hexdigest() != row["sha256"]:
        raise _damaged(run, name, "its sha256 differs from the one recorded with it")
    return data


def local_copy(run: StoredRun, name: str) -> Path | None:
    """The run's own file of an artifact on this host, if it is still what the run wrote."""
    artifact = run.artifacts.get(name)
    path = run.run_dir / name
    if artifact is None:
        return None
    try:
        return path if sha256_of(path) == artifact.sha256 else None
    except OSError:
        return None


def fetch(s: Session, run: StoredRun, home: Path) -> Path:
    """A folder on this host holding the run's artifacts the database keeps, for dbt's
    `--state`: `$DATUM_HOME/artifacts/<run_id>/`, written once and reused.

    Folders of other runs unused for `CACHE_DAYS` are removed on the way.

    Raises:
        HistoryError: An artifact is missing from the database or damaged there.
        OSError: The folder cannot be written.
    """
    cache = home / CACHE_DIR
    folder = cache / run.run_id
    cache.mkdir(mode=0o700, parents=True, exist_ok=True)
    for name, artifact in sorted(run.artifacts.items()):
        path = folder / name
        if not artifact.in_db or (path.is_file() and sha256_of(path) == artifact.sha256):
            continue
        folder.mkdir(mode=0o700, exist_ok=True)
        _write_private(path, read(s, run, name))
    os.utime(folder)  # used now: kept from the sweep below
    _sweep(cache, keep=folder)
    return folder


def _compressed(path: Path) -> tuple[bytes, str]:
    """A file's bytes compressed with zlib, and the sha256 of the bytes as read, in one pass."""
    digest = hashlib.sha256()
    packer = zlib.compressobj(6)
    parts: list[bytes] = []
    with path.open("rb") as data:
        while chunk := data.read(_CHUNK):
            digest.update(chunk)
            parts.append(packer.compress(chunk))
    parts.append(packer.flush())
    return b"".join(parts), digest.hexdigest()


def _write_private(path: Path, data: bytes) -> None:
    fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data)
        Path(name).replace(path)
    except BaseException:
        Path(name).unlink(missing_ok=True)
        raise


def _sweep(cache: Path, *, keep: Path) -> None:
    cutoff = time.time() - CACHE_DAYS * 86400
    for folder in cache.iterdir():
        try:
            old = folder != keep and folder.stat().st_mtime < cutoff
        except OSError:
            continue
        if old:
            shutil.rmtree(folder, ignore_errors=True)


def _damaged(run: StoredRun, name: str, why: str) -> HistoryError:
    return HistoryError(
        f"{name} of run {run.run_id} in the database is damaged: {why}",
        "run the command again to keep fresh artifacts",
    )
