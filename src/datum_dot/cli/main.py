# PYTHON_ARGCOMPLETE_OK
"""`dot` / `datum`: the dispatch, and the one error handler (the parser is `parser.py`).

Only argparse and the standard library are imported at start-up: `dot --help` stays fast.
Everything heavier (pydantic, rich, GitPython, dbt) is imported by the command that needs it.
"""

from __future__ import annotations

import argparse
import difflib
import os
import signal
import sys
import traceback
from collections.abc import Sequence
from pathlib import Path

from datum_dot import __version__
from datum_dot.cli.buildargs import BUILD_COMMANDS, run_build_command
from datum_dot.cli.dbtflags import split_dbt_flags
from datum_dot.cli.parser import (
    DBT_COMMANDS,
    TOOL_COMMANDS,
    build_parser,
    check_run_args,
    command_parser,
    dbt_command_key,
    warn_exit_zero_env,
)
from datum_dot.cli.projectarg import GLOBAL_DEST, apply_project, take_global_project
from datum_dot.cli.scheduleargs import SCHEDULE_COMMANDS, expand_shorthand, run_schedule_command
from datum_dot.cli.setupargs import SETUP_COMMANDS, run_setup_command
from datum_dot.cli.warm import hand_off_run
from datum_dot.cli.webhookargs import WEBHOOK_COMMANDS, run_webhook_command
from datum_dot.errors import DatumHomeError, DotError, ExitCode, UsageError

# 128 + SIGPIPE: what a shell reports for a Unix tool whose reader went away (`| head`).
READER_GONE = 141

__all__ = [
    "BUILD_COMMANDS",
    "DBT_COMMANDS",
    "SCHEDULE_COMMANDS",
    "SETUP_COMMANDS",
    "TOOL_COMMANDS",
    "WEBHOOK_COMMANDS",
    "build_parser",
    "main",
    "split_passthrough",
]


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
    try:
        ours, project = take_global_project(ours)
    except UsageError as e:
        return _report(e, debug="--debug" in ours)
    word = _command_word(ours)
    completing = "_ARGCOMPLETE" in os.environ
    if word in DBT_COMMANDS and argv is None and not completing:
        # Before the parser and any heavy import: a warm runner's child runs it instead.
        try:
            handed = hand_off_run(ours, raw)
        except DotError as e:
            return _report(e, debug=False)
        if handed is not None:
            return handed
    runs_dbt = word in (*DBT_COMMANDS, "diff") and argv is None and not completing
    if "--version" in ours and not completing:
        # Anywhere before `--`, as `dot --version`, even where a command's words are missing;
        # before the parser, whose whole tree would double its time.
        try:
            _check_command_word(ours, prog)
        except DotError as e:
            return _report(e, debug="--debug" in ours)
        return _print_versions(prog)
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
        if word in DBT_COMMANDS and not completing:
            ours, moved = _split_dbt_flags(ours, word, parser)
            passthrough = [*moved, *passthrough]
        args = parser.parse_args(expand_shorthand(ours))
        setattr(args, GLOBAL_DEST, project)
        debug = bool(args.debug)
        warnings_ok = bool(getattr(args, "warn_exit_zero", False)) or warn_exit_zero_env()
        if args.log_format:
            # DOT_LOG_FORMAT mirrors the option, so events of this process and its children echo.
            os.environ["DOT_LOG_FORMAT"] = args.log_format
        if args.command:
            _check_home()
        check_run_args(args, prog=prog)
        if runs_dbt:
            # A process that runs dbt once: its import runs without the garbage collector
            # (`dbtcore.collector`), 0.3-0.5 s of a build of the example. Not before the
            # parser: `--help` does not pay for importing `dbtcore`.
            from datum_dot.dbtcore import own_collector

            own_collector()
        code = _dispatch(args, passthrough, prog, parser)
        if code == ExitCode.WARNINGS and warnings_ok:
            code = int(ExitCode.OK)  # the process only: the run's record keeps its warnings
        if args.command:
            _log_exit(prog, args.command, code)
        sys.stdout.flush()  # a reader that went away is met here, not at exit
        return code
    except DotError as e:
        return _report(e, debug=debug)
    except KeyboardInterrupt:
        print("cancelled", file=sys.stderr)
        return int(ExitCode.CANCELLED)
    except BrokenPipeError:
        return _reader_gone()
    except OSError as e:
        # A write under $DATUM_HOME (the history, run folders, locks) met a read-only, full or
        # blocked folder: the user's to fix, not a bug, wherever in the core it was met.
        home_error = _home_error(e)
        if home_error is not None:
            return _report(home_error, debug=debug)
        return _report_bug(e, debug=debug)
    except Exception as e:  # noqa: BLE001 - the one place that turns a bug into a report
        return _report_bug(e, debug=debug)


