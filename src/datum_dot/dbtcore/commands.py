"""dbt's commands, and the options each accepts, read from dbt's own click definitions.

The option tables are computed once per process (`functools.cache`) and follow the installed
dbt version; dbt itself is imported only when a table is first asked for.
"""

from __future__ import annotations

from functools import cache

DBT_COMMANDS: dict[str, tuple[str, ...]] = {
    "build": (),
    "run": (),
    "test": (),
    "seed": (),
    "snapshot": (),
    "compile": (),
    "parse": (),
    "ls": (),
    "list": (),
    "show": (),
    "docs": ("generate", "serve"),
    "source": ("freshness", "snapshot-freshness"),
    "run-operation": (),
    "deps": (),
    "clone": (),
    "retry": (),
    "debug": (),
}
"""dbt commands and, for groups, their sub-verbs. `run-operation` takes a macro name instead.

`dbt clean` and `dbt init` are left out: `dot clean` and `dot init` are the tool's own commands.
"""


@cache
def command_options(command: tuple[str, ...]) -> frozenset[str]:
    """Return every option string (`--threads`, `-t`, `--no-partial-parse`) a dbt command accepts.

    Derived from dbt's own click command definitions, so it follows the installed dbt version.
    """
    import click
    from dbt.cli.main import cli

    node: click.Command = cli
    for word in command:
        if not isinstance(node, click.Group) or word not in node.commands:
            break
        node = node.commands[word]
    names: set[str] = set()
    for param in node.params:
        if isinstance(param, click.Option):
            names.update(param.opts)
            names.update(param.secondary_opts)
    return frozenset(names)


@cache
def all_option_names() -> frozenset[str]:
    """Every option string accepted by at least one dbt command."""
    names: set[str] = set()
    for command, subs in DBT_COMMANDS.items():
        for sub in subs or ("",):
            names |= command_options((command, sub) if sub else (command,))
    return frozenset(names)


@cache
def option_arities(command: tuple[str, ...]) -> dict[str, str]:
    """How many words each option of a dbt command takes, from dbt's own click definitions.

    Returns:
        Each option string mapped to `flag` (no value), `value` (one word), `values` (dbt's
        MultiOption: every word up to the next option, as `--select a b`) or `rest` (every
        word that follows).
    """
    import click
    from dbt.cli.main import cli

    node: click.Command = cli
    for word in command:
        if not isinstance(node, click.Group) or word not in node.commands:
            break
        node = node.commands[word]
    arities: dict[str, str] = {}
    for param in node.params:
        if not isinstance(param, click.Option):
            continue
        if param.is_flag or param.count:
            arity = "flag"
        elif type(param).__name__ == "MultiOption":
            arity = "values" if getattr(param, "save_other_options", True) else "rest"
        else:
            arity = "value"
        arities.update(dict.fromkeys(param.opts, arity))
        arities.update(dict.fromkeys(param.secondary_opts, "flag"))
    return arities
