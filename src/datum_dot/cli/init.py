"""`dot init`: register the project, create its key pair and the webhook token."""

from __future__ import annotations

import argparse
import sys
from dataclasses import replace
from pathlib import Path

from datum_dot.cli import ask, render, setup_render
from datum_dot.errors import ExitCode, ProfilesNotFoundError
from datum_dot.home.keys import KeyType
from datum_dot.home.registration import InitOutcome, InitRequest, find_project, init_project
from datum_dot.home.settings import datum_home

PROFILES_FILE = "profiles.yml"


def run_init(args: argparse.Namespace, *, prog: str) -> int:
    """`dot init ...`; exit 0, or 10 when the set-up has problems `dot validate` will show."""
    request = InitRequest(
        repo_path=args.repo_path,
        profiles_dir=args.profiles_dir,
        target=args.target,
        runtime=args.runtime,
        key_type=KeyType(args.key_type) if args.key_type else None,
        force=args.force,
    )
    outcome = _init(request, asking=not args.json and ask.is_interactive())
    if args.json:
        render.print_json(
            {
                "project_id": outcome.project_id,
                "changed": outcome.changed,
                "changes": list(outcome.changes),
                "warnings": list(outcome.warnings),
                "registration": outcome.entry.model_dump(mode="json"),
                "private_key": str(outcome.key_files.private),
                "public_key": str(outcome.key_files.public),
                "key": outcome.key_action.value,
                "webhook_token": str(outcome.token_path),
            }
        )
    else:
        setup_render.print_init(outcome, prog)
    return int(ExitCode.WARNINGS if outcome.warnings else ExitCode.OK)


def _init(request: InitRequest, *, asking: bool) -> InitOutcome:
    """Register; on a terminal, a profiles.yml that cannot be found is asked for, not a failure."""
    try:
        return init_project(request, home=datum_home())
    except ProfilesNotFoundError as e:
        if not asking or request.profiles_dir is not None:
            raise
        print(e.message, file=sys.stderr, flush=True)
        default = _likely_folder(find_project(request.repo_path))
        answer = ask.ask("the folder of profiles.yml", str(default), _holds_profiles)
    return init_project(replace(request, profiles_dir=Path(answer).expanduser()), home=datum_home())


def _holds_profiles(answer: str) -> str | None:
    folder = Path(answer).expanduser()
    if (folder / PROFILES_FILE).is_file():
        return None
    if folder.is_file() and folder.name == PROFILES_FILE:
        return f"give the folder that holds it: {folder.parent}"
    return f"no {PROFILES_FILE} in {folder}; give the folder that holds it"


def _likely_folder(project_dir: Path) -> Path:
    """A folder above the project holding profiles.yml (a monorepo's root), else ~/.dbt."""
    for folder in project_dir.parents:
        if (folder / PROFILES_FILE).is_file():
            return folder
        if (folder / ".git").exists():
            break
    return Path("~/.dbt")
