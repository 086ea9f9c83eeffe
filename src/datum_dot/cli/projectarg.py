"""`--project ID`: which project, by its registered id, on every command that works on one.

The option is accepted before the command word (`datum --project shop run`) and after it
(`datum run --project shop`, `datum dbt run --project shop`). Commands that take a project
folder get the registered folder as `--project-dir`; `logs` and `which` filter by the project;
the `schedule` verbs read the id as they always have. Only argparse is imported at start-up;
config.yaml is read when an id has to be resolved.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from datum_dot.errors import UsageError

OPTION = "--project"
GLOBAL_DEST = "global_project"
HELP = "a registered project, by id (`dot init` registers one); instead of --project-dir"


def add_global_option(parser: argparse.ArgumentParser) -> None:
    """The top-level `--project ID`, given before the command word."""
    parser.add_argument(OPTION, dest=GLOBAL_DEST, metavar="ID", help=HELP.split(";")[0])


def add_where_folder(parser: argparse.ArgumentParser) -> None:
    """Give every (sub-)command that takes `--project-dir` a `--project ID` beside it.

    One rule in one place: whatever works on a project folder can be pointed at a registered
    project instead, so no command is left with only one of the two spellings.
    """
    for sub in _sub_parsers(parser):
        folder = next((a for a in sub._actions if a.dest == "project_dir"), None)
        if folder is not None and OPTION not in sub._option_string_actions:
            _place_after(sub, folder, sub.add_argument(OPTION, metavar="ID", help=HELP))
        add_where_folder(sub)


def _place_after(
    parser: argparse.ArgumentParser, anchor: argparse.Action, action: argparse.Action
) -> None:
    """Show `action` right after `anchor` in the usage line and the help, not at the end."""
    groups = [parser._actions, *(g._group_actions for g in parser._action_groups)]
    for actions in groups:
        if action in actions and anchor in actions:
            actions.remove(action)
            actions.insert(actions.index(anchor) + 1, action)


def given_project(args: argparse.Namespace, *, prog: str) -> str | None:
    """The project id given before or after the command word; None when none was.

    Raises:
        UsageError: Two different ids were given, or the command works on no project.
    """
    before = getattr(args, GLOBAL_DEST, None)
    after = getattr(args, "project", None)
    if before and after and before != after:
        raise UsageError(
            f"--project {before} (before the command) and --project {after} (after it) differ",
            "give --project once",
        )
    given = before or after
    if given and not hasattr(args, "project") and not _takes_folder(args):
        command = " ".join(w for w in (args.command, _verb(args)) if w)
        raise UsageError(
            f"`{prog} {command}` does not work on one project, so --project does not apply",
            f"drop --project {given}",
        )
    return str(given) if given else None


def apply_project(args: argparse.Namespace, *, prog: str) -> None:
    """Resolve `--project ID` into the arguments the command reads.

    A command with `--project-dir` gets the registered folder there; `logs` and `which` get the
    name runs of that project are recorded under; other commands keep the id.

    Raises:
        UsageError: As `given_project`, or both `--project` and `--project-dir` were given.
        BadInputError: The id is not registered (the message lists the registered ones).
    """
    given = given_project(args, prog=prog)
    if given is None:
        return
    if _takes_folder(args):
        if getattr(args, "project_dir", None) is not None:
            raise UsageError(
                f"--project {given} and --project-dir {args.project_dir} both say which project",
                f"give one: --project {given}, or --project-dir {args.project_dir}",
            )
        args.project_dir = registered_path(given, prog=prog)
        args.project = given
    elif args.command in ("logs", "which"):
        args.project = _recorded_name(given)
    else:
        args.project = given


def registered_path(project_id: str, *, prog: str) -> Path:
    """The folder of the registered project `project_id`.

    Raises:
        UsageError: No project has that id; the message lists the registered ones.
        ConfigError: config.yaml does not read or validate.
    """
    # lazy: config.yaml and pydantic load only when a project is named by id
    from datum_dot.home import userconfig
    from datum_dot.home.settings import datum_home

    home = datum_home()
    projects = userconfig.load_user_config(home).projects
    entry = projects.get(project_id)
    if entry is not None:
        return entry.path
    where = userconfig.config_path(home)
    if not projects:
        raise UsageError(
            f"no project '{project_id}': no project is registered in {where}",
            f"register one from its folder: cd <dbt project> && {prog} init",
        )
    registered = ", ".join(f"{key} ({value.path})" for key, value in sorted(projects.items()))
    raise UsageError(
        f"no project '{project_id}' in {where}; registered: {registered}",
        f"pass one of them: --project {min(projects)}, or register it with `{prog} init`",
    )


def _recorded_name(given: str) -> str:
    """The name runs are recorded under: a registered id's project's name, else `given`.

    Runs of projects never registered are recorded too, so a value that is not a registered id
    still filters by the recorded name, as it always has.
    """
    # lazy: as in `registered_path`
    from datum_dot.home import userconfig
    from datum_dot.home.settings import datum_home
    from datum_dot.runs.planner import project_name

    entry = userconfig.load_user_config(datum_home()).projects.get(given)
    return given if entry is None else project_name(entry.path)


def _takes_folder(args: argparse.Namespace) -> bool:
    # `config` without a verb is `config show`, which takes --project-dir
    bare_config = args.command == "config" and getattr(args, "config_command", None) is None
    return hasattr(args, "project_dir") or bare_config


def _verb(args: argparse.Namespace) -> str | None:
    for dest in ("config_command", "schedule_command", "webhook_command", "verb"):
        value = getattr(args, dest, None)
        if isinstance(value, str):
            return value
    return None


def _sub_parsers(parser: argparse.ArgumentParser) -> list[argparse.ArgumentParser]:
    return [
        sub
        for action in parser._actions
        if isinstance(action, argparse._SubParsersAction)
        for sub in dict.fromkeys(action.choices.values())
    ]


def take_global_project(words: list[str]) -> tuple[list[str], str | None]:
    """Take `--project ID` given before the command word out of `words` (ours, before `--`).

    For `schedule` the option is taken wherever it is: the verbs that read an id take it from
    the namespace, and `schedule --project shop` (no verb yet) must not read as `add`.

    Raises:
        UsageError: `--project` has no value, or two different ones were given.
    """
    kept: list[str] = []
    found: list[str] = []
    word: str | None = None
    i = 0
    while i < len(words):
        token = words[i]
        name, has_value = token.split("=", 1)[0], "=" in token
        if name == OPTION and (word is None or word == "schedule"):
            value = token.split("=", 1)[1] if has_value else _value_after(words, i)
            found.append(value)
            i += 1 if has_value else 2
            continue
        if word is None and not token.startswith("-") and not _is_value(words, i):
            word = token
        kept.append(token)
        i += 1
    if len(set(found)) > 1:
        raise UsageError(
            f"--project is given {len(found)} times: {', '.join(found)}", "give --project once"
        )
    return kept, (found[0] if found else None)


def _value_after(words: list[str], at: int) -> str:
    if at + 1 >= len(words) or words[at + 1].startswith("-"):
        raise UsageError(
            "--project needs a project id",
            "give one: --project <id> (`dot init` prints a project's id)",
        )
    return words[at + 1]


def _is_value(words: list[str], at: int) -> bool:
    return at > 0 and words[at - 1] == "--log-format"
