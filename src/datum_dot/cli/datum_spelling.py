"""`datum dbt <word> ...`: the datum CLI's spelling, translated to the same commands.

    datum dbt init --repo-path .            -> dot init --repo-path .
    datum dbt validate                      -> dot validate
    datum dbt run --target prod             -> dot run prod (the environment whose target is prod)
    datum dbt run --profile ~/.dbt/x.yml    -> dot run -- --profiles-dir ~/.dbt
    datum dbt schedule --cron "0 10 * * *"  -> dot schedule add --cron "0 10 * * *"
    datum dbt schedule --status             -> dot schedule status
    datum dbt logs --last 5                 -> dot logs --last 5
    datum dbt config                        -> dot config show
    datum dbt config --target prod          -> dot config set target prod

The registered project's target and profiles folder apply to `datum dbt run`, as datum did,
because the planner applies them to every run when nothing more specific names them.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

from datum_dot.cli.dbtflags import split_dbt_flags
from datum_dot.cli.parser import build_parser, command_parser
from datum_dot.cli.scheduleargs import expand_shorthand
from datum_dot.errors import UsageError


def translate(
    word: str, rest: Sequence[str], passthrough: Sequence[str], *, prog: str
) -> tuple[argparse.Namespace, list[str]]:
    """Turn `dbt <word> <rest> [-- passthrough]` into the parsed arguments of the same command.

    Returns:
        The arguments as `dot <word>` would have parsed them, and the arguments for dbt.

    Raises:
        UsageError: The command's options are wrong.
    """
    parser = build_parser(prog)
    words, dbt_args = list(rest), list(passthrough)
    if word == "schedule" and "--webhook" in words:
        # datum started its webhook server with `schedule --webhook [--port P]`: the same server.
        serve = ["webhook", "serve", *(w for w in words if w != "--webhook")]
        return parser.parse_args(serve), dbt_args
    if word == "run":
        words, dbt_args, target = _run_words(words, dbt_args)
        words, moved = split_dbt_flags(words, command_parser(parser, "run"), ("run",))
        dbt_args = [*moved, *dbt_args]
        if target is not None:
            words, dbt_args = _target_words(target, words, dbt_args, prog, parser)
    elif word == "config":
        words = _config_words(words)
    elif word == "schedule":
        words, dbt_args = _schedule_words(words, dbt_args, prog)
    args = parser.parse_args(expand_shorthand([word, *words]))
    # datum's bare `config` offered each setting in turn; on a terminal, so does this one.
    args.ask_settings = word == "config" and _names_no_setting(rest)
    return args, dbt_args


def _names_no_setting(words: Sequence[str]) -> bool:
    """`config` alone, or with only the project named (`--project shop`)."""
    rest = list(words)
    if rest[:1] == ["--project"]:
        rest = rest[2:]
    elif rest[:1] and rest[0].startswith("--project="):
        rest = rest[1:]
    return not rest


def _run_words(words: list[str], dbt_args: list[str]) -> tuple[list[str], list[str], str | None]:
    """Take out datum's --target (returned) and turn --profile into dbt's --profiles-dir."""
    mini = argparse.ArgumentParser(add_help=False)
    mini.add_argument("--target", "-t")
    mini.add_argument("--profile", type=Path)
    known, remaining = mini.parse_known_args(words)
    moved: list[str] = []
    if known.profile is not None:
        path = known.profile.expanduser()
        if not path.exists():
            raise UsageError(
                f"--profile {known.profile} does not exist",
                "pass profiles.yml or the folder that holds it",
            )
        moved += ["--profiles-dir", str((path.parent if path.is_file() else path).absolute())]
    return remaining, [*moved, *dbt_args], known.target


def _target_words(
    target: str,
    words: list[str],
    dbt_args: list[str],
    prog: str,
    parser: argparse.ArgumentParser,
) -> tuple[list[str], list[str]]:
    """`run --target T`: run the environment whose target is T, or pass T on to dbt.

    With a spec naming the environment, or in a project without environments, T goes to dbt.
    """
    # The run's own parser tells the spec from option values (`--project shop`, `--vars X`).
    known, _ = command_parser(parser, "run").parse_known_args(words)
    env = None
    if not known.spec:
        start = known.project_dir or Path.cwd()
        if known.project:
            # lazy: config.yaml is read only when a project is named by id
            from datum_dot.cli.projectarg import registered_path

            start = registered_path(known.project, prog=prog)
        env = _environment_of(target, start, prog)
    if env is None:
        return words, ["--target", target, *dbt_args]
    return [env, *words], dbt_args  # the environment's vars go with its target


def _environment_of(target: str, start: Path, prog: str) -> str | None:
    """The one environment whose target is `target`; None when the project defines none.

    Running the default environment's vars against another environment's target would mix two
    environments' settings (`run --target prod` with dev's vars), so that is refused.

    Raises:
        UsageError: Environments are defined, but none or several set this target.
    """
    # lazy: environments are read only for datum's --target
    from datum_dot.config.environments import load_environments
    from datum_dot.runs.planner import find_project_dir

    envs = load_environments(find_project_dir(start))
    names = envs.names
    if not names:
        return None
    matching = [n for n in names if envs.resolve(n).flags.get("target") == target]
    if len(matching) == 1:
        return matching[0]
    if envs.default in matching:
        return envs.default  # the plain run already uses that target
    escape = f"or keep the default environment's settings: {prog} dbt run -- --target {target}"
    if matching:
        raise UsageError(
            f"--target {target} is the target of environments {', '.join(matching)}",
            f"name one: {prog} dbt run {matching[0]}, {escape}",
        )
    raise UsageError(
        f"no environment in dot_environments.yml sets target '{target}' "
        f"(environments: {', '.join(names)})",
        f"name the environment to run: {prog} dbt run <env>, {escape}",
    )


def _schedule_words(
    words: list[str], dbt_args: list[str], prog: str
) -> tuple[list[str], list[str]]:
    """datum's `schedule --status`, `--webhook` and `--target T` as `dot schedule` words."""
    if "--status" in words:
        return ["status", *(w for w in words if w != "--status")], dbt_args
    mini = argparse.ArgumentParser(add_help=False)
    mini.add_argument("--target", "-t")
    known, remaining = mini.parse_known_args(words)
    if known.target is not None:
        dbt_args = ["--target", known.target, *dbt_args]
    return remaining, dbt_args


def _config_words(words: list[str]) -> list[str]:
    """datum's `config [--project-path P] [--profiles-path P] [--target T]` as show or set."""
    mini = argparse.ArgumentParser(add_help=False)
    mini.add_argument("--project-path")
    mini.add_argument("--profiles-path")
    mini.add_argument("--target")
    known, remaining = mini.parse_known_args(words)
    pairs: list[str] = []
    for key, value in (
        ("project-path", known.project_path),
        ("profiles-dir", known.profiles_path),
        ("target", known.target),
    ):
        if value is not None:
            pairs += [key, value]
    if pairs:
        return ["set", *pairs, *remaining]
    if remaining and remaining[0] in {"show", "set", "schema"}:
        return remaining
    return ["show", *remaining]
