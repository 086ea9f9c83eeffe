"""The command line's shape: every sub-command and option, and the dbt commands it runs.

`build_parser` is shared by `main` (which dispatches) and `datum_spelling` (which reads a datum
command line with the same parser), so it lives below both. Only argparse and the standard
library are imported at start-up: `dot --help` stays fast.
"""

from __future__ import annotations

import argparse
import difflib
import os
import re
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, NoReturn

from datum_dot.cli.buildargs import add_build_parsers
from datum_dot.cli.diff import add_diff_parser
from datum_dot.cli.durations import age_type, seconds_type
from datum_dot.cli.history import HISTORY_HELP, add_history_parser
from datum_dot.cli.preflightrun import takes_preflight
from datum_dot.cli.projectarg import add_global_option, add_where_folder
from datum_dot.cli.scheduleargs import add_schedule_parser
from datum_dot.cli.setupargs import add_setup_parsers
from datum_dot.cli.stateargs import add_state_options
from datum_dot.cli.warm import WARM_HELP, add_warm_parser
from datum_dot.cli.webhookargs import add_webhook_parser
from datum_dot.errors import UsageError

# dbt commands, with the extra word each takes before the spec.
DBT_COMMANDS: dict[str, str | None] = {
    "build": None,
    "run": None,
    "test": None,
    "seed": None,
    "snapshot": None,
    "compile": None,
    "parse": None,
    "ls": None,
    "list": None,
    "show": None,
    "docs": "generate|serve",
    "source": "freshness",
    "run-operation": "macro",
    "deps": None,
    "clone": None,
    "retry": None,
    "debug": None,
}
SUB_VERBS = {"docs": ("generate", "serve"), "source": ("freshness", "snapshot-freshness")}
DEFER_COMMANDS = frozenset(
    {"build", "run", "test", "seed", "snapshot", "compile", "ls", "list", "show", "clone"}
)
"""dbt commands where `--defer` changes what runs (dbt accepts it on every command)."""
CHECKED_COMMANDS = frozenset({"build", "run", "seed", "snapshot", "clone", "test"})
"""dbt commands that write to the warehouse, whose isolation is checked (`--allow-unisolated`)."""
RUN_EXAMPLES = {
    "build": "-s orders+ --full-refresh",
    "run": "-s orders+ --full-refresh",
    "test": "-s orders --store-failures",
    "seed": "--full-refresh",
    "compile": "-s orders",
    "ls": "-s orders+ --output json",
    "list": "-s orders+ --output json",
    "show": "-s orders --limit 5",
    "clone": "--state path/to/artifacts",
    "deps": "--upgrade",
}
DBT_FLAGS_NOTE = (
    "Options dot and dbt both have are dot's here: --defer ENV[@REF], --vars (merged over the\n"
    "environment's), --project-dir, --debug (tracebacks), --log-format, --version, -h. To give\n"
    "dbt's own, put them after `--` (dbt's --debug is also -d)."
)
WARN_EXIT_ZERO = "--warn-exit-zero"
WARN_EXIT_ZERO_ENV = "DOT_WARN_EXIT_ZERO"
TOOL_COMMANDS = {
    "logs": "run history: list runs, show one, follow new ones, prune old ones",
    "history": HISTORY_HELP,
    "runtimes": "installed runtimes, their versions, and which one is the default",
    "which": "which run, commit, environment and command last built a relation",
    "diff": "what changed between two builds: manifest, columns, row counts and rows",
    "warm": WARM_HELP,
}


