"""The parser of `webhook serve|token|install-service`, and its dispatch.

Only argparse is imported here (the module is loaded for `dot --help`); `cli/webhook.py`, and
with it FastAPI and uvicorn, are imported when a webhook command runs.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import TypeVar

from datum_dot.cli.durations import seconds_type
from datum_dot.errors import UsageError

WEBHOOK_COMMANDS = {
    "webhook": "the webhook server: serve runs over HTTP, its token, its systemd unit",
}
DEFAULT_WORKERS = 2
DEFAULT_GRACE = 30.0
DEFAULT_MAX_BODY = 64 * 1024
DEFAULT_MAX_QUEUE = 1000

P = TypeVar("P", bound=argparse.ArgumentParser)
AddOptions = Callable[[argparse.ArgumentParser], None]


def add_webhook_parser(sub: argparse._SubParsersAction[P], *, common: AddOptions) -> None:
    """Add `webhook` with its sub-commands to the top-level sub-parsers."""
    cmd = sub.add_parser(
        "webhook",
        help=WEBHOOK_COMMANDS["webhook"],
        description="Trigger runs of registered projects over HTTP: `serve` runs the server, "
        "`token` shows (or rotates) the bearer token it requires, `install-service` writes a "
        "systemd user unit that keeps it running.",
        epilog="examples: %(prog)s serve --port 8080 | %(prog)s token | %(prog)s token --rotate "
        "| %(prog)s install-service",
    )
    common(cmd)
    verbs = cmd.add_subparsers(dest="webhook_command", metavar="<serve|token|install-service>")
    serve = verbs.add_parser(
        "serve",
        help="run the server (until SIGTERM or Ctrl-C)",
        description="Serve the webhook API: accepted requests are queued in "
        "$DATUM_HOME/webhook.sqlite and run by a pool of workers; a restart resumes the queue. "
        "Listens on 127.0.0.1 unless told otherwise, and refuses any other address without a "
        "token (`dot webhook token`). Host and port default to webhook.host and webhook.port "
        "of `dot config`.",
        epilog="SIGTERM or Ctrl-C stops accepting requests, lets running jobs finish within "
        "--grace seconds, cancels the rest and leaves queued jobs for the next start.",
    )
    _add_server_options(serve)
    serve.add_argument(
        "--max-body", type=_whole("--max-body", 1), default=DEFAULT_MAX_BODY, metavar="BYTES",
        help=f"largest request body accepted (default {DEFAULT_MAX_BODY})",
    )  # fmt: skip
    serve.add_argument(
        "--max-queue", type=_whole("--max-queue", 1), default=DEFAULT_MAX_QUEUE, metavar="N",
        help=f"queued and running jobs at most; more is 503 (default {DEFAULT_MAX_QUEUE})",
    )  # fmt: skip
    serve.add_argument("--access-log", action="store_true", help="log every request")
    common(serve)
    token = verbs.add_parser(
        "token",
        help="show the bearer token (created if there is none), or rotate it",
        description="Print the webhook's bearer token, stored with mode 0600 in "
        "$DATUM_HOME/webhook.token; it is created first if there is none. --rotate replaces it; "
        "a running server uses the new token at once.",
    )
    token.add_argument("--rotate", action="store_true", help="replace the token with a new one")
    token.add_argument("--json", action="store_true", help="print the token and its file as JSON")
    common(token)
    unit = verbs.add_parser(
        "install-service",
        help="write a systemd user unit that runs the server, and say how to enable it",
        description="Write ~/.config/systemd/user/datum-webhook.service (XDG_CONFIG_HOME "
        "respected) running `dot webhook serve` with these options and this DATUM_HOME. "
        "Nothing is enabled or started: the output says how.",
    )
    _add_server_options(unit)
    unit.add_argument("--print", action="store_true", help="print the unit instead of writing it")
    unit.add_argument("--force", action="store_true", help="replace a different existing unit")
    common(unit)


def _add_server_options(cmd: argparse.ArgumentParser) -> None:
    cmd.add_argument("--host", help="address to listen on (default: webhook.host, 127.0.0.1)")
    cmd.add_argument(
        "--port", type=_port, metavar="PORT", help="port to listen on (default: webhook.port, 8080)"
    )
    cmd.add_argument(
        "--allow-privileged-port",
        action="store_true",
        help="listen on a port below 1024 (refused without it: such ports need root)",
    )
    cmd.add_argument(
        "--workers", type=_whole("--workers", 1), default=DEFAULT_WORKERS, metavar="N",
        help=f"runs at once; one environment still runs one at a time (default {DEFAULT_WORKERS})",
    )  # fmt: skip
    cmd.add_argument(
        "--grace", type=seconds_type("--grace", zero=True), default=DEFAULT_GRACE,
        metavar="DURATION",
        help=f"at shutdown, how long running jobs may go on (default {DEFAULT_GRACE:g}s; 2m)",
    )  # fmt: skip
    cmd.add_argument(
        "--warm",
        action="store_true",
        help="each worker imports dbt once and runs dbt in a forked copy of itself, not a new "
        "dbt process per run (about half the time for a small project)",
    )


def run_webhook_command(args: argparse.Namespace, *, prog: str) -> int:
    """Run `webhook <verb>`; without a verb, print the command's help."""
    # lazy: the command's modules load when it runs, not for `dot --help`
    from datum_dot.cli import webhook

    return webhook.run(args, prog=prog)


def _port(text: str) -> int:
    if not text.isdigit() or not 0 <= int(text) <= 65535:
        raise UsageError(f"--port must be a port number 0-65535, got '{text}'", "--port 8080")
    return int(text)


def _whole(option: str, least: int) -> Callable[[str], int]:
    def parse(text: str) -> int:
        if not text.isdigit() or int(text) < least:
            raise UsageError(
                f"{option} must be a whole number {least} or more, got '{text}'",
                f"pass {option} {max(least, 2)}, for example",
            )
        return int(text)

    return parse
