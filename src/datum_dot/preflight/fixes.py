"""Make the safe repairs `dot validate --auto-fix` offers.

Safe means: only files the tool owns or a line appended to `.gitignore`. profiles.yml and
dbt_project.yml are never edited; a key that does not load is never replaced (that needs
`dot init --force`, because the old public key may be in use somewhere).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

from datum_dot.errors import CrontabError, DotError
from datum_dot.home import keys, tokens
from datum_dot.home.privatefiles import PRIVATE_FILE_MODE
from datum_dot.preflight.model import AutoFix, FixKind
from datum_dot.runs import prompts
from datum_dot.scheduling import cronlines


def apply_fix(fix: AutoFix, *, home: Path, environ: Mapping[str, str]) -> str:
    """Make one repair.

    Returns:
        What was done.

    Raises:
        OSError: A file could not be changed.
        DatumHomeError: A key or the token could not be written.
        CrontabError: The crontab could not be read or written.
    """
    if fix.kind is FixKind.CHMOD_PRIVATE:
        for path in fix.paths:
            path.chmod(PRIVATE_FILE_MODE)
        return fix.description
    if fix.kind is FixKind.IGNORE_DOT_DIR:
        gitignore = fix.paths[0]
        prompts.apply(prompts.Suggestion(prompts.GITIGNORE, "", "", gitignore))
        return f"added .dot/ to {gitignore}"
    if fix.kind is FixKind.CREATE_KEY:
        assert fix.project_id is not None  # noqa: S101 - key fixes always name the project
        action = keys.ensure_key_pair(home, fix.project_id)
        return f"{action.value}: {keys.key_files(home, fix.project_id).private}"
    if fix.kind is FixKind.CREATE_TOKEN:
        tokens.rotate_webhook_token(home)
        return f"created a new webhook token in {tokens.token_path(home)}"
    source = cronlines.crontab_source(environ)
    if source is None:
        raise CrontabError("the crontab is no longer available", "check DOT_CRONTAB")
    removed = cronlines.remove_from_crontab(source, fix.lines)
    return f"removed {removed} line(s) from {source}"


def apply_fixes(fixes: Sequence[AutoFix], *, home: Path, environ: Mapping[str, str]) -> list[str]:
    """Make each repair in order; stop at the first that fails.

    Returns:
        What each repair did.

    Raises:
        RepairError: A file could not be changed (the message names it).
        DatumHomeError: A key or the token could not be written.
        CrontabError: The crontab could not be read or written.
    """
    done = []
    for fix in fixes:
        try:
            done.append(apply_fix(fix, home=home, environ=environ))
        except OSError as e:
            raise RepairError(
                f"could not {fix.description}: {e.strerror or e}",
                "make that change by hand, then run dot validate again",
            ) from e
    return done


class RepairError(DotError):
    """An automatic repair failed half-way (the repairs before it were made)."""
