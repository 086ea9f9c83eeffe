"""`dot schedule <verb>`: arguments to typed values, one core call, the result shown.

Crontab changes are shown line by line (`+` added, `-` removed) and asked about on the terminal;
`--yes` answers for the user, `--dry-run` stops after showing, and without a terminal (cron, CI,
a pipe) and without `--yes` nothing is changed (exit 20). Output is plain text: `schedule run`
is read in cron.log more often than on a screen.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from datum_dot.cli import terminal
from datum_dot.cli.parser import DBT_COMMANDS
from datum_dot.errors import ExitCode, ProjectNotFoundError, ScheduleError, UsageError
from datum_dot.execute import Observer
from datum_dot.home import sessionlog, userconfig
from datum_dot.home.privatefiles import PRIVATE_FILE_MODE, file_mode
from datum_dot.home.serverstate import ServerStatus, server_status
from datum_dot.home.settings import datum_home
from datum_dot.runs.planner import find_project_dir
from datum_dot.runs.run import Trigger

if TYPE_CHECKING:
    from datum_dot.scheduling.export.exports import Options
    from datum_dot.scheduling.report import ScheduleView
    from datum_dot.scheduling.schedules import Located


def run_schedule(args: argparse.Namespace, passthrough: list[str], *, prog: str) -> int:
    """Dispatch one `dot schedule` verb; returns the exit code."""
    verb = args.schedule_command or "list"
    if passthrough and verb != "add":
        raise UsageError(
            f"'{prog} schedule {verb}' takes no arguments after `--`",
            "arguments for dbt belong to `schedule add ... -- <args>`",
        )
    handler = {
        "add": _add,
        "list": _list,
        "status": _status,
        "pause": _change,
        "resume": _change,
        "remove": _change,
        "run": _run,
        "pin": _pin,
        "export": _export,
    }[verb]
    return handler(args, passthrough, prog)


def _add(args: argparse.Namespace, passthrough: list[str], prog: str) -> int:
    # lazy: each verb loads only its own scheduling modules
    from datum_dot.scheduling.adding import AddRequest, apply_add, plan_add
    from datum_dot.scheduling.cronexpr import zone_name
    from datum_dot.scheduling.schedules import Overlap

    name, spec = args.name, args.spec
    if not spec:
        # One word is the spec, and the name is made from it (`add --cron X prod@main`).
        name, spec = None, name or ""
    if args.fetch_optional and not args.fetch:
        raise UsageError(
            "--fetch-optional goes with --fetch", "add --fetch, or drop --fetch-optional"
        )
    request = AddRequest(
        name=name,
        cron=args.cron,
        spec=spec,
        project_dir=args.project_dir or Path.cwd(),
        command=_command_words(args.dbt_command, prog),
        dbt_args=tuple(passthrough),
        pin=args.pin,
        fetch=args.fetch,
        fetch_optional=args.fetch_optional,
        overlap=Overlap(args.overlap),
        timeout=args.timeout,
        defer=args.defer,
        state_source=args.state_source,
        state_from=args.state_from,
        max_state_age=args.max_state_age,
    )
    home = datum_home()
    plan = plan_add(request, home=home, environ=os.environ)
    s = plan.schedule
    register = " (registered now, as `dot init` would)" if plan.register else ""
    print(f"schedule  {s.name} of project {plan.project_id}{register}")
    print(f"builds    {_what(s.spec, s.command, s.dbt_args)}")
    if s.defer or s.state_from:
        print(f"state     {_state(s.defer, s.state_source, s.state_from, s.max_state_age)}")
    if s.pinned_commit:
        print(f"pinned    {s.pinned_ref} -> {s.pinned_commit}")
    elif plan.commit:
        print(f"ref       {s.spec.partition('@')[2]} resolves to {plan.commit} now; "
              "resolved again at each firing")  # fmt: skip
    zone = zone_name(plan.next_times[0])
    times = ", ".join(f"{t:%Y-%m-%d %H:%M}" for t in plan.next_times)
    print(f"cron      {s.cron}: next {times} ({zone})")
    _show_change(plan.crontab.describe(), add=(plan.line,), remove=plan.replaced)
    if not _confirmed(args, "install this line"):
        return int(ExitCode.OK)
    apply_add(plan, home=home)
    print(f"added schedule '{s.name}'; check it with `{prog} schedule status`")
    _warn_history_not_shared(home, prog)
    return int(ExitCode.OK)


def _warn_history_not_shared(home: Path, prog: str) -> None:
    """Say so when this shell keeps the history in PostgreSQL but cron's runs would not: a
    crontab line carries `DATUM_HOME`, never a connection string (it may hold a password)."""
    # lazy: only `schedule add` asks
    from datum_dot.home.dburl import URL_VARIABLE, database_url

    if not os.environ.get(URL_VARIABLE, "").strip():
        return
    if database_url(home, {}) is not None:
        return  # config.yaml names the database: the cron run reads it there
    print(
        f"warning: {URL_VARIABLE} is set in this shell, but cron does not pass it on: this "
        f"schedule's runs are recorded in SQLite under {home}",
        file=sys.stderr,
    )
    print(
        f"  to record them in PostgreSQL too: {prog} config set database.url <URL without its "
        "password> (the password in ~/.pgpass)",
        file=sys.stderr,
    )


def _list(args: argparse.Namespace, passthrough: list[str], prog: str) -> int:
    # lazy: each verb loads only its own scheduling modules
    from datum_dot.scheduling.report import report

    found = report(datum_home(), project_id=args.project, environ=os.environ, crontab=False)
    if args.json:
        print(json.dumps([v.to_json() for v in found.views], indent=2))
        return int(ExitCode.OK)
    _print_table(found.views)
    return int(ExitCode.OK)


def _status(args: argparse.Namespace, passthrough: list[str], prog: str) -> int:
    # lazy: each verb loads only its own scheduling modules
    from datum_dot.scheduling.report import report

    found = report(datum_home(), project_id=args.project, environ=os.environ, crontab=True)
    problems = found.problems
    webhook = server_status(datum_home())
    if args.json:
        data = {
            "crontab": found.crontab,
            "schedules": [v.to_json() for v in found.views],
            "orphan_lines": [ln.text for ln in found.orphans],
            "webhook": webhook.to_json(),
            "problems": problems,
        }
        print(json.dumps(data, indent=2))
        return int(ExitCode.WARNINGS if problems else ExitCode.OK)
    _print_table(found.views)
    print(f"\ncrontab: {found.crontab or 'unavailable'}")
    lines = [ln for v in found.views for ln in v.lines] + list(found.orphans)
    for line in sorted(lines, key=lambda ln: ln.number):
        print(f"  {line.number:>4}  {line.text}")
    if not lines:
        print("  (no lines of datum-dot)")
    print(f"\nwebhook server: {_webhook_line(webhook, prog)}")
    for problem in problems:
        print(f"warning: {problem}", file=sys.stderr)
    return int(ExitCode.WARNINGS if problems else ExitCode.OK)


def _webhook_line(status: ServerStatus, prog: str) -> str:
    state = status.state
    if status.running and state is not None:
        since = state.started_at.replace("T", " ").replace("+00:00", " UTC")
        return f"running at {state.url} since {since} (pid {state.pid})"
    if state is not None:
        return (
            f"not running (the one at {state.url} ended without stopping cleanly); "
            f"start it: {prog} webhook serve"
        )
    return f"not running; start it: {prog} webhook serve"


def _change(args: argparse.Namespace, passthrough: list[str], prog: str) -> int:
    # lazy: each verb loads only its own scheduling modules
    from datum_dot.scheduling.changes import apply_change, plan_change
    from datum_dot.scheduling.schedules import find_schedule

    verb, home = args.schedule_command, datum_home()
    try:
        located = find_schedule(home, args.name, _project(args))
    except ScheduleError:
        located = None
        if verb != "remove" or _project(args) is None:
            raise
    change = plan_change(verb, located, name=args.name, project_id=_project(args), home=home,
                         environ=os.environ)  # fmt: skip
    if located is None and not change.remove:
        raise ScheduleError(
            f"no schedule named '{args.name}' in project '{change.project_id}'",
            "run `dot schedule list` to see every schedule",
        )
    if (
        change.schedule is not None
        and not change.changes_crontab
        and (change.schedule == (located.schedule if located else None))
    ):
        state = "active" if change.schedule.enabled else "paused"
        print(f"schedule '{args.name}' is already {state}; nothing to change")
        return int(ExitCode.OK)
    _show_change(change.crontab.describe(), add=change.add, remove=change.remove)
    if not _confirmed(args, f"{verb} schedule '{args.name}'"):
        return int(ExitCode.OK)
    apply_change(change, home=home)
    done = {"pause": "paused", "resume": "resumed", "remove": "removed"}[verb]
    print(f"{done} schedule '{args.name}' of project '{change.project_id}'")
    return int(ExitCode.OK)


def _run(args: argparse.Namespace, passthrough: list[str], prog: str) -> int:
    # lazy: each verb loads only its own scheduling modules
    from datum_dot.scheduling.fire import fire
    from datum_dot.scheduling.schedules import find_schedule

    home = datum_home()
    embedded = _embedded(args)
    if embedded is None:
        located, runtime = find_schedule(home, args.name, _project(args)), None
    else:
        located, runtime = embedded
    # An embedded definition is what an exported CronJob, timer or workflow fires with.
    scheduled = args.from_cron or embedded is not None
    trigger = Trigger.CRON if scheduled else Trigger.MANUAL
    label = f"{located.project_id}/{located.schedule.name}"
    if not located.schedule.enabled and scheduled and not args.dry_run:
        sessionlog.write_event("info", f"schedule {label} is paused: cron firing ignored")
        print(f"{_now()} {label}: PAUSED, not run")
        return int(ExitCode.OK)
    if args.from_cron:
        _trim_cron_log(home)
    observer = Observer() if args.from_cron or args.json else _steps(prog)
    if not args.dry_run:
        # a pod's log, a timer's journal, cron's mail: dbt's colour codes only on a terminal
        terminal.configure(located.schedule.command, located.schedule.dbt_args, live_display=False)
    with _silenced(args.from_cron and not args.dry_run):
        firing = fire(located, home=home, trigger=trigger, dry_run=args.dry_run, observer=observer,
                      runtime=runtime)  # fmt: skip
    record = firing.record
    if args.json:
        print(json.dumps({
            "schedule": located.schedule.name, "project": located.project_id,
            "status": firing.status.value, "exit_code": int(firing.exit_code),
            "run_id": firing.run_id, "message": firing.message or (record.error if record else None),
            "commit": record.plan.isolated.commit if record and record.plan and record.plan.isolated else None,
        }, indent=2))  # fmt: skip
        return int(firing.exit_code)
    commit = ""
    if record is not None and record.plan is not None and record.plan.isolated is not None:
        iso = record.plan.isolated
        # A pinned schedule's ref is its commit: the arrow only says where a name led.
        built = iso.commit[:12]
        moved = "" if iso.commit.startswith(iso.ref.lower()) else f"{iso.ref} -> "
        commit = f" {moved}{built} into {iso.profile.schema_after}"
    where = f"; details: {prog} logs {firing.run_id}" if firing.run_id else ""
    seconds = f" in {record.duration_seconds:.1f}s" if record and record.duration_seconds else ""
    print(f"{_now()} {label}: {firing.status.value}{commit}{seconds}{where}")
    if firing.message:
        print(firing.message)
    elif record is not None and record.error:
        print(f"error: {record.error}")
    return int(firing.exit_code)


def _embedded(args: argparse.Namespace) -> tuple[Located, str | None] | None:
    """The schedule `DOT_SCHEDULE_DEFINITION` defines, with its runtime; None without one.

    Its project is the dbt project found from the current folder (the exported file sets it).
    The registration's target goes to `DBT_TARGET`, which dbt reads below any other choice.
    """
    # lazy: each verb loads only its own scheduling modules
    from datum_dot.scheduling.export.definition import (
        DEFINITION_ENV,
        decode_definition,
        located_from_definition,
    )

    text = os.environ.get(DEFINITION_ENV, "").strip()
    if not text:
        return None
    definition = decode_definition(text, name=args.name)
    if args.project and args.project != definition.project:
        raise UsageError(
            f"--project {args.project} differs from the project of {DEFINITION_ENV}: "
            f"{definition.project}",
            f"drop --project, or unset {DEFINITION_ENV} to run a schedule of config.yaml",
        )
    located = located_from_definition(definition, find_project_dir(Path.cwd()))
    os.environ.setdefault("DBT_TARGET", definition.target)
    return located, (definition.runtime if definition.runtime != "local" else None)


def _pin(args: argparse.Namespace, passthrough: list[str], prog: str) -> int:
    # lazy: each verb loads only its own scheduling modules
    from datum_dot.scheduling.changes import apply_pin, plan_pin
    from datum_dot.scheduling.schedules import find_schedule

    home = datum_home()
    located = find_schedule(home, args.name, _project(args))
    pin = plan_pin(located, args.ref)
    print(f"schedule  {located.schedule.name} of project {located.project_id}")
    print(f"before    {pin.before} ({located.schedule.pinned_ref or '?'})")
    print(f"after     {pin.after} ({args.ref})")
    if pin.before == pin.after:
        print("already pinned to that commit; nothing to change")
        return int(ExitCode.OK)
    if args.dry_run:
        print("dry run: nothing changed")
        return int(ExitCode.OK)
    run_id = apply_pin(pin, home=home)
    print(f"pinned; recorded as {run_id} (the crontab is unchanged)")
    return int(ExitCode.OK)


# Options of one target only: given with another, they would be silently ignored.
_TARGET_OPTIONS = {
    "kubernetes": ("image", "git_url", "repo_dir", "secret", "namespace", "starting_deadline"),
    "systemd": ("user_units", "persistent", "env_file"),
    "github-actions": ("utc_ok", "install", "python"),
}


def _export(args: argparse.Namespace, passthrough: list[str], prog: str) -> int:
    # lazy: each verb loads only its own scheduling modules
    from datum_dot.scheduling.export.exports import render, select_schedules, write_files

    if (args.name is None) == (not args.all_schedules):
        raise UsageError(
            "name one schedule or pass --all",
            f"for example: {prog} schedule export nightly --to {args.to}",
        )
    options = _export_options(args)
    home = datum_home()
    chosen = select_schedules(home, name=args.name, project_id=_project(args))
    renderings = [render(located, options, zone=args.time_zone) for located in chosen]
    files = [f for r in renderings for f in r.files]
    if args.output == "-":
        for file in files:
            # One stream: `kubectl apply -f -` reads the documents apart at `---`.
            print("---" if args.to == "kubernetes" else f"# file: {file.name}")
            print(file.text, end="")
        shown = "<the folder you saved them in>"
    else:
        for path in write_files(files, Path(args.output)):
            print(f"wrote {path}", file=sys.stderr)
        shown = args.output.rstrip("/") or "/"
    for rendering in renderings:
        for note in rendering.notes:
            print(note.replace("{dir}", shown), file=sys.stderr)
    return int(ExitCode.OK)


def _export_options(args: argparse.Namespace) -> Options:
    # lazy: each verb loads only its own scheduling modules
    from datum_dot.scheduling.cronenv import entry_point
    from datum_dot.scheduling.export.airflow import AirflowOptions
    from datum_dot.scheduling.export.dagster import DagsterOptions
    from datum_dot.scheduling.export.github import GithubOptions
    from datum_dot.scheduling.export.kubernetes import KubernetesOptions
    from datum_dot.scheduling.export.systemd import SystemdOptions

    for target, names in _TARGET_OPTIONS.items():
        given = [n for n in names if getattr(args, n) not in (None, False)]
        if target != args.to and given:
            flag = "--" + given[0].replace("_", "-").replace("user-units", "user")
            raise UsageError(f"{flag} is an option of --to {target}, not of --to {args.to}",
                             f"drop {flag}, or export --to {target}")  # fmt: skip
    if args.profiles_in_repo and args.to == "systemd":
        raise UsageError(
            "--profiles-in-repo is for --to kubernetes and github-actions",
            "systemd units use the profiles.yml of this machine's project folder: drop it",
        )
    if args.to == "airflow":
        if args.profiles_in_repo:
            raise UsageError(
                "--profiles-in-repo is for --to kubernetes and github-actions",
                "Airflow runs use the profiles.yml of the project folder: drop it",
            )
        return AirflowOptions()
    if args.to == "dagster":
        if args.profiles_in_repo:
            raise UsageError(
                "--profiles-in-repo is for --to kubernetes and github-actions",
                "Dagster runs use the profiles.yml of the project folder: drop it",
            )
        return DagsterOptions()
    if args.to == "kubernetes":
        if not args.image:
            raise UsageError(
                "--to kubernetes needs --image: the image the CronJob's pod runs",
                "build the repository's Containerfile and pass it: --image <registry>/dot:<tag>",
            )
        return KubernetesOptions(image=args.image, git_url=args.git_url, repo_dir=args.repo_dir,
                                 secret=args.secret, namespace=args.namespace,
                                 profiles_in_repo=args.profiles_in_repo,
                                 starting_deadline=None if args.starting_deadline is None
                                 else math.ceil(args.starting_deadline))  # fmt: skip
    if args.to == "systemd":
        # User units read ~/.datum as the user's own runs do, unless DATUM_HOME names another.
        home = datum_home()
        other = str(home) if args.user_units and home != Path.home() / ".datum" else None
        return SystemdOptions(program=entry_point(), user=args.user_units,
                              persistent=args.persistent, env_file=args.env_file,
                              datum_home=other)  # fmt: skip
    return GithubOptions(install=args.install or GithubOptions.install,
                         python=args.python or GithubOptions.python, utc_ok=args.utc_ok,
                         profiles_in_repo=args.profiles_in_repo)  # fmt: skip


def _command_words(text: str, prog: str) -> tuple[str, ...]:
    words = tuple(text.split())
    if not words or words[0] not in DBT_COMMANDS:
        raise UsageError(
            f"--command '{text}' is not a dbt command; known: {', '.join(DBT_COMMANDS)}",
            "for example --command build, --command run, --command 'docs generate'",
        )
    return words


def _what(spec: str, command: tuple[str, ...], dbt_args: tuple[str, ...]) -> str:
    text = " ".join(["dbt", *command, spec or "(default environment, working tree)"])
    return f"{text} -- {' '.join(dbt_args)}" if dbt_args else text


def _show_change(where: str, *, add: tuple[str, ...], remove: tuple[str, ...]) -> None:
    if not add and not remove:
        print(f"crontab   {where}: no line to change")
        return
    print(f"crontab   {where}:")
    for line in remove:
        print(f"- {line}")
    for line in add:
        print(f"+ {line}")


def _confirmed(args: argparse.Namespace, what: str) -> bool:
    if args.dry_run:
        print("dry run: nothing changed")
        return False
    if args.yes:
        return True
    ci = os.environ.get("CI", "").lower() in {"1", "true", "yes"}
    if ci or not (sys.stdin.isatty() and sys.stderr.isatty()):
        raise ScheduleError(
            "the crontab is not changed without a yes, and there is no terminal to ask on",
            "pass --yes to confirm (or --dry-run to only see the change)",
        )
    print(f"{what}? [y/N] ", end="", file=sys.stderr, flush=True)
    if sys.stdin.readline().strip().lower() in {"y", "yes"}:
        return True
    print("nothing changed", file=sys.stderr)
    return False


def _print_table(views: tuple[ScheduleView, ...]) -> None:
    # lazy: each verb loads only its own scheduling modules
    from datum_dot.scheduling.cronexpr import zone_name

    rows = [("PROJECT", "NAME", "CRON", "SPEC", "NEXT RUN", "LAST RUN", "STATE")]
    for view in views:
        s, last = view.located.schedule, view.last_run
        spec = s.spec or "(working tree)"
        if s.pinned_commit:
            spec += f" (pinned {s.pinned_commit[:12]})"
        nxt = f"{view.next_run:%Y-%m-%d %H:%M} {zone_name(view.next_run)}" if view.next_run else "-"
        when = "-" if last is None else f"{last.started_at:%Y-%m-%d %H:%M}Z {last.status.value}"
        rows.append((view.located.project_id, s.name, s.cron, spec, nxt, when, view.state))
    if len(rows) == 1:
        print("no schedules (add one: dot schedule add NAME --cron '0 6 * * *' prod@main)")
        return
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        print(
            "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        )


def _project(args: argparse.Namespace) -> str | None:
    """`--project`, else the registered project holding the current folder, else None."""
    if args.project:
        return str(args.project)

    try:
        folder = find_project_dir(Path.cwd())
    except ProjectNotFoundError:
        return None
    found = userconfig.find_project_by_path(userconfig.load_user_config(datum_home()), folder)
    return found[0] if found else None


def _steps(prog: str) -> Observer:
    # lazy: rich loads only for a run shown on a terminal
    from datum_dot.cli.runobserver import CliObserver

    return CliObserver(prog=prog, debug=False, prompts=False)


@contextlib.contextmanager
def _silenced(silent: bool) -> Iterator[None]:
    """Under cron, dbt's output goes to the run's logs only, not to cron.log (or cron's mail).

    The file descriptors are redirected, not just `sys.stdout`: a child process (the subprocess
    runtime's dbt, a forked in-process run) writes to them directly.
    """
    if not silent:
        yield
        return
    sys.stdout.flush()
    sys.stderr.flush()
    saved = os.dup(1), os.dup(2)
    null = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(null, 1)
        os.dup2(null, 2)
        yield
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os.dup2(saved[0], 1)
        os.dup2(saved[1], 2)
        for fd in (*saved, null):
            os.close(fd)


def _trim_cron_log(home: Path) -> None:
    """Keep cron.log small and private: one line per firing, but firings never stop.

    cron's shell creates the file with its own umask when it is missing (it was removed since
    `schedule add` made it): it is made 0600 before anything is written to it.
    """
    # lazy: each verb loads only its own scheduling modules
    from datum_dot.scheduling.cronenv import CRON_LOG

    path = home / CRON_LOG
    try:
        if file_mode(path) != PRIVATE_FILE_MODE:
            path.chmod(PRIVATE_FILE_MODE)
        if path.stat().st_size > 1_000_000:
            os.truncate(path, 0)
    except OSError:
        pass


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _state(defer: str | None, source: str, state_from: str | None, max_age: float | None) -> str:
    """`defer prod (run history), compare to prod@main, at most 43200s old`."""
    parts = []
    if defer:
        where = "" if "@" in defer else f" ({'dbt Cloud' if source == 'cloud' else 'run history'})"
        parts.append(f"defer to {defer}{where}")
    if state_from:
        parts.append(f"compare to {state_from}")
    if max_age is not None:
        parts.append(f"at most {max_age:g}s old")
    return ", ".join(parts)