def _reader_gone() -> int:
    """`dot logs | head`: stop quietly, as Unix tools do, with the status they die with (141)."""
    from datum_dot.runtimes.output import silence

    silence(sys.stdout)
    return READER_GONE


def _split_dbt_flags(
    ours: list[str], word: str, parser: argparse.ArgumentParser
) -> tuple[list[str], list[str]]:
    """dbt's flags given before `--` (`dot build prod -s orders+`), taken out for dbt."""
    at = ours.index(word)
    rest = ours[at + 1 :]
    kept, moved = split_dbt_flags(rest, command_parser(parser, word), dbt_command_key(word, rest))
    return [*ours[: at + 1], *kept], moved


def _check_home() -> None:
    # lazy: the state folder's modules stay out of `dot --help`
    from datum_dot.home.privatefiles import check_datum_home

    check_datum_home()


def _home_error(error: OSError) -> DotError | None:
    # lazy: as in `_check_home`
    from datum_dot.home.privatefiles import check_datum_home, home_error

    try:
        home = check_datum_home()
    except DatumHomeError as e:  # it was fine before the command ran; it is what broke since
        return e
    return home_error(home, error)


def _log_exit(prog: str, command: str, code: int) -> None:
    # lazy: the session log is written on the way out only
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


def _print_versions(prog: str) -> int:
    # lazy: each command loads its own modules; `dot --help` loads none
    from datum_dot.cli.versions import print_versions

    print_versions(prog)
    return int(ExitCode.OK)


def _dispatch(
    args: argparse.Namespace,
    passthrough: list[str],
    prog: str,
    parser: argparse.ArgumentParser,
) -> int:
    if args.version:
        return _print_versions(prog)
    if args.command is None:
        parser.print_help()
        return int(ExitCode.OK)
    if args.command == "dbt" and getattr(args, GLOBAL_DEST, None):
        # `datum --project shop dbt run`: the translated command reads it as its own option
        args.rest = [*args.rest, "--project", getattr(args, GLOBAL_DEST)]
    elif args.command not in DBT_COMMANDS:
        # dbt commands resolve it once their status line is up (config.yaml costs ~0.1 s)
        apply_project(args, prog=prog)
    if args.command == "logs":
        # lazy: each command loads its own modules; `dot --help` loads none
        from datum_dot.cli.logs import run_logs

        return run_logs(args, prog=prog)
    if args.command == "history":
        # lazy: each command loads its own modules; `dot --help` loads none
        from datum_dot.cli.history import run_history_command

        return run_history_command(args, prog=prog)
    if args.command == "which":
        # lazy: each command loads its own modules; `dot --help` loads none
        from datum_dot.cli.which import run_which

        return run_which(args, prog=prog)
    if args.command == "diff":
        # lazy: each command loads its own modules; `dot --help` loads none
        from datum_dot.cli.diff import run_diff_command

        return run_diff_command(args, prog=prog)
    if args.command == "warm":
        # lazy: each command loads its own modules; `dot --help` loads none
        from datum_dot.cli.warm import run_warm_command

        return run_warm_command(args)
    if args.command == "runtimes":
        # lazy: each command loads its own modules; `dot --help` loads none
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
    # lazy: each command loads its own modules; `dot --help` loads none
    from datum_dot.cli.dbt_command import run_dbt_command

    return run_dbt_command(args, passthrough, prog=prog)


def _report(error: DotError, *, debug: bool) -> int:
    # lazy: the session log is written on the way out only
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
    # lazy: the session log is written on the way out only
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
