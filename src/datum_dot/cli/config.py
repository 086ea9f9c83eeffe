"""`dot config show | set KEY VALUE ... | schema`: the effective configuration and its files."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from datum_dot.cli import ask, render, setup_render
from datum_dot.config import schema
from datum_dot.errors import ConfigError, ExitCode, UsageError
from datum_dot.home import configkeys, effective
from datum_dot.home.settings import datum_home
from datum_dot.runs.planner import find_project_dir


def run_config(args: argparse.Namespace, *, prog: str) -> int:
    """Dispatch `dot config <verb>`; `dot config` alone shows."""
    verb = args.config_command or "show"
    if getattr(args, "ask_settings", False) and ask.is_interactive():
        return _ask_settings(args, prog)
    if verb == "set":
        return _set(args, prog)
    if verb == "schema":
        return _schema(args, prog)
    return _show(args)


def _project(args: argparse.Namespace) -> Path | None:
    """The project named by --project-dir, else the one around the current folder, if any."""
    given = getattr(args, "project_dir", None)
    if given is not None:
        return find_project_dir(given)
    here = Path.cwd()
    if any((folder / "dbt_project.yml").is_file() for folder in (here, *here.parents)):
        return find_project_dir(here)
    return None


def _project_flag(args: argparse.Namespace) -> str | None:
    """How the command line named the project, for `config show` to say where it came from."""
    registered = getattr(args, "project", None)
    if registered and getattr(args, "project_dir", None) is not None:
        return f"--project {registered}"
    return "--project-dir" if getattr(args, "project_dir", None) is not None else None


def _show(args: argparse.Namespace) -> int:
    flags = effective.Flags(
        env=getattr(args, "env", None),
        target=getattr(args, "target", None),
        profiles_dir=getattr(args, "profiles_dir", None),
        project=_project_flag(args),
    )
    settings = effective.resolve_settings(
        _project(args), flags=flags, environ=os.environ, home=datum_home()
    )
    if getattr(args, "json", False):
        render.print_json([setting.to_json() for setting in settings])
    else:
        setup_render.print_settings(settings)
    return int(ExitCode.OK)


def _set(args: argparse.Namespace, prog: str) -> int:
    pairs = configkeys.parse_pairs(args.pairs)
    project_dir = None
    if any(key in configkeys.PROJECT_KEYS for key, _ in pairs):
        project_dir = find_project_dir(args.project_dir or Path.cwd())
    changes = configkeys.set_values(datum_home(), pairs, project_dir=project_dir)
    if not changes:
        print("nothing changed: every value was already set")
    for change in changes:
        print(f"{change.key}: {change.before or '(none)'} -> {change.after}")
    idle = None
    if project_dir is not None and any(change.key == "target" for change in changes):
        idle = configkeys.targets_set_by_environments(project_dir)
    if idle is not None:
        # Recorded (an environment added later without a target uses it), but no run changes.
        shown = ", ".join(f"{name}: {target}" for name, target in idle.items())
        render.warn(
            f"recorded in config.yaml, but no run changes: every environment sets its own "
            f"target ({shown}); to change one, set it in dot_environments.user.yml"
        )
        return int(ExitCode.WARNINGS)
    if changes:
        print(f"saved; see `{prog} config show`")
    return int(ExitCode.OK)


ASKED_KEYS = ("target", "profiles-dir", "runtime", "project-path")
"""What bare `datum dbt config` offers, in order (the folder last: the others are found by it)."""


def _ask_settings(args: argparse.Namespace, prog: str) -> int:
    """Offer each of the project's settings with its current value; save each changed one."""
    # lazy: config.yaml's model loads only for this
    from datum_dot.home.userconfig import find_project_by_path, load_user_config

    home = datum_home()
    project_dir = find_project_dir(getattr(args, "project_dir", None) or Path.cwd())
    found = find_project_by_path(load_user_config(home), project_dir)
    if found is None:
        raise UsageError(
            f"{project_dir} is not registered, so it has no settings to change",
            f"register it first: {prog} dbt init",
        )
    project_id, entry = found
    print(f"settings of project '{project_id}' (Enter keeps the value in brackets)", flush=True)
    current = {
        "target": entry.target,
        "profiles-dir": str(entry.profiles_dir),
        "runtime": entry.runtime,
        "project-path": str(entry.path),
    }
    changed = 0
    for key in ASKED_KEYS:

        def save(answer: str, key: str = key, project_dir: Path = project_dir) -> str | None:
            if answer == current[key]:
                return None
            try:
                changes = configkeys.set_values(home, [(key, answer)], project_dir=project_dir)
            except (ConfigError, UsageError) as e:
                return e.message
            for change in changes:
                print(f"  {change.key}: {change.before or '(none)'} -> {change.after}")
            return None

        changed += ask.ask(key, current[key], save) != current[key]
    print(f"saved {changed} change(s); see `{prog} config show`" if changed else "nothing changed")
    return int(ExitCode.OK)


def _schema(args: argparse.Namespace, prog: str) -> int:
    names = [args.name] if args.name else list(schema.SCHEMAS)
    if args.output is not None:
        for path in schema.write_schemas(args.output, names):
            print(path)
        return int(ExitCode.OK)
    if args.name:
        print(schema.schema_text(args.name), end="")
        return int(ExitCode.OK)
    for name in names:
        print(f"{schema.SCHEMAS[name][1]:<20} {schema.shipped_schema(name)}")
    path = schema.shipped_schema("environments")
    print(
        "\nto use one in an editor (the YAML language server: VS Code, JetBrains, Neovim), "
        f"put this first in the YAML file:\n  # yaml-language-server: $schema={path}\n"
        f"or write copies next to the project: {prog} config schema --output ."
    )
    return int(ExitCode.OK)
