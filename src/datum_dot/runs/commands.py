"""The dbt commands a run may name, and the options each accepts, as dbt itself says.

The webhook checks a request's command and warms dbt up through here, since it never imports
the dbt adapter (`dbtcore`) itself; the planner is handed `command_options` by `execute()`.
"""

from __future__ import annotations

from datum_dot import dbtcore

DBT_COMMANDS = dbtcore.DBT_COMMANDS
"""Every dbt command dot runs, with its subcommands (`docs generate`, `source freshness`)."""


def command_options(command: tuple[str, ...]) -> frozenset[str]:
    """The option strings a dbt command accepts (`--select`, `-s`, ...); imports dbt.

    Args:
        command: The command words, such as `("build",)` or `("docs", "generate")`.
    """
    return dbtcore.command_options(command)
