"""The systemd user unit that keeps `dot webhook serve` running (`dot webhook install-service`).

SIGTERM goes to the server alone (`KillMode=mixed`), which lets running jobs finish within its
grace period and cancels dbt itself after that; systemd waits `grace + 30` seconds before it
kills what is left. Secrets (a GitHub webhook secret) belong in the optional
`$DATUM_HOME/webhook.env` (mode 0600), not in the unit.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from datum_dot.errors import BadInputError
from datum_dot.home.privatefiles import make_private_dirs, write_private

UNIT_NAME = "datum-webhook.service"
ENV_FILE = "webhook.env"


@dataclass(frozen=True)
class Installed:
    """What `install_unit` did.

    Attributes:
        path: The unit file.
        changed: False when the file already said exactly this.
    """

    path: Path
    changed: bool


def unit_path(environ: Mapping[str, str]) -> Path:
    """`$XDG_CONFIG_HOME/systemd/user/datum-webhook.service` (`~/.config` by default)."""
    config = environ.get("XDG_CONFIG_HOME") or str(Path(environ.get("HOME", "~")) / ".config")
    return Path(config).expanduser() / "systemd" / "user" / UNIT_NAME


def dot_command() -> list[str]:
    """How to start this program: the `dot` beside this Python, else `python -m datum_dot`."""
    beside = Path(sys.executable).parent / "dot"
    if beside.is_file() and os.access(beside, os.X_OK):
        return [str(beside)]
    return [sys.executable, "-m", "datum_dot"]


def unit_text(serve_args: Sequence[str], *, home: Path, grace: float) -> str:
    """The unit file's text.

    Args:
        serve_args: The options after `dot webhook serve`.
        home: `$DATUM_HOME` (written into the unit, so the service uses the same state).
        grace: The server's grace period, in seconds.
    """
    argv = [*dot_command(), "webhook", "serve", *serve_args]
    bin_dir = Path(sys.executable).parent
    return "\n".join(
        [
            "# Written by `dot webhook install-service`: the datum-dot webhook server.",
            "[Unit]",
            "Description=datum-dot webhook server (dbt runs on request)",
            "After=network-online.target",
            "Wants=network-online.target",
            "",
            "[Service]",
            "Type=simple",
            f"ExecStart={' '.join(_quote(a) for a in argv)}",
            f"Environment={_quote(f'DATUM_HOME={home.absolute()}')}",
            f"Environment={_quote(f'PATH={bin_dir}:/usr/local/bin:/usr/bin:/bin')}",
            f"EnvironmentFile=-{str(home.absolute() / ENV_FILE).replace('%', '%%')}",
            "WorkingDirectory=%h",
            "Restart=on-failure",
            "RestartSec=5",
            "KillSignal=SIGTERM",
            "KillMode=mixed",
            f"TimeoutStopSec={int(grace) + 30}",
            "",
            "[Install]",
            "WantedBy=default.target",
            "",
        ]
    )


def install_unit(text: str, path: Path, *, force: bool) -> Installed:
    """Write the unit file, unless it already says the same.

    Raises:
        BadInputError: A different unit is there and `force` is not set, or it cannot be written.
    """
    try:
        current = path.read_text(encoding="utf-8") if path.exists() else None
    except OSError as e:
        raise BadInputError(f"cannot read {path}: {e.strerror}", "check its permissions") from e
    if current == text:
        return Installed(path, changed=False)
    if current is not None and not force:
        raise BadInputError(
            f"{path} exists and is different",
            "pass --force to replace it, or --print to see the new unit",
        )
    try:
        make_private_dirs(path.parent)
        write_private(path, text.encode("utf-8"), mode=0o644)
    except OSError as e:
        raise BadInputError(f"cannot write {path}: {e.strerror}", "check its permissions") from e
    return Installed(path, changed=True)


def _quote(arg: str) -> str:
    """One word of a systemd command line or assignment (`%` doubled; quoted if it must be)."""
    arg = arg.replace("%", "%%")
    if arg and not any(c in arg for c in " \t\"'\\;$"):
        return arg
    return '"' + arg.replace("\\", "\\\\").replace('"', '\\"').replace("$", "$$") + '"'
