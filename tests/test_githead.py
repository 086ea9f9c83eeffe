"""datum_dot.vcs.githead against real repositories: the files say what `git rev-parse HEAD` says."""

from __future__ import annotations

from pathlib import Path

import pytest

from datum_dot.runs.planner import working_tree_commit
from datum_dot.vcs import githead
from tests.helpers.repo import GitRepo, make_repo


@pytest.fixture
def repo(tmp_path: Path) -> GitRepo:
    """A repository with two commits on main and a project folder one level down."""
    r = make_repo(tmp_path / "repo")
    r.commit({"shop/dbt_project.yml": "name: shop\n"}, "first")
    r.commit({"shop/models/a.sql": "select 1\n"}, "second")
    return r


def test_githead_branch_loose_ref(repo: GitRepo) -> None:
    assert githead.head_commit(repo.path / "shop") == repo.head()


def test_githead_branch_packed_ref(repo: GitRepo) -> None:
    repo.git("pack-refs", "--all", "--prune")
    assert not (repo.path / ".git" / "refs" / "heads" / "main").exists()
    assert githead.head_commit(repo.path / "shop") == repo.head()


def test_githead_detached_head(repo: GitRepo) -> None:
    first = repo.git("rev-parse", "HEAD~1")
    repo.checkout(first)
    assert githead.head_commit(repo.path) == first


def test_githead_linked_worktree_has_its_own_head(repo: GitRepo, tmp_path: Path) -> None:
    first = repo.git("rev-parse", "HEAD~1")
    repo.git("worktree", "add", "-b", "old", str(tmp_path / "wt"), first)
    repo.git("pack-refs", "--all")  # the worktree's branch is then found in the shared packed-refs
    assert githead.head_commit(tmp_path / "wt" / "shop") == first
    assert githead.head_commit(repo.path / "shop") == repo.head()


def test_githead_symlinked_folder_is_resolved(repo: GitRepo, tmp_path: Path) -> None:
    link = tmp_path / "link"
    link.symlink_to(repo.path / "shop")
    assert githead.head_commit(link) == repo.head()


def test_githead_outside_a_repository_is_none(tmp_path: Path) -> None:
    (tmp_path / "plain").mkdir()
    assert githead.head_commit(tmp_path / "plain") is None


def test_githead_unborn_branch_is_unreadable_and_git_says_none(tmp_path: Path) -> None:
    r = make_repo(tmp_path / "empty")
    assert githead.head_commit(r.path) is githead.UNREADABLE
    assert working_tree_commit(r.path) is None  # asked of git: no commit yet


def test_githead_unusual_layout_falls_back_to_git(repo: GitRepo) -> None:
    head = repo.path / ".git" / "HEAD"
    head.write_text("ref: ../outside\n")  # not a ref this module follows
    assert githead.head_commit(repo.path) is githead.UNREADABLE
    head.write_text("ref: refs/heads/main\n")
    (repo.path / ".git" / "reftable").mkdir()
    assert githead.head_commit(repo.path) is githead.UNREADABLE
    assert working_tree_commit(repo.path) == repo.head()


def test_githead_gitfile_pointing_elsewhere(repo: GitRepo, tmp_path: Path) -> None:
    # A submodule's or `git init --separate-git-dir` work tree: `.git` is a file.
    moved = tmp_path / "gitdir"
    (repo.path / ".git").rename(moved)
    (repo.path / ".git").write_text(f"gitdir: {moved}\n")
    assert githead.head_commit(repo.path / "shop") == repo.head()
    (repo.path / ".git").write_text("something else\n")
    assert githead.head_commit(repo.path / "shop") is githead.UNREADABLE
