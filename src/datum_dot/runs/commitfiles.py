"""The settings files a plan reads: as they are in the commit being built, or in the checkout.

An isolated build (a spec with `@ref`) and a `--defer` baseline read `dot_environments.yml` and
`dot_vars.yml` from their commit's tree, so a pinned schedule gets the settings of its commit
and an uncommitted edit changes nothing but a working-tree run. The git-ignored
`dot_environments.user.yml` is always read from the checkout. A profiles.yml inside the
repository is read from the commit when the commit tracks it (ADR 0013).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from datum_dot.config.environments import ENVIRONMENTS_FILE, USER_ENVIRONMENTS_FILE
from datum_dot.config.profiles import PROFILES_FILE
from datum_dot.config.sources import SettingsFile, read_checkout_file
from datum_dot.config.variables import VARS_FILE
from datum_dot.runs.isolatedprofiles import CommittedProfile
from datum_dot.runs.provenance import FileSource
from datum_dot.vcs import git

PROJECT_FILE = "dbt_project.yml"
# Messages and the plan name a commit's files by this many hex digits (`git show 1a2b3c4d:...`):
# the build's own hash length is a setting in the very file being read.
LABEL_HASH_LENGTH = 8


@dataclass(frozen=True)
class ProjectFiles:
    """The project's settings files one plan (or its baseline) reads.

    Attributes:
        environments: `dot_environments.yml`, from the commit or the working tree.
        variables: `dot_vars.yml`, likewise.
        project: The commit's `dbt_project.yml` text (None: it has none, or a working tree).
        project_profile: Whether the commit tracks a profiles.yml in the project's folder
            (where dbt looks first when no `--profiles-dir` or `DBT_PROFILES_DIR` names one).
    """

    environments: SettingsFile
    variables: SettingsFile
    project: str | None = None
    project_profile: bool = False

    def sources(self, project_dir: Path) -> tuple[FileSource, ...]:
        """The plan's record of these files and of the user's override file, in the order
        they apply; a committed file missing from its commit says what that means."""
        user = read_checkout_file(project_dir, USER_ENVIRONMENTS_FILE, kind="user")
        return (
            FileSource.of(
                self.environments, _missing_note(self.environments, "no project environments")
            ),
            FileSource.of(user),
            FileSource.of(self.variables, _missing_note(self.variables, "vars are not checked")),
        )

    def warnings(self, project_dir: Path) -> tuple[str, ...]:
        """A warning for each file the checkout has and the commit being built lacks."""
        found = []
        for file, meaning in (
            (self.environments, "this build has no project environments"),
            (self.variables, "vars go unchecked in this build"),
        ):
            if file.commit is not None and not file.exists and (project_dir / file.name).is_file():
                found.append(
                    f"{file.repo_path} is not in commit {file.commit} (your checkout has one):"
                    f" {meaning}"
                )
        return tuple(found)


def _missing_note(file: SettingsFile, meaning: str) -> str:
    return meaning if file.commit is not None and not file.exists else ""


def checkout_files(project_dir: Path) -> ProjectFiles:
    """The project's settings files in the working tree (a plain run).

    Raises:
        ConfigError: A file exists but cannot be read, or is not UTF-8.
    """
    return ProjectFiles(
        environments=read_checkout_file(project_dir, ENVIRONMENTS_FILE),
        variables=read_checkout_file(project_dir, VARS_FILE),
    )


def commit_files(project_dir: Path, repo_root: Path, commit: git.Sha) -> ProjectFiles:
    """The project's settings files as they are in `commit` (text None where it has none),
    with its dbt_project.yml and whether it tracks a profiles.yml beside it: one git session.

    Raises:
        GitError: git failed.
    """
    folder = project_dir.relative_to(repo_root)
    names = (ENVIRONMENTS_FILE, VARS_FILE, PROJECT_FILE, PROFILES_FILE)
    paths = {name: (folder / name).as_posix() for name in names}
    texts = git.read_files_at(repo_root, commit, list(paths.values()))
    short = git.short_hash(commit, LABEL_HASH_LENGTH)
    files = {
        name: SettingsFile(
            name=name,
            path=project_dir / name,
            kind="commit",
            text=texts[repo_path],
            commit=short,
            repo_path=repo_path,
        )
        for name, repo_path in paths.items()
    }
    return ProjectFiles(
        environments=files[ENVIRONMENTS_FILE],
        variables=files[VARS_FILE],
        project=files[PROJECT_FILE].text,
        project_profile=files[PROFILES_FILE].exists,
    )


@dataclass(frozen=True)
class ProfileSource:
    """Where an isolated build reads its profiles.yml.

    Attributes:
        committed: The file in the commit, or None to read `path` on disk.
        file: The plan's record of it.
    """

    committed: CommittedProfile | None
    file: FileSource


def profile_source(
    profiles_file: Path, repo_root: Path, commit: git.Sha, *, tracked: str | None = None
) -> ProfileSource:
    """Read the profile from the commit when it tracks the file found, else from the disk.

    Args:
        profiles_file: The profiles.yml found the way dbt finds it.
        repo_root: The repository's top folder.
        commit: The commit being built.
        tracked: A path (from the repository's top) already known to be in the commit.

    Raises:
        GitError: git failed.
    """
    short = git.short_hash(commit, LABEL_HASH_LENGTH)
    resolved = profiles_file.resolve()
    if not resolved.is_relative_to(repo_root):
        note = "outside the repository, read as it is now"
        return ProfileSource(
            None, FileSource(PROFILES_FILE, "file", True, str(profiles_file), note=note)
        )
    repo_path = resolved.relative_to(repo_root).as_posix()
    if repo_path == tracked or git.path_in_commit(repo_root, commit, repo_path):
        committed = CommittedProfile(repo_root, commit, short, repo_path)
        return ProfileSource(committed, FileSource(PROFILES_FILE, "commit", True, repo_path, short))
    note = f"not in commit {short}: read from your checkout"
    return ProfileSource(
        None, FileSource(PROFILES_FILE, "working-tree", True, str(profiles_file), note=note)
    )
