"""The results of pre-flight checks: one `Check` per question, each failure with its fix."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

from datum_dot.errors import ExitCode


class Status(StrEnum):
    """How a check came out; `SKIP` when it could not or need not run."""

    OK = "ok"
    WARN = "warn"
    FAIL = "fail"
    SKIP = "skip"


class FixKind(StrEnum):
    """The repairs `dot validate --auto-fix` may make: none edits profiles.yml or dbt_project.yml."""

    CHMOD_PRIVATE = "chmod-600"
    IGNORE_DOT_DIR = "gitignore-dot"
    CREATE_KEY = "create-key"
    CREATE_TOKEN = "create-token"  # noqa: S105 - a name, not a secret
    REMOVE_CRON_LINES = "remove-cron-lines"


@dataclass(frozen=True)
class AutoFix:
    """A safe repair, described before it is made.

    Attributes:
        kind: What kind of repair.
        description: What it will do, in words (`chmod 600 /home/me/.datum/keys/shop.pem`).
        paths: The files it changes.
        project_id: The project it concerns, where one does.
        lines: The crontab lines it removes.
    """

    kind: FixKind
    description: str
    paths: tuple[Path, ...] = ()
    project_id: str | None = None
    lines: tuple[str, ...] = ()


@dataclass(frozen=True)
class Check:
    """The answer to one pre-flight question.

    Attributes:
        name: What was checked (`profiles.yml`, `key`).
        status: How it came out.
        detail: What was found.
        fix: What to do when it is not OK; a runnable command where there is one.
        auto_fixes: The safe repairs `--auto-fix` makes, if any.
    """

    name: str
    status: Status
    detail: str
    fix: str = ""
    auto_fixes: tuple[AutoFix, ...] = ()

    def to_json(self) -> dict[str, Any]:
        """The check as plain data."""
        return {
            "name": self.name,
            "status": self.status.value,
            "detail": self.detail,
            "fix": self.fix or None,
            "auto_fixes": [fix.description for fix in self.auto_fixes],
        }


@dataclass(frozen=True)
class Report:
    """Every check of one validation, in order."""

    project_dir: Path
    checks: tuple[Check, ...] = field(default_factory=tuple)

    @property
    def exit_code(self) -> ExitCode:
        """20 with a failure, 10 with warnings only, 0 when every check passed."""
        statuses = {check.status for check in self.checks}
        if Status.FAIL in statuses:
            return ExitCode.BAD_INPUT
        if Status.WARN in statuses:
            return ExitCode.WARNINGS
        return ExitCode.OK

    @property
    def auto_fixes(self) -> list[AutoFix]:
        """The repairs `--auto-fix` would make, in check order."""
        return [fix for c in self.checks if c.status in _FIXABLE for fix in c.auto_fixes]

    def to_json(self) -> dict[str, Any]:
        """The report as plain data (what `dot validate --json` prints)."""
        return {
            "project_dir": str(self.project_dir),
            "exit_code": int(self.exit_code),
            "checks": [check.to_json() for check in self.checks],
        }


_FIXABLE = frozenset({Status.FAIL, Status.WARN})
