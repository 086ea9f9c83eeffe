"""One writer at a time for a warehouse that is a single file (DuckDB).

DuckDB lets one process at a time open a database file for writing; a second `dbt` fails at once
with "Could not set lock on file". Builds of different commits have folders and schemas of their
own, but when their profiles point at the same DuckDB file, they must take turns on it: the
second run waits, says so as it does for the build lock, and starts when the first is done.

The file is found in the profile the run uses (its `path:`, with `env_var()` rendered, relative
to the project folder dbt runs from). In-memory and MotherDuck databases, and adapters with a
server in front (Postgres, Snowflake, ...), take no lock. dbt-sqlite maps each schema to a file
of its own (`schemas_and_paths`) and is not covered.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import ExitStack, contextmanager
from pathlib import Path

from datum_dot.config import profiles
from datum_dot.errors import ConfigError, LockTimeoutError, ProfileError, ProjectNotFoundError
from datum_dot.home.locks import file_lock
from datum_dot.runs import isolation
from datum_dot.runs.plan import BuildPlan

LOCK_TIMEOUT_SECONDS = 30 * 60.0
_NOT_A_FILE = (":memory:", "md:", "motherduck:")


def single_writer_file(plan: BuildPlan, environ: Mapping[str, str]) -> Path | None:
    """The DuckDB file the plan's profile target writes to, or None if it is not one.

    A profile dot cannot read here (a Jinja path it cannot render, a missing profile) gives
    None: the run goes ahead without the lock, and dbt reports whatever is wrong.
    """
    try:
        settings = _target_settings(plan)
    except (ProfileError, ConfigError, ProjectNotFoundError):
        return None
    if settings.get("type") != "duckdb":
        return None
    raw = settings.get("path", ":memory:")
    path = isolation.expected_schema(str(raw), environ)  # renders env_var() as dbt would
    if path is None or not path or path.startswith(_NOT_A_FILE) or "://" in path:
        return None
    file = Path(path).expanduser()
    return (plan.source_project_dir / file if not file.is_absolute() else file).resolve()


@contextmanager
def writing(
    database: Path | None,
    *,
    locks_dir: Path,
    timeout: float | None,
    on_wait: Callable[[str], None] | None = None,
) -> Iterator[float]:
    """Hold the database file's writer lock inside the block (nothing, for None).

    Args:
        database: The DuckDB file, from `single_writer_file`.
        locks_dir: Where lock files live (`$DATUM_HOME/locks`): every dot process of the user
            sees the same lock, whichever project or commit it builds.
        timeout: The run's `--timeout`: the wait counts against it. None: wait up to 30 minutes.
        on_wait: Called once with a message when another run holds the file.

    Yields:
        The seconds spent waiting.

    Raises:
        LockTimeoutError: The file was still in use when the timeout ran out.
    """
    if database is None:
        yield 0.0
        return
    digest = hashlib.sha256(str(database).encode()).hexdigest()[:16]
    lock = locks_dir / "warehouse" / f"{digest}.lock"
    message = f"another dot process is writing to {database}; waiting for it"
    started = time.monotonic()
    limit = LOCK_TIMEOUT_SECONDS if timeout is None else timeout
    held = ExitStack()
    try:
        held.enter_context(
            file_lock(lock, timeout=limit, on_wait=(lambda: on_wait(message)) if on_wait else None)
        )
    except LockTimeoutError as e:
        raise LockTimeoutError(
            f"timed out after {limit:g}s waiting for another dot process to finish writing "
            f"to {database}",
            "DuckDB takes one writer at a time: wait for the other run, or give a longer --timeout",
        ) from e
    except OSError as e:
        # $DATUM_HOME is full or read-only: the lock is a courtesy between runs, never a reason
        # for this one not to run (the history is a witness, not a dependency, likewise).
        if on_wait is not None:
            on_wait(
                f"could not take the writer lock of {database} ({e.strerror or e}): this run "
                "does not wait for other runs on that file"
            )
    with held:
        yield time.monotonic() - started


def _target_settings(plan: BuildPlan) -> Mapping[str, object]:
    iso = plan.isolated
    target: str | None
    if iso is not None:
        source, profile, target = iso.profile.source_path, iso.profile.profile, iso.profile.target
    else:
        source = plan.profiles_dir / profiles.PROFILES_FILE
        profile = profiles.read_project_profile_name(plan.project_dir)
        target = _target_arg(plan.dbt_args)
    _, settings = profiles.select_target(
        profiles.load_profiles(source), profile, target, path=source
    )
    return settings


def _target_arg(args: tuple[str, ...]) -> str | None:
    found = None
    for i, arg in enumerate(args):
        if arg in {"--target", "-t"} and i + 1 < len(args):
            found = args[i + 1]
        elif arg.startswith("--target="):
            found = arg.partition("=")[2]
    return found
