"""`dot history copy`: a run history copied from one store to the other, without loss.

From SQLite (this `$DATUM_HOME`) to PostgreSQL, or back. Every record is copied with all its
columns (status, codes, counts, error, state, the artifacts' index), the relations index of
`dot which`, and each run's output lines:

- to PostgreSQL, the lines are read from the run's output.log, and the record names the folder
  the run's files are in on this host (`run_dir`), as records written there directly do;
- to SQLite, a run whose folder is not on this host gets one, with its output.log, stdout.log
  and stderr.log written from the database's lines and its metadata.json; a folder that exists is
  left as it is. The artifacts stay where the run made them: the record lists them (name, sha256,
  size), as it did; those the database keeps (`--artifacts-to-db`) are written into the run's
  folder on this host, checked against their sha256.

With `artifacts_to_db` (`dot history copy --to postgresql://... --artifacts-to-db`), the
artifacts of each run copied to PostgreSQL are stored in the database too, compressed, as
`--artifacts-to-db` stores a run's (`dbartifacts`): those whose file in the run's folder is still
what the run wrote.

A copy is idempotent: a record already in the target is replaced by the source's (a run that
has finished since the last copy shows finished), and a line already there is skipped by its
number. Records are read in start order, in batches of `BATCH`; `progress` is told after each.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from datum_dot.history import dbartifacts
from datum_dot.history.artifacts import artifacts_from_json, artifacts_to_json, sha256_of
from datum_dot.history.database import END_COLUMNS, START_COLUMNS
from datum_dot.history.files import (
    LOG_FILES,
    METADATA,
    OUTPUT_LOG,
    STDERR_LOG,
    STDOUT_LOG,
    unstamp,
    write_json_atomic,
)
from datum_dot.history.index import Row, Session
from datum_dot.history.store import RunStore

BATCH = 500
COLUMNS = tuple(dict.fromkeys((*START_COLUMNS, *END_COLUMNS, "relations_indexed")))
_UPSERT = (
    f"INSERT INTO runs ({', '.join(COLUMNS)}) VALUES ({', '.join(':' + c for c in COLUMNS)})"  # noqa: S608
    f" ON CONFLICT (run_id) DO UPDATE SET {', '.join(f'{c} = excluded.{c}' for c in COLUMNS[1:])}"
)
_UPSERT_RELATION = (
    "INSERT INTO built_relations (run_id, unique_id, relation, name, status)"
    " VALUES (:run_id, :unique_id, :relation, :name, :status) ON CONFLICT (run_id, unique_id)"
    " DO UPDATE SET relation = excluded.relation, name = excluded.name, status = excluded.status"
)
_INSERT_LINE = (
    "INSERT INTO run_lines (run_id, seq, stream, line) VALUES (?, ?, ?, ?)"
    " ON CONFLICT (run_id, seq) DO NOTHING"
)


@dataclass(frozen=True)
class CopyResult:
    """What a copy did.

    Attributes:
        runs: Records copied (new or replaced).
        lines: Output lines sent to a PostgreSQL target (0 for SQLite).
        folders: Run folders made on this host (a SQLite target only).
        artifacts: Artifacts stored in the PostgreSQL target, or written from the PostgreSQL
            source into run folders on this host.
    """

    runs: int
    lines: int
    folders: int
    artifacts: int = 0


def copy_history(
    source: RunStore,
    target: RunStore,
    *,
    progress: Callable[[int, int], None] | None = None,
    artifacts_to_db: bool = False,
) -> CopyResult:
    """Copy every record of `source` into `target`.

    Args:
        source: The history copied from.
        target: The history copied to (the other kind of store).
        progress: Told `(records copied, records in all)` after each batch.
        artifacts_to_db: To PostgreSQL, store the runs' artifacts in the database too.

    Returns:
        What was copied.

    Raises:
        HistoryError: Either store is unusable (unreachable, newer, corrupted).
    """
    if not source.index_exists():
        if progress is not None:
            progress(0, 0)
        return CopyResult(0, 0, 0)
    with source.session(create=False) as s:
        total_row = s.one("SELECT count(*) AS n FROM runs")
    total = int(total_row["n"]) if total_row else 0
    done = lines = folders = artifacts = 0
    after = ("", "")
    if progress is not None:
        progress(0, total)
    while True:
        with source.session(create=False) as s:
            rows = s.rows(
                "SELECT * FROM runs WHERE started_at > ? OR (started_at = ? AND run_id > ?)"
                " ORDER BY started_at, run_id LIMIT ?",
                (after[0], after[0], after[1], BATCH),
            )
            ids = [row["run_id"] for row in rows]
            relations = _relations(s, ids)
            remote = _lines(s, ids) if source.in_postgres else {}
        if not rows:
            break
        after = (rows[-1]["started_at"], rows[-1]["run_id"])
        with target.session(create=True) as t, t.transaction():
            # A copy's own store keeps no artifact the other database keeps: stored again
            # below when asked (to PostgreSQL) or written into the run's folder (to SQLite).
            t.run_many(
                _UPSERT, [{**{c: row[c] for c in COLUMNS}, **_unmarked(row)} for row in rows]
            )
            t.run_many(_UPSERT_RELATION, relations)
            if target.in_postgres:
                sent = _local_lines(source, rows)
                t.run_many(_INSERT_LINE, sent)
                t.run_many(
                    "UPDATE runs SET run_dir = ? WHERE run_id = ?",
                    [(str(source.run_dir(row["run_id"])), row["run_id"]) for row in rows],
                )
                lines += len(sent)
                if artifacts_to_db:
                    artifacts += _store_artifacts(t, source, rows)
        if not target.in_postgres:
            for row in rows:
                folders += _make_folder(target, row, remote.get(row["run_id"], []))
            artifacts += _write_artifacts(source, target, rows)
        done += len(rows)
        if progress is not None:
            progress(done, total)
    return CopyResult(done, lines, folders, artifacts)


def _unmarked(row: Row) -> dict[str, Any]:
    """The row's artifacts' index without the marks of copies in the source's database."""
    listed = artifacts_from_json(row["artifacts"])
    plain = {name: replace(a, in_db=False) for name, a in listed.items()}
    return {"artifacts": artifacts_to_json(plain)} if listed else {}


