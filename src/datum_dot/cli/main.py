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
from collections.abc import Sequence
from pathlib import Path
from typing import NoReturn

from datum_dot import __version__
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
RESERVED_COMMANDS = {
    "init": "project set-up",
    "validate": "pre-flight validation",
    "config": "configuration",
    "schedule": "cron schedules",
    "webhook": "the webhook server",
    "logs": "run history",
    "builds": "listing isolated builds",
    "clean": "removing isolated builds",
}


class _Parser(argparse.ArgumentParser):
    """argparse, but bad usage is a UsageError (exit 20), not argparse's exit 2."""

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


def build_parser(prog: str) -> argparse.ArgumentParser:
    """The whole command line: one sub-command per dbt command plus the tool's own."""
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
    sub = parser.add_subparsers(dest="command", metavar="<command>")
    for name, extra in DBT_COMMANDS.items():
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
    for name, what in RESERVED_COMMANDS.items():
        sub.add_parser(name, help=f"{what} (not in this version)", add_help=True)
    return parser


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
    cmd.add_argument(
        "--debug", action="store_true", default=argparse.SUPPRESS, help=argparse.SUPPRESS
    )


def complete_spec(prefix: str, **_: object) -> list[str]:
    """Shell completion for a spec: environment names, alone and with `@`."""
    import yaml

    folder = Path.cwd()
    for candidate in (folder, *folder.parents):
        path = candidate / "dot_environments.yml"
        if path.is_file():
            try:
                data = yaml.safe_load(path.read_text()) or {}
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
    parser = build_parser(prog)
    if "_ARGCOMPLETE" in os.environ:
        import argcomplete

        argcomplete.autocomplete(parser)
    debug = "--debug" in ours
    # SIGTERM (a scheduler or CI stopping us) is a cancellation, like Ctrl-C: exit 50.
    signal.signal(signal.SIGTERM, _cancel)
    try:
        _check_command_word(ours, prog)
        args = parser.parse_args(ours)
        debug = bool(args.debug)
        return _dispatch(args, passthrough, prog, parser)
    except DotError as e:
        return _report(e, debug=debug)
    except KeyboardInterrupt:
        print("cancelled", file=sys.stderr)
        return int(ExitCode.CANCELLED)
    except Exception as e:  # noqa: BLE001 - the one place that turns a bug into a report
        return _report_bug(e, debug=debug)


def _cancel(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def _check_command_word(ours: Sequence[str], prog: str) -> None:
    words = [a for a in ours if not a.startswith("-")]
    if not words:
        return
    word = words[0]
    known = [*DBT_COMMANDS, *RESERVED_COMMANDS]
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
    if args.command in RESERVED_COMMANDS:
        raise UsageError(
            f"'{prog} {args.command}' ({RESERVED_COMMANDS[args.command]}) is not in this version",
            f"run `{prog} --help` for the commands this version has",
        )
    from datum_dot.cli.dbt_command import run_dbt_command

    return run_dbt_command(args, passthrough, prog=prog)


def _report(error: DotError, *, debug: bool) -> int:
    from datum_dot import sessionlog

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
    from datum_dot import sessionlog

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