class _Parser(argparse.ArgumentParser):
    """argparse, but bad usage is a UsageError (exit 20), not argparse's exit 2."""

    partial = False
    """Built with one dbt command's sub-parser only (see `build_parser`)."""
    argv: tuple[str, ...] = ()
    """The arguments of the last `parse_args`, to tell which sub-command an error is about."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        # No abbreviations: `--all` must not quietly mean `--allow-unisolated`.
        kwargs.setdefault("allow_abbrev", False)
        super().__init__(*args, **kwargs)

    def parse_args(  # type: ignore[override]
        self, args: Sequence[str] | None = None, namespace: argparse.Namespace | None = None
    ) -> argparse.Namespace:
        """Parse as argparse does, keeping `args` for the error message."""
        self.argv = tuple(args or ())
        return super().parse_args(args, namespace)

    def error(self, message: str) -> NoReturn:
        path, _ = _sub_command(self, self.argv)
        where = f"{self.prog} {path}" if path and self.argv else self.prog
        raise UsageError(
            f"{self.prog}: {message}{_suggest(message, self)}", f"run `{where} --help` for usage"
        )


def dbt_command_key(word: str, words: Sequence[str]) -> tuple[str, ...]:
    """The dbt command a command line runs: (`docs`, `generate`) when a verb follows, else (`run`,)."""
    verbs = SUB_VERBS.get(word, ())
    verb = next((w for w in words if w in verbs), None)
    return (word, verb) if verb else (word,)


def _suggest(message: str, parser: argparse.ArgumentParser) -> str:
    """A "did you mean" for argparse's invalid-choice and unrecognized-argument errors.

    Suggestions come from the options of the command typed (for a dbt command, dbt's own too)
    and never repeat the word typed; options of other commands are not offered.
    """
    choice = re.search(r"invalid choice: '([^']*)' \(choose from (.*)\)", message)
    if choice:
        word, choices = choice[1], [c.strip().strip("'\"") for c in choice[2].split(",")]
        close = [c for c in difflib.get_close_matches(word, choices, n=2) if c != word]
        return f"; did you mean '{close[0]}'?" if close else ""
    unknown = re.search(r"unrecognized arguments: (\S+)", message)
    if unknown is None or not unknown[1].startswith("-"):
        return ""
    word = unknown[1].split("=", 1)[0]
    argv = parser.argv if isinstance(parser, _Parser) else ()
    path, sub = _sub_command(parser, argv)
    if path and sub is not None and word in _shown_options(sub):
        # the command has it: it was typed before the command word (`dot --no-deps build`)
        return f"; {word} is an option of `{path}`: put it after the command word ({parser.prog} {path} {word} ...)"
    # Sub-commands of the one typed: `schedule --yes` is an option of `schedule remove`.
    below = sorted(_commands_with(sub, word, f"{path} ")) if path else []
    if below:
        shown = ", ".join(f"`{parser.prog} {name}`" for name in below[:4])
        more = f" and {len(below) - 4} more" if len(below) > 4 else ""
        return f"; `{path}` has no {word} option (it is an option of {shown}{more})"
    known = _shown_options(parser)
    if path:
        known |= _shown_options(sub)
    if path in DBT_COMMANDS:
        # lazy: dbt's options are read only to suggest one of them
        from datum_dot.cli.dbtflags import dbt_option_names

        known |= set(dbt_option_names(dbt_command_key(path, argv)))
    close = [c for c in difflib.get_close_matches(word, sorted(known), n=3) if c != word]
    guess = f"; did you mean '{close[0]}'?" if close else ""
    return f"; `{path}` has no {word} option{guess}" if path else guess


def _shown_options(parser: argparse.ArgumentParser) -> set[str]:
    """The option strings the parser's help lists (hidden aliases are not suggested)."""
    return {
        option
        for action in parser._actions
        if action.help != argparse.SUPPRESS
        for option in action.option_strings
    }


def command_parser(parser: argparse.ArgumentParser, word: str) -> argparse.ArgumentParser:
    """The sub-parser of one top-level command."""
    return _sub_parsers(parser)[word]


def warn_exit_zero_env(environ: Mapping[str, str] | None = None) -> bool:
    """Whether `DOT_WARN_EXIT_ZERO` asks for exit 0 instead of 10.

    Raises:
        UsageError: The variable is set to something that is not a yes or a no.
    """
    text = (os.environ if environ is None else environ).get(WARN_EXIT_ZERO_ENV, "")
    value = text.strip().lower()
    if value in {"1", "true", "yes", "on"}:
        return True
    if value in {"", "0", "false", "no", "off"}:
        return False
    raise UsageError(
        f"{WARN_EXIT_ZERO_ENV}='{text}' is neither a yes nor a no",
        f"set {WARN_EXIT_ZERO_ENV}=1 (warnings exit 0) or {WARN_EXIT_ZERO_ENV}=0 (they exit 10)",
    )


def check_run_args(args: argparse.Namespace, *, prog: str) -> None:
    """Refuse a dbt command's option combinations that would be quietly ignored.

    Raises:
        UsageError: `--json` without `--dry-run` (a run prints dbt's output, not JSON).
    """
    if args.command not in DBT_COMMANDS or not args.json or args.dry_run:
        return
    listing = (
        "; for dbt's own JSON listing, --output json" if args.command in ("ls", "list") else ""
    )
    raise UsageError(
        f"--json goes with --dry-run (the plan as JSON); a run prints dbt's output{listing}",
        f"add --dry-run for the plan as JSON; a finished run as JSON: {prog} logs <run-id> --json",
    )


def _sub_command(
    parser: argparse.ArgumentParser, argv: Sequence[str]
) -> tuple[str, argparse.ArgumentParser]:
    """The sub-command `argv` names (`schedule add`), and its parser; the top one when none."""
    names: list[str] = []
    current = parser
    for token in argv:
        subs = _sub_parsers(current)
        if token in subs:
            names.append(token)
            current = subs[token]
    return " ".join(names), current


def _sub_parsers(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


def _commands_with(parser: argparse.ArgumentParser, option: str, prefix: str = "") -> set[str]:
    """The sub-commands (`schedule add`) that take `option`."""
    found: set[str] = set()
    for name, sub in _sub_parsers(parser).items():
        path = f"{prefix}{name}"
        if option in sub._option_string_actions:
            found.add(path)
        found |= _commands_with(sub, option, f"{path} ")
    return found


def build_parser(prog: str, *, only: str | None = None) -> argparse.ArgumentParser:
    """The whole command line: one sub-command per dbt command plus the tool's own.

    Args:
        prog: The program's name (`dot` or `datum`).
        only: A dbt command: add its sub-parser alone. A run needs no other, and building all
            of them (about 40, with gettext and terminal-size look-ups for each option) costs
            10-20 ms of every run's start-up.
    """
    parser = _Parser(
        prog=prog,
        description="Run any dbt command for a named environment at an exact git commit.",
        epilog=(
            "usage: %(prog)s <dbt command> [env][@ref] [options] [-- args passed to dbt]\n"
            "examples: %(prog)s build | %(prog)s run dev -- -s orders+ | %(prog)s build prod@main"
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="store_true", help="show versions and exit")
    parser.add_argument("--debug", action="store_true", help="show tracebacks and debug notes")
    parser.add_argument(
        WARN_EXIT_ZERO,
        action="store_true",
        help=f"exit 0, not 10, when a command succeeds with warnings (or set {WARN_EXIT_ZERO_ENV}=1)",
    )
    parser.add_argument(
        "--log-format",
        choices=("text", "json"),
        help="json: also print the session log's events on stderr, one JSON object per line",
    )
    add_global_option(parser)
    sub = parser.add_subparsers(dest="command", metavar="<command>")
    for name, extra in DBT_COMMANDS.items():
        if only is not None and name != only:
            continue
        cmd = sub.add_parser(
            name,
            help=f"dbt {name} for an environment, optionally at a git ref",
            description=f"Run `dbt {name}` for [env][@ref]. The flags dbt {name} takes may be "
            "given here too;\narguments after `--` go to dbt untouched.",
            epilog=f"example: %(prog)s prod {RUN_EXAMPLES.get(name, '--debug')}\n{DBT_FLAGS_NOTE}",
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        if extra == "macro":
            cmd.add_argument("macro", help="the macro to run")
        elif extra is not None:
            cmd.add_argument("verb", choices=SUB_VERBS[name], help=f"dbt {name} sub-command")
        _add_run_options(cmd, name)
    if only is not None:
        parser.partial = True
        add_where_folder(parser)
        return parser
    _add_logs_parser(sub)
    _add_which_parser(sub)
    add_history_parser(sub)
    _add_common_options(sub.choices["history"])
    add_diff_parser(sub)
    _add_common_options(sub.choices["diff"])
    runtimes = sub.add_parser(
        "runtimes", help=TOOL_COMMANDS["runtimes"], description=TOOL_COMMANDS["runtimes"] + "."
    )
    runtimes.add_argument("--json", action="store_true", help="print the list as JSON")
    runtimes.add_argument("--project-dir", type=Path, help="the dbt project (default: search up)")
    _add_common_options(runtimes)
    add_warm_parser(sub)
    _add_common_options(sub.choices["warm"])
    add_setup_parsers(sub, common=_add_common_options)
    add_build_parsers(sub, common=_add_common_options)
    add_schedule_parser(sub, common=_add_common_options)
    add_webhook_parser(sub, common=_add_common_options)
    add_where_folder(parser)
    return parser


def _add_logs_parser(sub: argparse._SubParsersAction[_Parser]) -> None:
    cmd = sub.add_parser(
        "logs",
        help=TOOL_COMMANDS["logs"],
        description="List recorded runs (newest first), show one run, follow runs, or prune "
        "old records. Times are UTC.",
        epilog="examples: %(prog)s --status failed --since 2d | %(prog)s <run-id> --raw | "
        "%(prog)s --follow | %(prog)s prune --keep 500 --older-than 30d\n--follow ends with "
        "Ctrl-C (exit 50); with a run id it exits 0 once that run has finished.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    cmd.add_argument(
        "run_id",
        nargs="?",
        metavar="RUN_ID|prune",
        help="show this run (a unique prefix of its id is enough); `prune`: remove old records",
    )
    cmd.add_argument("--last", type=int, metavar="N", help="list at most N runs (default 10)")
    cmd.add_argument("--status", metavar="S[,S]", help="only runs with these statuses (any case)")
    cmd.add_argument("--env", help="only runs of this environment")
    cmd.add_argument("--project", help="only runs of this project")
    cmd.add_argument(
        "--since",
        type=age_type("--since"),
        metavar="AGE|DATE",
        help="only runs since 2d, 12h, 30m or a date",
    )
    cmd.add_argument("-f", "--follow", action="store_true", help="print new runs and live output")
    cmd.add_argument("--raw", action="store_true", help="a run's output as dbt printed it")
    cmd.add_argument(
        "--artifacts",
        action="store_true",
        help="a run's kept dbt artifacts (manifest.json, ...) with sizes, sha256 and paths",
    )
    cmd.add_argument(
        "--artifact",
        metavar="NAME",
        help="write one kept artifact's bytes to stdout (manifest.json, ...), from the "
        "database for a run another host kept there",
    )
    cmd.add_argument("--json", action="store_true", help="print JSON (JSON lines with --follow)")
    cmd.add_argument("--keep", type=int, metavar="N", help="prune: keep the newest N records")
    cmd.add_argument(
        "--older-than",
        type=age_type("--older-than"),
        metavar="AGE",
        help="prune: only records older than AGE (30d, 12h)",
    )
    _add_common_options(cmd)


def _add_which_parser(sub: argparse._SubParsersAction[_Parser]) -> None:
    cmd = sub.add_parser(
        "which",
        help=TOOL_COMMANDS["which"],
        description="Say which run last built a relation: its id, commit, environment, "
        "command, when, and with what status, from the dbt artifacts kept with each run.",
        epilog="examples: %(prog)s analytics.customer_orders | %(prog)s customer_orders prod | "
        "%(prog)s analytics.orders --json",
    )
    cmd.add_argument(
        "relation", metavar="RELATION", help="schema.relation, database.schema.relation or a model"
    )
    cmd.add_argument("env", nargs="?", metavar="ENV", help="only runs of this environment")
    cmd.add_argument("--project", help="only runs of this project")
    cmd.add_argument("--json", action="store_true", help="print the answer as JSON")
    _add_common_options(cmd)


def _add_common_options(cmd: argparse.ArgumentParser) -> None:
    # Also accepted after the command word; the top-level parser documents them.
    for flag in ("--debug", "--version", WARN_EXIT_ZERO):
        cmd.add_argument(
            flag, action="store_true", default=argparse.SUPPRESS, help=argparse.SUPPRESS
        )
    cmd.add_argument(
        "--log-format", choices=("text", "json"), default=argparse.SUPPRESS, help=argparse.SUPPRESS
    )


def _add_run_options(cmd: argparse.ArgumentParser, name: str) -> None:
    spec = cmd.add_argument(
        "spec",
        nargs="?",
        default="",
        help="[env][@ref]: environment and/or git ref (default environment, working tree)",
    )
    spec.completer = complete_spec  # type: ignore[attr-defined]
    cmd.add_argument(
        "--dry-run", action="store_true", help="print the plan and dbt argv; run nothing"
    )
    cmd.add_argument("--json", action="store_true", help="with --dry-run, print the plan as JSON")
    # Options a command does not list still have their value, so a run reads one shape.
    cmd.set_defaults(
        defer=None,
        no_deps=False,
        allow_unisolated=False,
        state_source="history",
        state_from=None,
        max_state_age=None,
    )
    if name in DEFER_COMMANDS:
        add_state_options(cmd)
    cmd.add_argument(
        "--vars", metavar="YAML", help="vars merged over the environment's (YAML/JSON)"
    )
    if name != "deps":
        cmd.add_argument(
            "--no-deps", action="store_true", help="skip `dbt deps` for an isolated build"
        )
    if name in CHECKED_COMMANDS:
        cmd.add_argument(
            "--allow-unisolated",
            action="store_true",
            help="run an isolated build even if nodes would be written outside its schema",
        )
    cmd.add_argument(
        "--disable-prompts", action="store_true", help="never ask the start-up questions"
    )
    cmd.add_argument(
        "--no-warm",
        action="store_true",
        help="run in this process, not in a running warm runner (or set DOT_WARM=0)",
    )
    cmd.add_argument(
        "--artifacts-to-db",
        action="store_true",
        help="keep the run's dbt artifacts in the PostgreSQL run history too, so they outlive "
        "this host (or set DATUM_ARTIFACTS_TO_DB=1)",
    )
    if takes_preflight(name):
        cmd.add_argument(
            "--no-preflight",
            action="store_true",
            help="skip the cheap checks of `validate` a working-tree run makes first",
        )
    cmd.add_argument(
        "--project-dir",
        type=Path,
        metavar="DIR",
        help="the dbt project folder (default: search up)",
    )
    _add_runtime_options(cmd)
    _add_common_options(cmd)


def _add_runtime_options(cmd: argparse.ArgumentParser) -> None:
    cmd.add_argument(
        "--runtime", metavar="NAME", help="what runs dbt: local, subprocess, cloud, ..."
    )
    cmd.add_argument(
        "--retries",
        type=_count("--retries", "3"),
        default=0,
        metavar="N",
        help="retry transient failures N times",
    )
    cmd.add_argument(
        "--retry-delay",
        type=seconds_type("--retry-delay", zero=True),
        default=2.0,
        metavar="DURATION",
        help="wait before the first retry; doubles each time (default 2s; 90s, 10m, 1h)",
    )
    cmd.add_argument(
        "--timeout",
        type=seconds_type("--timeout", zero=False),
        metavar="DURATION",
        help="stop dbt after this long (exit 40): 600 (seconds), 10m, 1h30m",
    )
    cmd.add_argument(
        "--no-cache", action="store_true", help="fetch remote artifacts again (dbt Cloud)"
    )


def _count(option: str, example: str) -> Callable[[str], int]:
    def parse(text: str) -> int:
        if not text.lstrip("-").isdigit() or int(text) < 0:
            raise UsageError(
                f"{option} must be a whole number 0 or more, got '{text}'",
                f"pass {option} {example}, for example",
            )
        return int(text)

    return parse


def complete_spec(prefix: str, **_: object) -> list[str]:
    """Shell completion for a spec: environment names, alone and with `@`."""
    # lazy: YAML and its loader load only for shell completion
    import yaml

    from datum_dot.config.yamlfile import safe_load

    folder = Path.cwd()
    for candidate in (folder, *folder.parents):
        path = candidate / "dot_environments.yml"
        if path.is_file():
            try:
                data = safe_load(path.read_text()) or {}
            except (OSError, yaml.YAMLError):
                return []
            envs = [k for k in (data.get("environment") or {}) if k not in ("default", "all")]
            options = [*envs, *(f"{env}@" for env in envs)]
            return [o for o in options if o.startswith(prefix)]
        if (candidate / "dbt_project.yml").is_file():
            break
    return []
