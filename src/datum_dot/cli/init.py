"""`dot init`: register the project, create its key pair and the webhook token."""

from __future__ import annotations

import argparse

from datum_dot.cli import render, setup_render
from datum_dot.errors import ExitCode
from datum_dot.home.keys import KeyType
from datum_dot.home.registration import InitRequest, init_project
from datum_dot.home.settings import datum_home


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
    outcome = init_project(request, home=datum_home())
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
