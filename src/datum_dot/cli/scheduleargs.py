"""The parser of `dot schedule <verb>` and its dispatch.

Only argparse is imported here (the module is loaded for `dot --help`); `cli/schedule.py` is
imported when the command runs. `dot schedule --cron EXPR SPEC` (no verb) is the datum CLI's
shorthand for `dot schedule add`: `expand_shorthand` inserts the verb before parsing.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TypeVar

from datum_dot.cli.durations import seconds_type
from datum_dot.cli.stateargs import add_state_options

SCHEDULE_COMMANDS = {
    "schedule": "cron schedules: add, list, status, pause, resume, remove, run, pin, export"
}
VERBS = ("add", "list", "status", "pause", "resume", "remove", "run", "pin", "export")
SHORTHAND = "--shorthand"
_VALUED = frozenset(
    {"--cron", "--command", "--overlap", "--timeout", "--project-dir", "--log-format",
     "--defer", "--state-source", "--state-from", "--max-state-age"}
)  # fmt: skip

P = TypeVar("P", bound=argparse.ArgumentParser)
AddOptions = Callable[[argparse.ArgumentParser], None]


def expand_shorthand(argv: Sequence[str]) -> list[str]:
    """`schedule [--cron ...] SPEC` without a verb is `schedule add --shorthand ...`.

    `schedule` alone is `schedule list`; `schedule --help` stays the help.
    """
    args = list(argv)
    words = [
        i
        for i, a in enumerate(args)
        if not a.startswith("-") and (i == 0 or args[i - 1] != "--log-format")
    ]
    if not words or args[words[0]] != "schedule":
        return args
    at = words[0] + 1
    while at < len(args) and args[at] in ("--debug", "--log-format"):
        at += 2 if args[at] == "--log-format" else 1
    if at >= len(args):
        return [*args, "list"]
    if args[at] == "add":
        return [*args[: at + 1], *_positionals_first(args[at + 1 :])]
    if args[at] in VERBS or args[at] in ("-h", "--help"):
        return args
    return [*args[:at], "add", SHORTHAND, *_positionals_first(args[at:])]


def _positionals_first(args: list[str]) -> list[str]:
    """`add`'s NAME and SPEC moved in front of its options.

    argparse (before Python 3.12.7) takes both optional positionals from the first run of
    words it meets, so `add nightly --cron X prod@main` would leave `prod@main` unrecognized.
    """
    words: list[str] = []
    options: list[str] = []
    i = 0
    while i < len(args):
        arg = args[i]
        if arg.startswith("-"):
            options.append(arg)
            if arg in _VALUED and i + 1 < len(args):
                options.append(args[i + 1])
                i += 1
        else:
            words.append(arg)
        i += 1
    return [*words, *options]


def add_schedule_parser(sub: argparse._SubParsersAction[P], *, common: AddOptions) -> None:
    """Add `schedule` and its verbs to the top-level sub-parsers."""
    cmd = sub.add_parser(
        "schedule",
        help=SCHEDULE_COMMANDS["schedule"],
        description="Run dbt from cron. Each schedule is a line in your crontab (or in the file\n"
        "DOT_CRONTAB names) calling `dot schedule run NAME`, which reads the schedule from\n"
        "$DATUM_HOME/config.yaml and records the run in the history. Every crontab change is\n"
        "shown first and needs a yes (--yes; refused without a terminal).",
        epilog='examples: %(prog)s --cron "0 6 * * *" prod@v1.2\n'
        '          %(prog)s add nightly --cron "0 2 * * *" prod@main --fetch -- --exclude tag:slow\n'
        "          %(prog)s list | %(prog)s status | %(prog)s run nightly | %(prog)s pin nightly v1.3",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    common(cmd)
    verbs = cmd.add_subparsers(dest="schedule_command", metavar="<verb>")
    _add_add(verbs, common)
    for verb, what in (
        ("list", "each schedule: cron, spec, next run, last run and its status, state"),
        ("status", "the list, plus the crontab, its exact lines and what is wrong with them"),
    ):
        one = verbs.add_parser(verb, help=what, description=what[0].upper() + what[1:] + ".")
        one.add_argument("--project", metavar="ID", help="only this project's schedules")
        one.add_argument("--json", action="store_true", help="print JSON")
        common(one)
    for verb, what in (
        ("pause", "take the schedule's line out of the crontab; keep the schedule"),
        ("resume", "put a paused schedule's line back into the crontab"),
        ("remove", "take the schedule's line out of the crontab and delete the schedule"),
    ):
        one = verbs.add_parser(verb, help=what, description=what[0].upper() + what[1:] + ".")
        one.add_argument("name", help="the schedule")
        _add_change_options(one)
        common(one)
    _add_run(verbs, common)
    _add_pin(verbs, common)
    _add_export(verbs, common)


def run_schedule_command(args: argparse.Namespace, passthrough: list[str], *, prog: str) -> int:
    """Run `dot schedule <verb>`; returns the exit code."""
    # lazy: the command's modules load when it runs, not for `dot --help`
    from datum_dot.cli.schedule import run_schedule

    return run_schedule(args, passthrough, prog=prog)


def _add_add(verbs: argparse._SubParsersAction[P], common: AddOptions) -> None:
    cmd = verbs.add_parser(
        "add",
        help="add a schedule: check it, show the crontab line, install it",
        description="Add a schedule of the dbt project here. The cron expression is checked "
        "(5 fields or @hourly, @daily, ...; local time) and its next 3 fire times shown; the "
        "environment and ref must resolve now. The exact crontab line is shown, rehearsed with "
        "--dry-run in cron's environment, and installed once confirmed. A project not yet "
        "registered is registered as `dot init` would. Arguments after `--` go to dbt.",
        epilog='examples: %(prog)s nightly --cron "0 2 * * *" prod@main --fetch -- --exclude '
        "tag:slow | %(prog)s pinned --cron @hourly prod@main --pin --yes",
    )
    cmd.add_argument(
        "name",
        nargs="?",
        help="the schedule's name; with one word only, that word is the spec and the name is "
        "made from it (prod@v1.2 -> prod-v1.2)",
    )
    cmd.add_argument(
        "spec", nargs="?", default="", help="[env][@ref] to build (default: the default env)"
    )
    cmd.add_argument("--cron", required=True, metavar="EXPR", help='when: "0 6 * * *", @daily')
    cmd.add_argument(
        "--command",
        dest="dbt_command",
        default="build",
        metavar="WORDS",
        help="the dbt command (default: build)",
    )
    cmd.add_argument(
        "--pin", action="store_true", help="resolve the ref now; build that commit every time"
    )
    cmd.add_argument(
        "--fetch", action="store_true", help="git fetch before resolving the ref at each firing"
    )
    cmd.add_argument(
        "--fetch-optional",
        action="store_true",
        help="with --fetch: a failed fetch is a warning, not the run's failure",
    )
    cmd.add_argument(
        "--overlap",
        choices=("skip", "queue"),
        default="skip",
        help="while the previous run still runs: skip (record SKIPPED; default) or queue",
    )
    cmd.add_argument(
        "--timeout",
        type=seconds_type("--timeout", zero=False),
        metavar="DURATION",
        help="stop dbt after this long (exit 40; 3600, 90m, 2h); also the longest wait with "
        "--overlap queue",
    )
    add_state_options(cmd)  # kept with the schedule for every firing
    cmd.add_argument("--project-dir", type=Path, help="the dbt project (default: search up)")
    cmd.add_argument(SHORTHAND, action="store_true", help=argparse.SUPPRESS)
    _add_change_options(cmd, project=False)
    common(cmd)


def _add_run(verbs: argparse._SubParsersAction[P], common: AddOptions) -> None:
    cmd = verbs.add_parser(
        "run",
        help="run a schedule now: what its crontab line calls",
        description="Run the schedule as cron does: take its lock (--overlap decides when the "
        "previous run still runs), fetch if it says so, build its spec (or pinned commit) and "
        "record the run, with the schedule's name, in the history. The steps and dbt's output "
        "are shown as for any run, then a summary line; with --from-cron (what the crontab line "
        "passes) only the summary line is printed. With DOT_SCHEDULE_DEFINITION set (an exported "
        "CronJob, systemd unit or GitHub workflow sets it), the schedule is read from it instead "
        "of config.yaml, the dbt project is the one found from the current folder, and the run "
        "is recorded with trigger cron.",
    )
    cmd.add_argument("name", help="the schedule")
    cmd.add_argument("--project", metavar="ID", help="the schedule's project (default: found)")
    cmd.add_argument("--dry-run", action="store_true", help="plan only: no lock, fetch, record")
    cmd.add_argument(
        "--from-cron", action="store_true", help="set by the crontab line: trigger cron, no colour"
    )
    cmd.add_argument("--json", action="store_true", help="print the outcome as JSON")
    common(cmd)


def _add_pin(verbs: argparse._SubParsersAction[P], common: AddOptions) -> None:
    cmd = verbs.add_parser(
        "pin",
        help="move a pinned schedule to the commit a ref names now (a deliberate promotion)",
        description="Resolve REF and make the pinned schedule build that commit from now on. "
        "Shows the commit before and after; recorded in config.yaml and the run history. The "
        "crontab is not changed.",
    )
    cmd.add_argument("name", help="the pinned schedule")
    cmd.add_argument("ref", help="the git ref to pin to (a tag, branch or hash)")
    cmd.add_argument("--project", metavar="ID", help="the schedule's project (default: found)")
    cmd.add_argument("--dry-run", action="store_true", help="show the change; change nothing")
    common(cmd)


def _add_export(verbs: argparse._SubParsersAction[P], common: AddOptions) -> None:
    cmd = verbs.add_parser(
        "export",
        help="write a schedule for Kubernetes, systemd, GitHub Actions, Airflow or Dagster",
        description="Write the schedule (or every schedule, --all) as files another scheduler "
        "runs: a Kubernetes CronJob, a systemd timer or a GitHub Actions workflow calls `dot "
        "schedule run NAME` with the schedule's definition in DOT_SCHEDULE_DEFINITION, so it "
        "needs no `dot schedule add` where it runs; an Airflow DAG or Dagster definitions run "
        "the schedule's command through the Python API at the pinned commit. The cron "
        "expression is read in --time-zone (default: this machine's, as cron reads it). "
        "Secrets are named, never written: a Kubernetes Secret, GitHub secrets, a systemd "
        "EnvironmentFile. A schedule that the scheduler cannot run exactly is refused (exit 20) "
        "and nothing is written. The same schedule gives the same bytes.",
        epilog="examples: %(prog)s nightly --to kubernetes --image registry.example/dot:0.1 "
        "--git-url https://git.example/shop.git | %(prog)s --all --to systemd -o units/ | "
        "%(prog)s nightly --to github-actions --time-zone UTC -o .github/workflows | "
        "%(prog)s nightly --to airflow -o dags/ | %(prog)s nightly --to dagster -o defs/",
    )
    cmd.add_argument("name", nargs="?", help="the schedule (or --all)")
    cmd.add_argument("--all", dest="all_schedules", action="store_true",
                     help="every schedule (of --project, else of the project here, else all)")  # fmt: skip
    cmd.add_argument("--to", required=True,
                     choices=("kubernetes", "systemd", "github-actions", "airflow", "dagster"),
                     help="the scheduler")  # fmt: skip
    cmd.add_argument("-o", "--output", default="-", metavar="DIR",
                     help="the folder to write the files into; - (default) prints them")  # fmt: skip
    cmd.add_argument("--project", metavar="ID", help="the schedule's project (default: found)")
    cmd.add_argument("--time-zone", metavar="ZONE",
                     help="the IANA zone the cron expression is read in (default: this machine's)")  # fmt: skip
    cmd.add_argument("--profiles-in-repo", action="store_true",
                     help="kubernetes, github-actions: profiles.yml is tracked in the project "
                     "folder, so no secret holds it")  # fmt: skip
    k8s = cmd.add_argument_group("kubernetes")
    k8s.add_argument("--image", help="the image with dot, git and the adapter (required)")
    k8s.add_argument("--git-url", metavar="URL",
                     help="clone the repository from here in an init container")  # fmt: skip
    k8s.add_argument("--repo-dir", metavar="PATH",
                     help="or: the repository's folder inside the image")  # fmt: skip
    k8s.add_argument("--secret", metavar="NAME",
                     help="the Secret with profiles.yml and the profile's variables "
                     "(default: <project>-<schedule>-dbt)")  # fmt: skip
    k8s.add_argument("--namespace", help="the CronJob's namespace (default: kubectl's)")
    k8s.add_argument("--starting-deadline", type=seconds_type("--starting-deadline", zero=False),
                     metavar="DURATION",
                     help="startingDeadlineSeconds (default: 5m for skip, the queue's wait for "
                     "queue)")  # fmt: skip
    unit = cmd.add_argument_group("systemd")
    unit.add_argument("--user", dest="user_units", action="store_true",
                      help="user units (systemctl --user) instead of system units")  # fmt: skip
    unit.add_argument("--persistent", action="store_true",
                      help="Persistent=true: a firing missed while off runs at the next boot")  # fmt: skip
    unit.add_argument("--env-file", metavar="PATH",
                      help="the EnvironmentFile= with the profile's variables (default: "
                      "/etc/datum-dot/<project>.env, ~/.config/datum-dot/ for --user)")  # fmt: skip
    gha = cmd.add_argument_group("github-actions")
    gha.add_argument("--utc-ok", action="store_true",
                     help="a zone with daylight-saving time: accept an hour's drift in summer")  # fmt: skip
    gha.add_argument("--install", metavar="REQUIREMENT", default=None,
                     help="what the runner pip-installs (default: 'datum-dot[duckdb]')")  # fmt: skip
    gha.add_argument("--python", metavar="VERSION", default=None,
                     help="the runner's Python (default: 3.12)")  # fmt: skip
    common(cmd)


def _add_change_options(cmd: argparse.ArgumentParser, *, project: bool = True) -> None:
    if project:
        cmd.add_argument("--project", metavar="ID", help="the schedule's project (default: found)")
    cmd.add_argument("-y", "--yes", action="store_true", help="change the crontab without asking")
    cmd.add_argument("--dry-run", action="store_true", help="show the change; change nothing")
