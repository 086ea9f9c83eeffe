"""Submodules in build worktrees: a dbt package kept in a git submodule, as users keep them.

The package's repository is a local folder, so git's file transport must be allowed (it is off
by default for submodules); the tests allow it through the environment, as a user's global config
would, and the product itself never turns it on.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from datum_dot.errors import WorktreeError
from datum_dot.vcs import git, worktrees
from datum_dot.vcs.git import Sha
from tests.helpers.example import EXAMPLE, ExampleProject
from tests.helpers.repo import GitRepo, make_repo

PACKAGE = "packages/dot_utils"


@pytest.fixture
def allow_file_submodules(monkeypatch: pytest.MonkeyPatch) -> None:
    """Let git clone submodules from local paths (`protocol.file.allow=always`)."""
    monkeypatch.setenv("GIT_CONFIG_COUNT", "1")
    monkeypatch.setenv("GIT_CONFIG_KEY_0", "protocol.file.allow")
    monkeypatch.setenv("GIT_CONFIG_VALUE_0", "always")


def make_package(path: Path) -> GitRepo:
    """The example's dbt package (`dot_utils`) in a repository of its own."""
    package = make_repo(path)
    shutil.copytree(EXAMPLE / PACKAGE, package.path, dirs_exist_ok=True)
    package.commit({}, "dot_utils")
    return package


def add_submodule(repo: GitRepo, package: GitRepo) -> str:
    """Record `package` at `PACKAGE` in `repo` as a submodule; returns the new commit."""
    shutil.rmtree(repo.path / PACKAGE, ignore_errors=True)
    repo.git("rm", "-r", "--cached", "--quiet", "--ignore-unmatch", PACKAGE)
    repo.git(
        "-c",
        "protocol.file.allow=always",
        "submodule",
        "add",
        "--quiet",
        str(package.path),
        PACKAGE,
    )
    return repo.commit({}, "dot_utils as a submodule")


def worktree_at(repo: GitRepo, sha: str) -> Path:
    """A build worktree of `sha`, as dot makes one."""
    path = repo.path / ".dot" / "build" / sha[:8] / "worktree"
    worktrees.ensure_worktree(repo.path, path, Sha(sha))
    return path


@pytest.mark.usefixtures("allow_file_submodules")
def test_update_submodules_checks_out_the_recorded_commit(tmp_path: Path) -> None:
    package = make_package(tmp_path / "dot_utils")
    recorded = package.head()
    repo = make_repo(tmp_path / "project")
    repo.commit({".gitignore": ".dot/\n", "dbt_project.yml": "name: shop\n"}, "project")
    sha = add_submodule(repo, package)
    package.commit({"dbt_project.yml": "name: moved_on\n"}, "a later commit")
    config = (repo.path / ".git" / "config").read_text()
    path = worktree_at(repo, sha)
    assert not (path / PACKAGE / "dbt_project.yml").exists()  # what dbt deps then trips on

    git.update_submodules(path)
    assert "name: dot_utils\n" in (path / PACKAGE / "dbt_project.yml").read_text()
    assert GitRepo(path / PACKAGE).head() == recorded
    # The user's repository config is left as it was (no `submodule init` in it).
    assert (repo.path / ".git" / "config").read_text() == config
    # A reused worktree is brought to the same state again.
    assert worktrees.ensure_worktree(repo.path, path, Sha(sha)) is worktrees.WorktreeStatus.REUSED
    git.update_submodules(path)
    assert GitRepo(path / PACKAGE).head() == recorded


def test_update_submodules_without_gitmodules_changes_nothing(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "project")
    sha = repo.commit({".gitignore": ".dot/\n", "dbt_project.yml": "name: shop\n"}, "project")
    path = worktree_at(repo, sha)
    git.update_submodules(path)
    assert sorted(p.name for p in path.iterdir()) == [".git", ".gitignore", "dbt_project.yml"]


def test_update_submodules_that_cannot_be_fetched_names_the_submodule(tmp_path: Path) -> None:
    package = make_package(tmp_path / "dot_utils")
    repo = make_repo(tmp_path / "project")
    repo.commit({".gitignore": ".dot/\n"}, "project")
    sha = add_submodule(repo, package)
    path = worktree_at(repo, sha)
    # Local-path submodules are refused by git's default config (no allow_file_submodules here).
    with pytest.raises(WorktreeError, match=f"submodule '{PACKAGE}'.*transport 'file'") as info:
        git.update_submodules(path)
    assert "protocol.file.allow" in info.value.hint
    shutil.rmtree(package.path)
    with pytest.raises(WorktreeError, match=f"submodule '{PACKAGE}'") as info:
        git.update_submodules(path)
    assert f"git submodule update --init --recursive -- {PACKAGE}" in info.value.hint


@pytest.mark.usefixtures("allow_file_submodules")
def test_isolated_build_of_a_project_whose_package_is_a_submodule(
    example: ExampleProject, tmp_path: Path
) -> None:
    package = make_package(tmp_path / "dot_utils")
    add_submodule(example.repo, package)
    result = example.dot("build", "prod@main")
    assert result.returncode == 0, result.stdout + result.stderr
    # stg_payments calls the package's cents_to_dollars macro: the build needed the package.
    assert f"analytics_{example.repo.head()[:8]}" in example.schemas()
