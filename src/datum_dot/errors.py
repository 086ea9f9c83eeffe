"""One exception hierarchy for the whole product.

Every error the product raises on purpose is a :class:`DotError`: it carries a message saying what
went wrong (and on which input), a hint saying what to do, and the exit code the CLI ends with.
The exit codes are the public contract documented in the README.
"""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    """Process exit codes shared by every command."""

    OK = 0
    WARNINGS = 10
    DIFF_FOUND = 11
    BAD_INPUT = 20
    RUNTIME_FAILURE = 30
    TIMEOUT = 40
    CANCELLED = 50


class DotError(Exception):
    """Base of every error the product raises on purpose.

    Attributes:
        message: What failed, naming the input that made it fail.
        hint: What to do about it; a runnable command where one exists.
        exit_code: The process exit code the CLI ends with.
    """

    exit_code: ExitCode = ExitCode.RUNTIME_FAILURE

    def __init__(self, message: str, hint: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return self.message


class BadInputError(DotError):
    """The user's input or configuration is wrong; nothing was run."""

    exit_code = ExitCode.BAD_INPUT


class UsageError(BadInputError):
    """The command line itself is wrong (unknown command, bad option value)."""


class SpecError(BadInputError):
    """A `[env][@ref]` spec or a `--defer` spec is malformed."""


class ConfigError(BadInputError):
    """A dot configuration file is missing a piece, malformed or inconsistent."""


class VarsError(BadInputError):
    """Variables failed validation against `dot_vars.yml`."""


class ProjectNotFoundError(BadInputError):
    """No dbt project (dbt_project.yml) where one was expected."""


class ProfileError(BadInputError):
    """profiles.yml is missing, malformed, or lacks the profile or target."""


class ProfilesNotFoundError(ProfileError):
    """No profiles.yml where dbt would look (or where we were told to look)."""


class RefNotFoundError(BadInputError):
    """A git ref did not resolve to a commit."""


class BaselineError(BadInputError):
    """A `--defer` baseline has not been built."""


class IsolationError(BadInputError):
    """An isolated build would write outside its isolated schema."""


class OwnershipError(BadInputError):
    """A path under `.dot/` is not one dot made (a link, a file, a tracked `.dot`).

    dot will not write, check out, clean or delete through it.
    """


class GitError(DotError):
    """A git operation failed."""

    exit_code = ExitCode.RUNTIME_FAILURE


class WorktreeError(GitError):
    """A build worktree could not be created, verified or repaired."""


class NotARepositoryError(GitError, BadInputError):
    """A command that needs a git repository was run outside one (bad input, not a git failure)."""

    exit_code = ExitCode.BAD_INPUT


class LockTimeoutError(DotError):
    """Another process held a build lock for longer than we were willing to wait."""

    exit_code = ExitCode.TIMEOUT


class DbtError(DotError):
    """dbt ran and failed, or could not be started."""

    exit_code = ExitCode.RUNTIME_FAILURE


class RunTimeoutError(DotError):
    """A run exceeded its timeout and was stopped."""

    exit_code = ExitCode.TIMEOUT


class CancelledError(DotError):
    """A run was cancelled (Ctrl-C, SIGTERM)."""

    exit_code = ExitCode.CANCELLED


class DatumHomeError(BadInputError):
    """`$DATUM_HOME`, or a file the tool keeps in it, cannot be created or written."""


class PreflightError(BadInputError):
    """A run's pre-flight check failed (a config file, the environment, profiles.yml, a key)."""


class CrontabError(DotError):
    """The crontab could not be read or written (`crontab -l` / `crontab FILE`, or `DOT_CRONTAB`)."""

    exit_code = ExitCode.RUNTIME_FAILURE


class ScheduleError(BadInputError):
    """A schedule cannot be added or changed as asked (bad cron, unknown name, unusable crontab)."""


class HistoryError(BadInputError):
    """The run history cannot serve the request.

    An unknown, ambiguous or malformed run id, or a history file that is corrupted or not
    datum-dot's.
    """


class CleanupError(DotError):
    """`dot clean` could not remove a build (a schema drop or git failed); the build was kept."""

    exit_code = ExitCode.RUNTIME_FAILURE