def _store_artifacts(t: Session, source: RunStore, rows: list[Row]) -> int:
    """Store the artifacts of these runs, from their folders on this host, in the PostgreSQL
    target (one run at a time: a manifest may be large); how many were stored."""
    count = 0
    for row in rows:
        listed = artifacts_from_json(row["artifacts"])
        if not listed:
            continue
        run_id = row["run_id"]
        stored = dbartifacts.store(t, run_id, source.run_dir(run_id), listed)
        count += sum(a.in_db for a in stored.values())
        t.run("UPDATE runs SET artifacts = ? WHERE run_id = ?", (artifacts_to_json(stored), run_id))
    return count


def _write_artifacts(source: RunStore, target: RunStore, rows: list[Row]) -> int:
    """Write the artifacts the PostgreSQL source keeps of these runs into their folders on
    this host, where a file is not already what the run wrote; how many were written."""
    count = 0
    for row in rows:
        run = source.to_run(row)
        wanted = [a for a in run.artifacts.values() if a.in_db]
        folder = target.run_dir(run.run_id)
        missing = [a for a in wanted if not _holds(folder / a.name, a.sha256)]
        if not missing:
            continue
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        with source.session(create=False) as s:
            for artifact in missing:
                data = dbartifacts.read(s, run, artifact.name)
                _write_private_bytes(folder / artifact.name, data)
                count += 1
    return count


def _holds(path: Path, sha256: str) -> bool:
    try:
        return sha256_of(path) == sha256
    except OSError:
        return False


def _write_private_bytes(path: Path, data: bytes) -> None:
    path.touch(mode=0o600)
    path.write_bytes(data)


def _relations(s: Session, ids: list[str]) -> list[dict[str, Any]]:
    if not ids:
        return []
    marks = ", ".join("?" * len(ids))
    sql = f"SELECT * FROM built_relations WHERE run_id IN ({marks})"  # noqa: S608
    keys = ("run_id", "unique_id", "relation", "name", "status")
    return [{k: row[k] for k in keys} for row in s.rows(sql, ids)]


def _lines(s: Session, ids: list[str]) -> dict[str, list[tuple[str, str]]]:
    """The database's output lines of these runs: run id -> (stream, stamped line), in order."""
    found: dict[str, list[tuple[str, str]]] = {}
    if not ids:
        return found
    marks = ", ".join("?" * len(ids))
    sql = (
        f"SELECT run_id, stream, line FROM run_lines WHERE run_id IN ({marks})"  # noqa: S608
        " ORDER BY run_id, seq"
    )
    for row in s.rows(sql, ids):
        found.setdefault(row["run_id"], []).append((row["stream"], row["line"]))
    return found


def _local_lines(source: RunStore, rows: list[Row]) -> list[tuple[str, int, str, str]]:
    """The output.log lines of these runs on this host, numbered, each with its stream."""
    sent: list[tuple[str, int, str, str]] = []
    for row in rows:
        streamed = _streamed(source.run_dir(row["run_id"]))
        sent += [(row["run_id"], n, stream, line) for n, (stream, line) in enumerate(streamed)]
    return sent


def _streamed(run_dir: Path) -> list[tuple[str, str]]:
    """A run's output.log lines, each with the stream it came from.

    output.log holds stdout and stderr together, stamped; which stream each line came from is
    found by walking stdout.log and stderr.log along with it (each holds its lines unstamped, in
    the same order). A line neither names next is `output`.
    """
    texts = {}
    for name in LOG_FILES:
        try:
            texts[name] = (run_dir / name).read_text(encoding="utf-8", errors="replace")
        except OSError:
            texts[name] = ""
    out, err = texts[STDOUT_LOG].splitlines(), texts[STDERR_LOG].splitlines()
    i = j = 0
    streamed: list[tuple[str, str]] = []
    for line in texts[OUTPUT_LOG].splitlines():
        raw = unstamp(line)
        if i < len(out) and out[i] == raw:
            streamed.append(("stdout", line))
            i += 1
        elif j < len(err) and err[j] == raw:
            streamed.append(("stderr", line))
            j += 1
        else:
            streamed.append(("output", line))
    return streamed


def _make_folder(target: RunStore, row: Row, lines: list[tuple[str, str]]) -> int:
    """Give a run copied to SQLite a folder on this host, unless it has one; 1 if made."""
    folder = target.run_dir(row["run_id"])
    if folder.exists():
        return 0
    folder.mkdir(mode=0o700, parents=True)
    texts = dict.fromkeys(LOG_FILES, "")
    for stream, line in lines:
        texts[OUTPUT_LOG] += line + "\n"
        texts[STDERR_LOG if stream == "stderr" else STDOUT_LOG] += unstamp(line) + "\n"
    for name, text in texts.items():
        _write_private(folder / name, text)
    run = target.to_run(row)
    write_json_atomic(folder / METADATA, run.to_json())
    return 1


def _write_private(path: Path, text: str) -> None:
    path.touch(mode=0o600)
    path.write_text(text, encoding="utf-8")


__all__ = ["BATCH", "CopyResult", "copy_history"]
