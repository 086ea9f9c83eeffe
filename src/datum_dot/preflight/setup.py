"""Checks of what `dot init` set up: the registration, the key pair, the token, the crontab."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from datum_dot.errors import ConfigError, CrontabError
from datum_dot.home import keys, tokens
from datum_dot.home.privatefiles import PRIVATE_FILE_MODE, file_mode
from datum_dot.home.userconfig import LoadedConfig, ProjectEntry, config_path, find_project_by_path
from datum_dot.preflight.model import AutoFix, Check, FixKind, Status
from datum_dot.scheduling import cronlines

_NEEDS_INIT = "needs a registered project (dot init)"


def check_registration(
    project_dir: Path, home: Path, loaded: LoadedConfig | ConfigError
) -> tuple[Check, str | None, ProjectEntry | None]:
    """`config.yaml` is valid and registers this project.

    Returns:
        The check, and the project's id and registration when it is registered.
    """
    name = "registration"
    if isinstance(loaded, ConfigError):
        return Check(name, Status.FAIL, loaded.message, loaded.hint), None, None
    found = find_project_by_path(loaded.config, project_dir)
    path = config_path(home)
    if found is None:
        # Runs need no registration; schedules, the webhook and the key pair do.
        return (
            Check(
                name,
                Status.SKIP,
                f"not registered in {path}: runs work without it; `dot init` adds a key pair, "
                "schedules, webhook triggers and a default target",
                f"dot init --project-dir {project_dir}",
            ),
            None,
            None,
        )
    project_id, entry = found
    note = ""
    if loaded.migrated_from is not None:
        note = (
            f" (a version {loaded.migrated_from} file: the next change rewrites it as "
            f"version 1 and keeps a backup)"
        )
    return Check(name, Status.OK, f"project '{project_id}' in {path}{note}"), project_id, entry


def check_key(home: Path, project_id: str | None) -> Check:
    """The project's private key exists, loads, matches its public key and has mode 0600."""
    name = "key"
    if project_id is None:
        return Check(name, Status.SKIP, _NEEDS_INIT)
    state = keys.inspect_key(home, project_id)
    files = state.files
    if not state.exists:
        return Check(
            name,
            Status.FAIL,
            f"{files.private} does not exist",
            "dot validate --auto-fix creates a new ed25519 key pair (or: dot init)",
            (
                AutoFix(
                    FixKind.CREATE_KEY, f"create key pair {files.private}", project_id=project_id
                ),
            ),
        )
    problems: list[str] = []
    fixes: list[str] = []
    repairs: list[AutoFix] = []
    if not state.is_private:
        problems.append(
            f"{files.private} has mode {state.mode:04o}: others may read the private key"
        )
        fixes.append(f"chmod 600 {files.private}")
        repairs.append(
            AutoFix(FixKind.CHMOD_PRIVATE, f"chmod 600 {files.private}", (files.private,))
        )
    if state.problem is not None and state.key_type is not None and not files.public.exists():
        problems.append(state.problem)
        fixes.append("dot validate --auto-fix writes it again from the private key")
        repairs.append(AutoFix(FixKind.CREATE_KEY, f"write {files.public}", project_id=project_id))
    elif state.problem is not None:
        problems.append(state.problem)
        fixes.append("dot init --force replaces the key pair (share the new public key again)")
    if problems:
        return Check(name, Status.FAIL, "; ".join(problems), "; ".join(fixes), tuple(repairs))
    return Check(name, Status.OK, f"{files.private} ({state.key_type}), mode 0600")


def check_token(home: Path, *, registered: bool = True) -> Check:
    """The webhook token file exists, is not empty and has mode 0600.

    Args:
        home: `$DATUM_HOME`.
        registered: Whether the project is registered; only a registered project can be run
            through the webhook, so a missing token is no warning for one that is not.
    """
    name = "webhook token"
    path = tokens.token_path(home)
    create = AutoFix(FixKind.CREATE_TOKEN, f"create a new webhook token in {path}", (path,))
    if not path.exists() and not registered:
        return Check(name, Status.SKIP, _NEEDS_INIT)
    if not path.exists():
        detail = f"{path} does not exist: the webhook cannot authenticate requests"
        return Check(name, Status.WARN, detail, "dot init (or dot validate --auto-fix)", (create,))
    mode = file_mode(path)
    if mode != PRIVATE_FILE_MODE:
        return Check(
            name,
            Status.FAIL,
            f"{path} has mode {mode:04o}: others may read the token",
            f"chmod 600 {path}",
            (AutoFix(FixKind.CHMOD_PRIVATE, f"chmod 600 {path}", (path,)),),
        )
    if tokens.read_webhook_token(home) is None:
        return Check(name, Status.FAIL, f"{path} is empty or unreadable", "dot init", (create,))
    return Check(name, Status.OK, f"{path}, mode 0600")


def check_crontab(
    project_id: str | None, entry: ProjectEntry | None, environ: Mapping[str, str]
) -> Check:
    """The project's crontab lines belong to existing schedules and run an existing program."""
    name = "crontab"
    if project_id is None or entry is None:
        return Check(name, Status.SKIP, _NEEDS_INIT)
    source = cronlines.crontab_source(environ)
    if source is None:
        detail = f"no crontab program and {cronlines.CRONTAB_ENV} is not set: no schedules"
        return Check(name, Status.SKIP, detail)
    try:
        lines = cronlines.marked_lines(cronlines.read_crontab(source), project_id)
    except CrontabError as e:
        return Check(name, Status.WARN, e.message, e.hint)
    if not lines:
        return Check(name, Status.OK, f"no schedules of '{project_id}' in {source}")
    known = {str(s.get("name")) for s in entry.schedules}
    orphans = [line for line in lines if line.schedule not in known]
    broken = [line for line in lines if line.schedule in known and not line.has_executable()]
    problems: list[str] = []
    fixes: list[str] = []
    if orphans:
        names = ", ".join(sorted({line.schedule for line in orphans}))
        problems.append(f"{len(orphans)} line(s) of schedules that no longer exist ({names})")
        fixes.append("dot validate --auto-fix removes them")
    problems.extend(
        f"schedule '{line.schedule}' (line {line.number}) runs {line.executable}, which does "
        "not exist"
        for line in broken
    )
    if broken:
        fixes.append("re-create those schedules with this installation of dot, or crontab -e")
    if not problems:
        return Check(name, Status.OK, f"{len(lines)} line(s) in {source}, programs present")
    auto: tuple[AutoFix, ...] = ()
    if orphans:
        auto = (
            AutoFix(
                FixKind.REMOVE_CRON_LINES,
                f"remove {len(orphans)} line(s) of deleted schedules from {source}",
                project_id=project_id,
                lines=tuple(line.text for line in orphans),
            ),
        )
    return Check(name, Status.FAIL, f"{source}: {'; '.join(problems)}", "; ".join(fixes), auto)
