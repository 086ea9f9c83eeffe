"""`dot warm start|stop|status`, and the hand-off of a dbt command to a running warm runner.

`hand_off_run` is called by `main` before the parser is built: it costs one socket connect when
no runner is up, and imports nothing heavy (the client is the standard library).
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from datum_dot.errors import ExitCode

if TYPE_CHECKING:
    from pathlib import Path

    from datum_dot.warm.paths import RunnerPaths

WARM_HELP = "the warm runner: dbt imported once, each run forked from it (start, stop, status)"
ACTIONS = ("start", "stop", "status")
START_SECONDS = 60.0  # importing dbt and the adapters on a loaded machine
# Modules the run path of the CLI imports; a runner imports them once for every run it serves.
PRELOAD = (
    "datum_dot.cli.dbt_command",
    "datum_dot.cli.buildargs",
    "datum_dot.cli.runview",
    "datum_dot.cli.progress",
    "datum_dot.cli.render",
    "datum_dot.execute",
    "datum_dot.history",
    "datum_dot.runtimes.local",
    "datum_dot.home.userconfig",
    "rich.console",
    "rich.live",
    "rich.progress",
    "git",
    "pydantic",
    "yaml",
)
# What a warm run cannot be: these go the normal way (a runner child could not be them exactly).
_NOT_HANDED = frozenset({"--debug", "--no-warm", "--version", "-h", "--help"})


def add_warm_parser(sub: argparse._SubParsersAction[Any]) -> None:
    """`dot warm ACTION`."""
    cmd = sub.add_parser(
        "warm",
        help=WARM_HELP,
        description="A background process per user that imports dbt once and forks a child "
        "for each dbt command, so `dot build` skips dbt's start-up. Runs use it when it is up "
        "(`warm: auto` in the user config starts it on first use; DOT_WARM=0 or --no-warm "
        "bypass it).",
        epilog="examples: %(prog)s start | %(prog)s status --json | %(prog)s stop",
    )
    cmd.add_argument(
        "action", choices=[*ACTIONS, "serve"], metavar="ACTION", help="start, stop or status"
    )
    cmd.add_argument("--json", action="store_true", help="print status as JSON")
    # `serve` is the runner itself; a run that starts one has it wait until that run has ended
    cmd.add_argument("--after-pid", type=int, help=argparse.SUPPRESS)


def run_warm_command(args: argparse.Namespace) -> int:
    """`dot warm start|stop|status` (and `serve`: the runner itself, started by `start`)."""
    from datum_dot.home.settings import datum_home
    from datum_dot.warm.paths import runner_paths

    paths = runner_paths(datum_home())
    if args.action == "serve":
        return _serve(paths, after_pid=args.after_pid)
    if args.action == "start":
        return _start(paths, as_json=args.json)
    if args.action == "stop":
        return _stop(paths)
    return _status(paths, as_json=args.json)


def hand_off_run(ours: Sequence[str], raw: Sequence[str]) -> int | None:
    """Run this dbt command in the warm runner; its exit code, or None to run it here.

    Args:
        ours: The command line before `--`.
        raw: The whole command line after the program's name.

    Raises:
        RunnerLostError: The runner ended after the command had started (exit 30).
    """
    if os.environ.get("DOT_WARM") == "0" or _NOT_HANDED.intersection(ours):
        return None
    if any(len(a) > 2 and "--help".startswith(a) for a in ours):
        return None  # an abbreviation of --help
    if _runtime(ours) not in (None, "local"):
        return None
    from datum_dot.home.settings import datum_home
    from datum_dot.runs.served import is_served
    from datum_dot.warm import client
    from datum_dot.warm.paths import runner_paths

    if is_served():
        return None
    home = datum_home()
    paths = runner_paths(home)
    request = client.HandOffRequest(raw, sys.argv[0], _cwd(), dict(os.environ))
    code = client.hand_off(paths, request, note=_note, on_lost=lambda pid: _abort(home, pid))
    if code is None and paths.fits() and not client.is_up(paths) and _starts_itself(home):
        _note("starting a warm runner in the background for the next runs")
        client.spawn(paths, env=dict(os.environ), after_this=True)
    return code


def runner_line() -> str:
    """One line for `dot --version`: whether a warm runner is up (never waits on it)."""
    from datum_dot.home.settings import datum_home
    from datum_dot.warm.paths import runner_paths
    from datum_dot.warm.probe import is_up

    paths = runner_paths(datum_home())
    return "warm runner: up" if is_up(paths) else "warm runner: not running"


def _runtime(ours: Sequence[str]) -> str | None:
    for i, arg in enumerate(ours):
        if arg == "--runtime" and i + 1 < len(ours):
            return ours[i + 1]
        if arg.startswith("--runtime="):
            return arg.split("=", 1)[1]
    return None


def _cwd() -> Path:
    from pathlib import Path

    return Path.cwd()


def _note(text: str) -> None:
    if os.environ.get("DOT_WARM_VERBOSE") == "1":
        print(f"warm: {text}", file=sys.stderr)


def _starts_itself(home: os.PathLike[str]) -> bool:
    """Whether a run starts a runner when none is up: DOT_WARM=1 or `warm: auto`."""
    if os.environ.get("DOT_WARM") == "1":
        return True
    from pathlib import Path

    from datum_dot.errors import DotError
    from datum_dot.home.settings import CONFIG_FILE

    if not (Path(home) / CONFIG_FILE).exists():
        return False  # no config.yaml, no `warm: auto`: its models (30 ms) need not load
    from datum_dot.home.userconfig import load_user_config

    try:
        return load_user_config(Path(home)).warm.mode == "auto"
    except DotError:
        return False  # the run itself reports a broken config.yaml


def _abort(home: os.PathLike[str], child: int) -> None:
    """The runner ended mid-run: once its child is gone, its RUNNING record becomes ABORTED."""
    from pathlib import Path

    from datum_dot.history import RunStore
    from datum_dot.warm.client import wait_until_gone

    wait_until_gone(child)
    RunStore(Path(home)).mark_aborted_stale()


def _serve(paths: RunnerPaths, *, after_pid: int | None) -> int:
    import logging

    from datum_dot.cli.main import main
    from datum_dot.dbtcore import versions
    from datum_dot.home.userconfig import load_user_config
    from datum_dot.runtimes.warmth import warm_up
    from datum_dot.warm.server import serve

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    settings = load_user_config(paths.folder.parent).warm

    def all_versions() -> dict[str, str]:
        from datum_dot import __version__

        return {"datum-dot": __version__, **versions()}

    return serve(
        paths,
        run=main,
        preload=PRELOAD,
        warm_up=warm_up,
        versions=all_versions,
        idle_timeout=float(settings.idle_timeout),
        after_pid=after_pid,
    )


def _start(paths: RunnerPaths, *, as_json: bool) -> int:
    from datum_dot.errors import DotError
    from datum_dot.warm import client

    if not paths.fits():
        raise DotError(
            f"the warm runner's socket path {paths.socket} is longer than the 107 bytes a "
            "Unix socket allows",
            "set DATUM_HOME to a shorter folder; runs go the normal way meanwhile",
        )
    if not client.is_up(paths):
        client.spawn(paths, env=dict(os.environ))
        if not client.wait_until_up(paths, timeout=START_SECONDS):
            raise DotError(
                f"the warm runner did not start within {START_SECONDS:g}s",
                f"read its log: {paths.log}",
            )
    return _status(paths, as_json=as_json)


def _stop(paths: RunnerPaths) -> int:
    from datum_dot.warm import client

    answer = client.ask(paths, "stop")
    if answer is None:
        print("no warm runner is running")
        return int(ExitCode.OK)
    print(f"warm runner {answer.get('pid')} stopping (runs under way finish first)")
    return int(ExitCode.OK)


def _status(paths: RunnerPaths, *, as_json: bool) -> int:
    from datum_dot.cli import render
    from datum_dot.warm import client

    answer = client.ask(paths, "status")
    if as_json:
        render.print_json({"running": answer is not None, **(answer or {})})
        return int(ExitCode.OK)
    if answer is None:
        print("warm runner: not running (start it with `dot warm start`)")
        return int(ExitCode.OK)
    rss = answer.get("rss_bytes")
    print(f"warm runner: up, pid {answer['pid']}, for {_uptime(answer['uptime_seconds'])}")
    print(f"runs served: {answer['runs_served']} ({answer['runs_running']} running now)")
    print(f"memory: {rss / 2**20:.0f} MiB resident" if rss else "memory: unknown")
    print(f"stops after {_uptime(answer['idle_timeout_seconds'])} without a run")
    print("versions: " + ", ".join(f"{k} {v}" for k, v in answer["versions"].items()))
    return int(ExitCode.OK)


def _uptime(seconds: float) -> str:
    seconds = int(seconds)
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"
