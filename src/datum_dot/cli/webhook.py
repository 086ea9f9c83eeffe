"""`dot webhook serve|token|install-service`: the webhook server, its token, its systemd unit.

```
dot webhook serve [--host H] [--port P] [--workers N] [--grace S] [--warm] [--max-body B] [--max-queue N]
dot webhook token [--rotate] [--json]
dot webhook install-service [--host H] [--port P] [--workers N] [--grace S] [--warm] [--print] [--force]
```
"""

from __future__ import annotations

import argparse
import os
import shlex
import sys
from pathlib import Path

from datum_dot.cli import render
from datum_dot.errors import ExitCode, UsageError
from datum_dot.home.settings import datum_home
from datum_dot.home.tokens import (
    ensure_webhook_token,
    read_webhook_token,
    rotate_webhook_token,
    token_path,
)
from datum_dot.home.userconfig import WebhookSettings, load_user_config
from datum_dot.webhook.unit import UNIT_NAME, install_unit, unit_path, unit_text

PRIVILEGED_BELOW = 1024
"""Ports below this one are privileged: only root may listen there."""


def run(args: argparse.Namespace, *, prog: str) -> int:
    """Run the `webhook` sub-command the arguments name."""
    verb = args.webhook_command
    if verb == "serve":
        return _serve(args, prog)
    if verb == "token":
        return _token(args, prog)
    if verb == "install-service":
        return _install(args, prog)
    raise UsageError(
        f"`{prog} webhook` needs a sub-command: serve, token or install-service",
        f"run `{prog} webhook --help`",
    )


def _serve(args: argparse.Namespace, prog: str) -> int:
    # lazy: FastAPI and uvicorn load only to serve
    from datum_dot.webhook.server import ServerOptions, Started, serve

    home = datum_home()
    config = load_user_config(home)
    host, port = _address(args, config.webhook)
    options = ServerOptions(
        host=host,
        port=port,
        workers=args.workers,
        grace=args.grace,
        max_body=args.max_body,
        max_queue=args.max_queue,
        warm=args.warm,
        access_log=args.access_log,
    )

    def announce(started: Started) -> None:
        project = next(iter(config.projects), "<project>")
        auth = f'-H "Authorization: Bearer $({prog} webhook token)" ' if started.token else ""
        runtime = "warm local runtime (fork server)" if args.warm else "subprocess runtime"
        lines = [
            f"webhook server listening on {started.url} ({options.workers} workers, {runtime})",
            f"queue: {started.queue or home / 'webhook.sqlite'} ({started.queued} queued)",
            "trigger a run:",
            f"  curl -X POST {auth}-H 'Content-Type: application/json' \\",
            f'       -d \'{{"spec": "prod@main", "command": "build"}}\' '
            f"{started.url}/v1/projects/{project}/runs",
            "or on the datum CLI's route (a retry with the same <request-id> runs nothing twice):",
            f"  curl -X POST {auth}{started.url}/trigger/{project}/<request-id>",
            "follow it:",
            f"  curl {auth}{started.url}/v1/runs/<run_id>",
            f"API: {started.url}/openapi.json; stop with Ctrl-C or SIGTERM",
        ]
        print("\n".join(lines), flush=True)
        recovered = started.recovered
        if recovered.requeued or recovered.finished:
            render.warn(
                f"a previous server stopped abruptly: {len(recovered.requeued)} claimed runs "
                f"queued again, {len(recovered.finished)} interrupted runs marked finished"
            )
        if not config.projects:
            render.warn(f"no project is registered: run `{prog} init` in a dbt project")
        if not started.token:
            render.warn(
                f"no webhook token: requests are not authenticated (localhost only); "
                f"create one with `{prog} webhook token`"
            )
        sys.stderr.flush()

    stopped = serve(options, home=home, announce=announce)
    print(
        f"stopped: {len(stopped.cancelled)} running jobs cancelled, "
        f"{stopped.queued} left queued for the next start",
        file=sys.stderr,
    )
    return int(ExitCode.OK)


def _token(args: argparse.Namespace, prog: str) -> int:
    home = datum_home()
    token = rotate_webhook_token(home) if args.rotate else ensure_webhook_token(home)
    if args.json:
        render.print_json({"token": token, "path": str(token_path(home)), "rotated": args.rotate})
    else:
        print(token)
    if args.rotate:
        print(
            f"rotated {token_path(home)}: running servers accept only the new token; "
            f"update the clients (`{prog} webhook token` prints it)",
            file=sys.stderr,
        )
    return int(ExitCode.OK)


def _install(args: argparse.Namespace, prog: str) -> int:
    # lazy: FastAPI and uvicorn load only to serve
    from datum_dot.webhook.server import is_loopback

    home = datum_home()
    host, port = _address(args, load_user_config(home).webhook)
    if not is_loopback(host) and read_webhook_token(home) is None:
        raise UsageError(
            f"the service would listen on {host} without a webhook token, and refuse to start",
            f"create a token first: {prog} webhook token",
        )
    serve_args = ["--host", host, "--port", str(port), "--workers", str(args.workers)]
    serve_args += ["--allow-privileged-port"] if 0 < port < PRIVILEGED_BELOW else []
    serve_args += ["--grace", f"{args.grace:g}", *(["--warm"] if args.warm else [])]
    text = unit_text(serve_args, home=home, grace=args.grace)
    if args.print:
        sys.stdout.write(text)
        return int(ExitCode.OK)
    installed = install_unit(text, unit_path(os.environ), force=args.force)
    what = "wrote" if installed.changed else "unchanged:"
    print(f"{what} {installed.path}")
    print(f"it runs: {prog} webhook serve {shlex.join(serve_args)}")
    print("enable and start it:")
    print("  systemctl --user daemon-reload")
    print(f"  systemctl --user enable --now {UNIT_NAME}")
    print("keep it running when you are logged out:  loginctl enable-linger $USER")
    print(f"its log:  journalctl --user -u {Path(UNIT_NAME).stem} -f")
    return int(ExitCode.OK)


def _address(args: argparse.Namespace, settings: WebhookSettings) -> tuple[str, int]:
    """Host and port from the flags, else from config.yaml; a privileged port only when allowed.

    Raises:
        UsageError: The port is 1-1023 and `--allow-privileged-port` was not given.
    """
    host = args.host or settings.host
    port = args.port if args.port is not None else settings.port
    if 0 < port < PRIVILEGED_BELOW and not args.allow_privileged_port:
        where = "--port" if args.port is not None else "webhook.port in config.yaml"
        raise UsageError(
            f"port {port} ({where}) is below {PRIVILEGED_BELOW}: listening there needs root, "
            "and a root server runs every dbt job as root",
            "use a port such as 8080 (--port 8080), or pass --allow-privileged-port to mean it",
        )
    return host, port
