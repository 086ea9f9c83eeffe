# PYTHON_ARGCOMPLETE_OK
"""`dot` / `datum`: the parser, the dispatch, and the one error handler.

Only argparse and the standard library are imported at start-up: `dot --help` stays fast.
Everything heavier (pydantic, rich, GitPython, dbt) is imported by the command that needs it.
"""

from __future__ import annotations

import argparse
import difflib
import os
import re
import signal
import sys
import traceback
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import NoReturn

from datum_dot import __version__
from datum_dot.cli.buildargs import BUILD_COMMANDS, add_build_parsers, run_build_command
from datum_dot.cli.scheduleargs import (
    SCHEDULE_COMMANDS,
    add_schedule_parser,
    expand_shorthand,
    run_schedule_command,
)
from datum_dot.cli.setupargs import SETUP_COMMANDS, add_setup_parsers, run_setup_command
from datum_dot.cli.webhookargs import WEBHOOK_COMMANDS, add_webhook_parser, run_webhook_command
from datum_dot.errors import DotError, ExitCode, UsageError

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
TOOL_COMMANDS = {
    "logs": "run history: list runs, show one, follow new ones, prune old ones",
    "runtimes": "installed runtimes, their versions, and which one is the default",
}


class _Parser(argparse.ArgumentParser):
    """argparse, but bad usage is a UsageError (exit 20), not argparse's exit 2."""

    partial = False
    """Built with one dbt command's sub-parser only (see `build_parser`)."""

    def error(self, message: str) -> NoReturn:
        raise UsageError(
            f"{self.prog}: {message}{_suggest(message, self)}",
            f"run `{self.prog} --help` for usage",
        )


def _suggest(message: str, parser: argparse.ArgumentParser) -> str:
    """A "did you mean" for argparse's invalid-choice and unrecognized-argument errors."""
    choice = re.search(r"invalid choice: '([^']*)' \(choose from (.*)\)", message)
    if choice:
        word, known = choice[1], [c.strip().strip("'\"") for c in choice[2].split(",")]
    else:
        unknown = re.search(r"unrecognized arguments: (\S+)", message)
        if unknown is None:
            return ""
        if isinstance(parser, _Parser) and parser.partial:
            parser = build_parser(parser.prog)  # suggest from the whole command line, as always
        word, known = unknown[1], sorted(_option_strings(parser))
    close = difflib.get_close_matches(word, known, n=1)
    return f"; did you mean '{close[0]}'?" if close else ""


def _option_strings(parser: argparse.ArgumentParser) -> set[str]:
    # Unknown options of a sub-command are reported by the top parser: look in every sub-parser.
    names = set(parser._option_string_actions)
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                names |= _option_strings(sub)
    return names


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
        "--log-format",
        choices=("text", "json"),
        help="json: also print the session log's events on stderr, one JSON object per line",
    )
    sub = parser.add_subparsers(dest="command", metavar="<command>")
    for name, extra in DBT_COMMANDS.items():
        if only is not None and name != only:
            continue
        cmd = sub.add_parser(
            name,
            help=f"dbt {name} for an environment, optionally at a git ref",
            description=f"Run `dbt {name}` for [env][@ref]. Arguments after `--` go to dbt untouched.",
        )
        if extra == "macro":
            cmd.add_argument("macro", help="the macro to run")
        elif extra is not None:
            cmd.add_argument("verb", choices=SUB_VERBS[name], help=f"dbt {name} sub-command")
        _add_run_options(cmd)
    if only is not None:
        parser.partial = True
        return parser
    _add_logs_parser(sub)
    runtimes = sub.add_parser(
        "runtimes", help=TOOL_COMMANDS["runtimes"], description=TOOL_COMMANDS["runtimes"] + "."
    )
    runtimes.add_argument("--json", action="store_true", help="print the list as JSON")
    runtimes.add_argument("--project-dir", type=Path, help="the dbt project (default: search up)")
    _add_common_options(runtimes)
    add_setup_parsers(sub, common=_add_common_options)
    add_build_parsers(sub, common=_add_common_options)
    add_schedule_parser(sub, common=_add_common_options)
    add_webhook_parser(sub, common=_add_common_options)
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
    cmd.add_argument("--since", metavar="AGE|DATE", help="only runs since 2d, 12h, 30m or a date")
    cmd.add_argument("-f", "--follow", action="store_true", help="print new runs and live output")
    cmd.add_argument("--raw", action="store_true", help="a run's output as dbt printed it")
    cmd.add_argument("--json", action="store_true", help="print JSON (JSON lines with --follow)")
    cmd.add_argument("--keep", type=int, metavar="N", help="prune: keep the newest N records")
    cmd.add_argument("--older-than", metavar="AGE", help="prune: only records older than AGE")
    _add_common_options(cmd)


