"""The parsers of `init`, `validate`, `config` and the datum spelling `dbt <word>`, and their dispatch.

Only argparse is imported here (the module is loaded for `dot --help`); each command's module is
imported when the command runs.
"""

from __future__ import annotations

import argparse
import difflib
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from datum_dot.errors import UsageError

SETUP_COMMANDS = {
    "init": "register a dbt project: config, key pair, webhook token",
    "validate": "pre-flight checks, each failure with its fix (--auto-fix repairs safe ones)",
    "config": "show the effective configuration, set values, export JSON Schemas",
    "dbt": "the datum spelling: datum dbt <init|validate|run|schedule|logs|config> ...",
}
DATUM_WORDS = ("init", "validate", "run", "schedule", "logs", "config")

P = TypeVar("P", bound=argparse.ArgumentParser)
AddOptions = Callable[[argparse.ArgumentParser], None]
Redispatch = Callable[[argparse.Namespace, list[str]], int]


def add_setup_parsers(sub: argparse._SubParsersAction[P], *, common: AddOptions) -> None:
    """Add `init`, `validate`, `config` and `dbt` to the top-level sub-parsers."""
    _add_init(sub, common)
    _add_validate(sub, common)
    _add_config(sub, common)
    cmd = sub.add_parser(
        "dbt",
        help=SETUP_COMMANDS["dbt"],
        description="The datum CLI's spelling of the same commands: `datum dbt run --target "
        "prod` is `dot run prod` (the environment whose target is prod), `datum dbt config "
        "--target prod` is `dot config "
        "set target prod`, and so on. `run` takes --target, --profile (the profiles.yml or its "
        "folder), --dry-run, --vars and --timeout, and without --target uses the registered "
        "project's target when nothing else names one.",
        epilog="examples: %(prog)s init --project-dir . | %(prog)s validate | %(prog)s run "
        "--target prod | %(prog)s logs --last 5 | %(prog)s config --target prod",
    )
    cmd.add_argument("word", metavar="<" + "|".join(DATUM_WORDS) + ">", help="the command")
    cmd.add_argument("rest", nargs=argparse.REMAINDER, help="its options")


def run_setup_command(
    args: argparse.Namespace, passthrough: list[str], *, prog: str, redispatch: Redispatch
) -> int:
    """Run `init`, `validate`, `config`, or translate `dbt <word>` and dispatch it again."""
    if args.command == "init":
        # lazy: the command's modules load when it runs, not for `dot --help`
        from datum_dot.cli.init import run_init

        return run_init(args, prog=prog)
    if args.command == "validate":
        # lazy: the command's modules load when it runs, not for `dot --help`
        from datum_dot.cli.validate import run_validate

        return run_validate(args, prog=prog)
    if args.command == "config":
        # lazy: the command's modules load when it runs, not for `dot --help`
        from datum_dot.cli.config import run_config

        return run_config(args, prog=prog)
    if args.word not in DATUM_WORDS:
        raise _not_a_datum_word(args.word, prog)
    # lazy: the command's modules load when it runs, not for `dot --help`
    from datum_dot.cli.datum_spelling import translate

    again, rest = translate(args.word, args.rest, passthrough, prog=prog)
    return redispatch(again, rest)


def _not_a_datum_word(word: str, prog: str) -> UsageError:
    """`datum dbt build`: the datum spelling has six words; dbt's commands are spelled directly."""
    # lazy: the parser module imports this one
    from datum_dot.cli.parser import DBT_COMMANDS

    words = ", ".join(DATUM_WORDS)
    if word in DBT_COMMANDS:
        return UsageError(
            f"`{prog} dbt {word}` is not a command: `{prog} dbt` takes {words}",
            f"dbt {word} is `{prog} {word}`, for example: {prog} {word} prod",
        )
    close = difflib.get_close_matches(word, [*DATUM_WORDS, *DBT_COMMANDS], n=1)
    guess = f"; did you mean '{close[0]}'?" if close else ""
    return UsageError(
        f"`{prog} dbt {word}` is not a command: `{prog} dbt` takes {words}{guess}",
        f"run `{prog} dbt --help`, or `{prog} --help` for every command",
    )


