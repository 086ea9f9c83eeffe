"""The start-up suggestions: ignore `.dot/` in git, and exclude it from VS Code's watchers.

This module decides which suggestions apply and applies them; asking is the CLI's job. A
declined suggestion is remembered per project in `$DATUM_HOME/prompts.json`.

Only what is useful is offered. Every isolated build writes `.dot/.gitignore` (`*`), so git
ignores `.dot/` without the user's `.gitignore`: that edit is offered only when `.dot/` is
there and git still sees its contents (its `.gitignore` was changed, or a rule un-ignores it).
The VS Code settings are offered only in a repository that has a `.vscode/` folder.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from datum_dot.home.privatefiles import make_private_dirs, write_private
from datum_dot.home.settings import datum_home
from datum_dot.vcs import git

GITIGNORE = "gitignore"
VSCODE = "vscode"
VSCODE_SETTINGS = {
    "search.exclude": {"**/.dot": True, "**/.dot/**": True},
    "files.watcherExclude": {"**/.dot/**": True},
}


@dataclass(frozen=True)
class Suggestion:
    """One start-up suggestion.

    Attributes:
        key: `gitignore` or `vscode`.
        question: What to ask.
        why: Why it matters.
        path: The file that would change.
    """

    key: str
    question: str
    why: str
    path: Path


def pending(project_dir: Path) -> tuple[list[Suggestion], list[str]]:
    """The suggestions that apply and were not declined, and warnings found on the way.

    Returns:
        The suggestions, and warnings (a `.vscode/settings.json` that is not valid JSON).
    """
    repo_root = git.find_repo_root(project_dir)
    declined = _declined().get(str(project_dir), [])
    out: list[Suggestion] = []
    warnings: list[str] = []
    if repo_root is None:
        return out, warnings
    if GITIGNORE not in declined and _dot_dir_seen_by_git(repo_root, project_dir):
        out.append(
            Suggestion(
                GITIGNORE,
                f"Add .dot/ to {project_dir / '.gitignore'}?",
                ".dot/ holds build worktrees and profiles; it must never be committed",
                project_dir / ".gitignore",
            )
        )
    settings = repo_root / ".vscode" / "settings.json"
    if VSCODE not in declined and settings.parent.is_dir():
        state = _vscode_state(settings)
        if state == "invalid":
            warnings.append(
                f"{settings} is not valid JSON; left alone (add the .dot exclusions by hand:"
                ' "search.exclude" and "files.watcherExclude" with "**/.dot/**": true)'
            )
        elif state == "missing":
            out.append(
                Suggestion(
                    VSCODE,
                    f"Exclude .dot/ from VS Code search and file watching in {settings}?",
                    "watchers hold file handles under .dot/ that can break `dbt deps`",
                    settings,
                )
            )
    return out, warnings


def apply(suggestion: Suggestion) -> None:
    """Make the change a suggestion describes.

    Raises:
        ConfigError: `.vscode/settings.json` turned invalid in the meantime.
    """
    if suggestion.key == GITIGNORE:
        path = suggestion.path
        text = path.read_text() if path.is_file() else ""
        prefix = "" if not text or text.endswith("\n") else "\n"
        path.write_text(f"{text}{prefix}.dot/\n")
        return
    path = suggestion.path
    data = json.loads(path.read_text()) if path.is_file() else {}
    for section, entries in VSCODE_SETTINGS.items():
        current = data.get(section)
        data[section] = {**(current if isinstance(current, dict) else {}), **entries}
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=2) + "\n")
    tmp.replace(path)


def decline(project_dir: Path, key: str) -> None:
    """Remember that the user declined a suggestion for this project."""
    data = _declined()
    keys = set(data.get(str(project_dir), []))
    keys.add(key)
    data[str(project_dir)] = sorted(keys)
    path = datum_home() / "prompts.json"
    make_private_dirs(path.parent)
    write_private(path, (json.dumps(data, indent=2, sort_keys=True) + "\n").encode())


def _declined() -> dict[str, list[str]]:
    path = datum_home() / "prompts.json"
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _dot_dir_seen_by_git(repo_root: Path, project_dir: Path) -> bool:
    """Whether git would see files under `.dot/` once dot has written its own `.gitignore` there."""
    if not (project_dir / ".dot" / ".gitignore").is_file():
        return False  # the build writes it (`*`) before anything else goes in
    return not git.is_ignored(repo_root, project_dir / ".dot" / "build")


def _vscode_state(path: Path) -> str:
    if not path.is_file():
        return "missing"
    try:
        data = json.loads(path.read_text())
    except ValueError:
        return "invalid"
    if not isinstance(data, dict):
        return "invalid"
    for section, entries in VSCODE_SETTINGS.items():
        current = data.get(section)
        if not isinstance(current, dict) or any(current.get(k) is not True for k in entries):
            return "missing"
    return "present"