def _add_common_options(cmd: argparse.ArgumentParser) -> None:
    # Also accepted after the command word; the top-level parser documents them.
    cmd.add_argument(
        "--debug", action="store_true", default=argparse.SUPPRESS, help=argparse.SUPPRESS
    )
    cmd.add_argument(
        "--log-format", choices=("text", "json"), default=argparse.SUPPRESS, help=argparse.SUPPRESS
    )


def _add_run_options(cmd: argparse.ArgumentParser) -> None:
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
    cmd.add_argument(
        "--defer", metavar="ENV@REF", help="defer to an isolated build (env@ref or @ref)"
    )
    cmd.add_argument(
        "--vars", metavar="YAML", help="vars merged over the environment's (YAML/JSON)"
    )
    cmd.add_argument("--no-deps", action="store_true", help="skip `dbt deps` for an isolated build")
    cmd.add_argument(
        "--allow-unisolated",
        action="store_true",
        help="run an isolated build even if nodes would be written outside its schema",
    )
    cmd.add_argument(
        "--disable-prompts", action="store_true", help="never ask the start-up questions"
    )
    cmd.add_argument("--project-dir", type=Path, help="the dbt project folder (default: search up)")
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
        type=_seconds("--retry-delay", "2", zero=True),
        default=2.0,
        metavar="SECONDS",
        help="wait before the first retry; doubles each time (default 2)",
    )
    cmd.add_argument(
        "--timeout",
        type=_seconds("--timeout", "600", zero=False),
        metavar="SECONDS",
        help="stop dbt after this long (exit 40)",
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


def _seconds(option: str, example: str, *, zero: bool) -> Callable[[str], float]:
    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            value = float("nan")
        if not (value >= 0 if zero else value > 0) or value == float("inf"):
            what = "0 or more" if zero else "more than 0"
            raise UsageError(
                f"{option} must be a number of seconds {what}, got '{text}'",
                f"pass {option} {example}, for example",
            )
        return value

    return parse


def complete_spec(prefix: str, **_: object) -> list[str]:
    """Shell completion for a spec: environment names, alone and with `@`."""
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


def split_passthrough(argv: Sequence[str]) -> tuple[list[str], list[str]]:
    """Split the command line at the first `--`: ours before, dbt's after."""
    args = list(argv)
    if "--" in args:
        index = args.index("--")
        return args[:index], args[index + 1 :]
    return args, []


def main(argv: Sequence[str] | None = None) -> int:
    """Run the program; returns the exit code (see the README's exit code table)."""
    raw = list(sys.argv[1:] if argv is None else argv)
    prog = Path(sys.argv[0]).name if argv is None else "dot"
    if prog not in {"dot", "datum"}:
        prog = "dot"
    ours, passthrough = split_passthrough(raw)
    word = _command_word(ours)
    completing = "_ARGCOMPLETE" in os.environ
    partial = word in DBT_COMMANDS and not completing and not _asks_top_help(ours, word)
    parser = build_parser(prog, only=word if partial else None)
    if completing:
        import argcomplete

        argcomplete.autocomplete(parser)
    debug = "--debug" in ours
    # SIGTERM (a scheduler or CI stopping us) is a cancellation, like Ctrl-C: exit 50.
    signal.signal(signal.SIGTERM, _cancel)
    if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
        # Started with SIGINT ignored (`dot ... &` in a script, nohup): honour it, as dbt does
        # (ADR 0011). A handler that does nothing rather than SIG_IGN, which would stay ignored
        # in the dbt processes we start, and we stop them with SIGINT when SIGTERM cancels.
        signal.signal(signal.SIGINT, _ignore)
    try:
        _check_command_word(ours, prog)
        args = parser.parse_args(expand_shorthand(ours))
        debug = bool(args.debug)
        if args.log_format:
            # DOT_LOG_FORMAT mirrors the option, so events of this process and its children echo.
            os.environ["DOT_LOG_FORMAT"] = args.log_format
        if args.command:
            _check_home()
        code = _dispatch(args, passthrough, prog, parser)
        if args.command:
            _log_exit(prog, args.command, code)
        return code
    except DotError as e:
        return _report(e, debug=debug)
    except KeyboardInterrupt:
        print("cancelled", file=sys.stderr)
        return int(ExitCode.CANCELLED)
    except OSError as e:
        # A write under $DATUM_HOME (the history, run folders, locks) met a read-only, full or
        # blocked folder: the user's to fix, not a bug, wherever in the core it was met.
        home_error = _home_error(e)
        if home_error is not None:
            return _report(home_error, debug=debug)
        return _report_bug(e, debug=debug)
    except Exception as e:  # noqa: BLE001 - the one place that turns a bug into a report
        return _report_bug(e, debug=debug)


def _check_home() -> None:
    from datum_dot.home.privatefiles import check_datum_home

    check_datum_home()


def _home_error(error: OSError) -> DotError | None:
    from datum_dot.errors import DatumHomeError
    from datum_dot.home.privatefiles import check_datum_home, home_error

    try:
        home = check_datum_home()
    except DatumHomeError as e:  # it was fine before the command ran; it is what broke since
        return e
    return home_error(home, error)


def _log_exit(prog: str, command: str, code: int) -> None:
    from datum_dot.home import sessionlog

    sessionlog.write_event("info", f"{prog} {command} exited {code}", exit_code=code)


def _cancel(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def _ignore(signum: int, frame: object) -> None:
    return None


def _command_word(ours: Sequence[str]) -> str | None:
    """The first word that is neither an option nor the value of `--log-format`."""
    words = [
        a
        for i, a in enumerate(ours)
        if not a.startswith("-") and (i == 0 or ours[i - 1] != "--log-format")
    ]
    return words[0] if words else None


def _asks_top_help(ours: Sequence[str], word: str | None) -> bool:
    """Whether `-h`/`--help` (or an abbreviation of it) comes before the command word."""
    before = ours[: ours.index(word)] if word in ours else ours
    return any(a == "-h" or (len(a) > 2 and "--help".startswith(a)) for a in before)


def _check_command_word(ours: Sequence[str], prog: str) -> None:
    word = _command_word(ours)
    if word is None:
        return
    known = [
        *DBT_COMMANDS,
        *TOOL_COMMANDS,
        *SETUP_COMMANDS,
        *BUILD_COMMANDS,
        *SCHEDULE_COMMANDS,
        *WEBHOOK_COMMANDS,
    ]
    if word in known:
        return
    close = difflib.get_close_matches(word, known, n=1)
    guess = f"; did you mean '{close[0]}'?" if close else ""
    raise UsageError(
        f"unknown command '{word}'{guess}",
        f"run `{prog} --help` for the list of commands",
    )


def _dispatch(
    args: argparse.Namespace,
    passthrough: list[str],
    prog: str,
    parser: argparse.ArgumentParser,
) -> int:
    if args.version:
        from datum_dot.cli.render import print_versions

        print_versions(prog)
        return int(ExitCode.OK)
    if args.command is None:
        parser.print_help()
        return int(ExitCode.OK)
    if args.command == "logs":
        from datum_dot.cli.logs import run_logs

        return run_logs(args, prog=prog)
    if args.command == "runtimes":
        from datum_dot.cli.runtimes import run_runtimes

        return run_runtimes(args)
    if args.command in BUILD_COMMANDS:
        return run_build_command(args, prog=prog)
    if args.command in WEBHOOK_COMMANDS:
        return run_webhook_command(args, prog=prog)
    if args.command in SCHEDULE_COMMANDS:
        return run_schedule_command(args, passthrough, prog=prog)
    if args.command in SETUP_COMMANDS:
        return run_setup_command(
            args,
            passthrough,
            prog=prog,
            redispatch=lambda again, rest: _dispatch(again, rest, prog, parser),
        )
    from datum_dot.cli.dbt_command import run_dbt_command

    return run_dbt_command(args, passthrough, prog=prog)


def _report(error: DotError, *, debug: bool) -> int:
    from datum_dot.home import sessionlog

    detail = traceback.format_exc()
    sessionlog.write_event(
        "error", error.message, hint=error.hint, exit_code=int(error.exit_code), traceback=detail
    )
    if debug:
        print(detail, file=sys.stderr, end="")
    print(f"error: {error.message}", file=sys.stderr)
    if error.hint:
        print(f"hint: {error.hint}", file=sys.stderr)
    return int(error.exit_code)


def _report_bug(error: Exception, *, debug: bool) -> int:
    from datum_dot.home import sessionlog

    detail = traceback.format_exc()
    path = sessionlog.write_event(
        "critical", f"unexpected error: {error!r}", version=__version__, traceback=detail
    )
    if debug:
        print(detail, file=sys.stderr, end="")
    print(f"error: unexpected error: {error}; this is a bug", file=sys.stderr)
    where = f" (traceback in {path})" if path else ""
    print(f"hint: run again with --debug to see the traceback{where}", file=sys.stderr)
    return int(ExitCode.RUNTIME_FAILURE)


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