def _add_init(sub: argparse._SubParsersAction[P], common: AddOptions) -> None:
    cmd = sub.add_parser(
        "init",
        help=SETUP_COMMANDS["init"],
        description="Register the dbt project in $DATUM_HOME/config.yaml (id, folder, profiles "
        "folder, default target, dbt version, runtime), create its key pair in "
        "$DATUM_HOME/keys/ and the webhook token. Running it again changes nothing.",
        epilog="examples: %(prog)s | %(prog)s --project-dir ~/src/shop --target prod | "
        "%(prog)s --key-type rsa --force",
    )
    cmd.add_argument(
        "--project-dir",
        dest="repo_path",
        type=Path,
        default=Path(),
        metavar="DIR",
        help="the dbt project, or a folder above it (default: .)",
    )
    # The datum CLI's spelling, kept working and out of the help.
    cmd.add_argument(
        "--repo-path",
        dest="repo_path",
        type=Path,
        default=argparse.SUPPRESS,
        help=argparse.SUPPRESS,
    )
    cmd.add_argument(
        "--profiles-dir",
        type=Path,
        metavar="DIR",
        help="the folder of profiles.yml (default: found as dbt finds it)",
    )
    cmd.add_argument("--target", help="the default target (default: the one runs would use)")
    cmd.add_argument("--runtime", metavar="NAME", help="what runs dbt (default: local)")
    cmd.add_argument(
        "--key-type",
        choices=("ed25519", "rsa"),
        help="a new key's type: ed25519 (default) or rsa (4096 bits)",
    )
    cmd.add_argument("--force", action="store_true", help="replace an existing key pair")
    cmd.add_argument("--json", action="store_true", help="print what was done as JSON")
    common(cmd)


def _add_validate(sub: argparse._SubParsersAction[P], common: AddOptions) -> None:
    cmd = sub.add_parser(
        "validate",
        help=SETUP_COMMANDS["validate"],
        description="Check everything a run relies on: dbt_project.yml, profiles.yml (the "
        "profile and the target the run would use), dot's config files, git, the key pair, the "
        "webhook token, the crontab, dbt and its adapter. Exit 0 when all pass, 10 with "
        "warnings only, 20 with failures.",
        epilog="examples: %(prog)s | %(prog)s --env prod --connection | %(prog)s --auto-fix "
        "--yes. --auto-fix repairs only what is safe (file modes, .gitignore, a missing key or "
        "token, crontab lines of deleted schedules); it never edits profiles.yml or "
        "dbt_project.yml.",
    )
    cmd.add_argument("--env", help="the environment (default: the default one)")
    cmd.add_argument("--target", help="the target, instead of the environment's")
    cmd.add_argument("--profiles-dir", type=Path, metavar="DIR", help="the folder of profiles.yml")
    cmd.add_argument("--project-dir", type=Path, help="the dbt project folder (default: search up)")
    cmd.add_argument("--connection", action="store_true", help="also test it: dbt debug")
    cmd.add_argument(
        "--auto-fix", action="store_true", help="show the safe repairs, then make them"
    )
    cmd.add_argument("-y", "--yes", action="store_true", help="with --auto-fix: do not ask")
    cmd.add_argument("--json", action="store_true", help="print the checks as JSON")
    common(cmd)


def _add_config(sub: argparse._SubParsersAction[P], common: AddOptions) -> None:
    cmd = sub.add_parser(
        "config",
        help=SETUP_COMMANDS["config"],
        description="Show the effective configuration and where each value comes from (flag, "
        "environment file, env var, user config, default), set values in $DATUM_HOME/config.yaml, "
        "or export the JSON Schemas of dot_environments.yml and dot_vars.yml.",
        epilog="examples: %(prog)s show --env prod | %(prog)s set target prod | %(prog)s set "
        "profiles-dir /etc/dbt | %(prog)s schema --output .",
    )
    common(cmd)
    verbs = cmd.add_subparsers(dest="config_command", metavar="<show|set|schema>")
    show = verbs.add_parser("show", help="the effective configuration (default)")
    show.add_argument("--env", help="the environment (default: the default one)")
    show.add_argument("--target", help="as if --target were given")
    show.add_argument("--profiles-dir", type=Path, metavar="DIR", help="as if given")
    show.add_argument("--project-dir", type=Path, help="the dbt project (default: search up)")
    show.add_argument("--json", action="store_true", help="print the settings as JSON")
    common(show)
    put = verbs.add_parser(
        "set",
        help="set values (checked before saving)",
        description="Set KEY VALUE pairs; all are checked before any is saved. Keys: target, "
        "profiles-dir, runtime, project-path (of the project here), webhook.host, webhook.port, "
        "webhook.github-secret-env, webhook.branch-envs (main=prod,develop=dev).",
    )
    put.add_argument("pairs", nargs="+", metavar="KEY VALUE", help="what to set")
    put.add_argument("--project-dir", type=Path, help="the dbt project (default: search up)")
    common(put)
    schema = verbs.add_parser(
        "schema",
        help="JSON Schemas of dot_environments.yml and dot_vars.yml",
        description="Without arguments, list the schema files installed with dot; with a name, "
        "print that schema; with --output, write both (or the named one) into a folder.",
    )
    schema.add_argument("name", nargs="?", choices=("environments", "vars"), help="one schema")
    schema.add_argument("--output", type=Path, metavar="DIR", help="write the schemas here")
    common(schema)
