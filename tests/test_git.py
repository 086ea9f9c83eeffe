"""datum_dot.vcs.git and datum_dot.vcs.worktrees against real repositories (tests/helpers/repo.py)."""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import warnings
from pathlib import Path

import pytest

from datum_dot.errors import (
    ExitCode,
    GitError,
    NotARepositoryError,
    OwnershipError,
    RefNotFoundError,
    SpecError,
    WorktreeError,
)
from datum_dot.vcs import git, worktrees
from datum_dot.vcs.git import Sha
from datum_dot.vcs.worktrees import WorktreeStatus
from tests.helpers.repo import GitRepo, make_repo

PROJECT = {"dbt_project.yml": "name: shop\nprofile: shop\n", "models/a.sql": "select 1\n"}


@pytest.fixture
def repo(tmp_path: Path) -> GitRepo:
    """A repository with two commits on main; `.dot/` is ignored by its own `.gitignore`."""
    r = make_repo(tmp_path / "project")
    r.commit({**PROJECT, ".gitignore": "target/\nlogs/\n"}, "first")
    r.commit({"models/b.sql": "select 2\n"}, "second")
    return r


def _sha(repo: GitRepo, ref: str) -> Sha:
    return git.resolve_commit(repo.path, ref)


def _build_dir(repo: GitRepo, sha: str) -> Path:
    dot = repo.path / ".dot"
    dot.mkdir(exist_ok=True)
    (dot / ".gitignore").write_text("*\n")
    return dot / "build" / sha[:8] / "worktree"


def _user_state(repo: GitRepo) -> tuple[bytes, bytes, str]:
    git_dir = repo.path / ".git"
    return (git_dir / "HEAD").read_bytes(), (git_dir / "index").read_bytes(), repo.head()


# --- find_repo_root -------------------------------------------------------------------------


def test_find_repo_root_from_subfolder_and_missing_path(repo: GitRepo) -> None:
    assert git.find_repo_root(repo.path / "models") == repo.path
    assert git.find_repo_root(repo.path / "models" / "a.sql") == repo.path
    assert git.find_repo_root(repo.path / "not" / "yet") == repo.path


def test_find_repo_root_outside_repo_is_none(tmp_path: Path) -> None:
    (tmp_path / "plain").mkdir()
    assert git.find_repo_root(tmp_path / "plain") is None


def test_find_repo_root_takes_a_dollar_home_folder_literally(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GitPython expands `$HOME` in a path unless told not to; this folder is named `$HOME`.
    literal = make_repo(tmp_path / "$HOME" / "project")
    literal.commit(PROJECT, "first")
    # Where an expanded path does not exist, GitPython runs git in the current folder instead.
    decoy = make_repo(tmp_path / "decoy")
    decoy.commit({"decoy.txt": "not this one\n"}, "decoy")
    monkeypatch.chdir(decoy.path)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # GitPython warns before it expands
        assert git.find_repo_root(literal.path / "models") == literal.path
        assert git.resolve_commit(literal.path, "HEAD") == literal.head()


def test_outside_a_repository_is_bad_input(tmp_path: Path) -> None:
    with pytest.raises(NotARepositoryError) as info:
        git.resolve_commit(tmp_path, "HEAD")
    assert info.value.exit_code == ExitCode.BAD_INPUT
    assert isinstance(info.value, GitError)  # callers that catch git's failures still do
    assert "git init" in info.value.hint


# --- resolve_commit -------------------------------------------------------------------------


def test_resolve_commit_branch_head_and_hashes(repo: GitRepo) -> None:
    head = repo.head()
    assert _sha(repo, "main") == head
    assert _sha(repo, "HEAD") == head
    assert _sha(repo, head) == head
    assert _sha(repo, head[:7]) == head
    assert _sha(repo, "HEAD~1") == repo.git("rev-parse", "HEAD~1")


def test_resolve_commit_lightweight_and_annotated_tags(repo: GitRepo) -> None:
    first = repo.git("rev-parse", "HEAD~1")
    repo.tag("v1", ref="HEAD~1")
    repo.tag("v2", annotated=True)
    tag_object = repo.git("rev-parse", "v2")
    assert _sha(repo, "v1") == first
    assert _sha(repo, "v2") == repo.head()
    assert tag_object != repo.head()
    assert _sha(repo, "v2^{}") == repo.head()


def test_resolve_commit_reflog_previous_branch_and_upstream(repo: GitRepo) -> None:
    first = repo.git("rev-parse", "HEAD~1")
    assert _sha(repo, "HEAD@{1}") == first
    repo.branch("old", "HEAD~1")
    repo.checkout("old")
    repo.checkout("main")
    assert _sha(repo, "@{-1}") == first
    repo.git("branch", "--set-upstream-to=old", "main")
    assert _sha(repo, "main@{upstream}") == first


def test_resolve_commit_unknown_ref(repo: GitRepo) -> None:
    with pytest.raises(RefNotFoundError) as info:
        git.resolve_commit(repo.path, "mian")
    assert info.value.message == "commit not found: git ref 'mian' did not resolve to a commit"
    assert "git show mian" in info.value.hint
    assert "git fetch" in info.value.hint


@pytest.mark.parametrize("ref", ["HEAD^{tree}", "HEAD:models/a.sql", "HEAD~99", "HEAD@{99}"])
def test_resolve_commit_non_commit_names_are_not_found(repo: GitRepo, ref: str) -> None:
    with pytest.raises(RefNotFoundError):
        git.resolve_commit(repo.path, ref)


def test_resolve_commit_search_syntax_works(repo: GitRepo) -> None:
    assert _sha(repo, "HEAD^{/first}") == repo.git("rev-parse", "HEAD~1")


@pytest.mark.parametrize("ref", ["-x", "--output=/tmp/pwned", "main\nHEAD"])
def test_resolve_commit_refuses_option_like_and_control_refs(repo: GitRepo, ref: str) -> None:
    with pytest.raises(SpecError):
        git.resolve_commit(repo.path, ref)


def test_resolve_commit_in_empty_repo(tmp_path: Path) -> None:
    empty = make_repo(tmp_path / "empty")
    with pytest.raises(RefNotFoundError):
        git.resolve_commit(empty.path, "HEAD")


def test_resolve_commit_outside_repo_is_git_error(tmp_path: Path) -> None:
    with pytest.raises(GitError) as info:
        git.resolve_commit(tmp_path, "HEAD")
    assert str(tmp_path) in info.value.message
    assert info.value.hint


def test_resolve_commit_ignores_inherited_git_dir(
    repo: GitRepo, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    other = make_repo(tmp_path / "other")
    other.commit({"x": "1"}, "other")
    index_before = (other.path / ".git" / "index").read_bytes()
    head = repo.head()
    path = _build_dir(repo, head)
    monkeypatch.setenv("GIT_DIR", str(other.path / ".git"))
    monkeypatch.setenv("GIT_WORK_TREE", str(other.path))
    monkeypatch.setenv("GIT_INDEX_FILE", str(other.path / ".git" / "index"))
    sha = git.resolve_commit(repo.path, "HEAD")
    assert sha == head
    assert git.find_repo_root(repo.path / "models") == repo.path
    assert worktrees.ensure_worktree(repo.path, path, sha) is WorktreeStatus.CREATED
    assert worktrees.ensure_worktree(repo.path, path, sha) is WorktreeStatus.REUSED
    # Lifted only for the duration of each call.
    assert os.environ["GIT_DIR"] == str(other.path / ".git")
    monkeypatch.delenv("GIT_DIR")
    monkeypatch.delenv("GIT_WORK_TREE")
    monkeypatch.delenv("GIT_INDEX_FILE")
    assert (other.path / ".git" / "index").read_bytes() == index_before
    assert other.git("worktree", "list", "--porcelain").count("worktree ") == 1
    assert str(path) in repo.git("worktree", "list")


# --- short_hash, has_commit, path_in_commit, refs_pointing_at ------------------------------


def test_short_hash_is_fixed_length(repo: GitRepo) -> None:
    sha = repo.head()
    assert git.short_hash(Sha(sha)) == sha[:8]
    assert git.short_hash(Sha(sha), 4) == sha[:4]
    assert git.short_hash(Sha(sha), 40) == sha
    for bad in (3, 41):
        with pytest.raises(ValueError, match="between 4 and 40"):
            git.short_hash(Sha(sha), bad)


def test_has_commit(repo: GitRepo) -> None:
    assert git.has_commit(repo.path, Sha(repo.head()))
    assert not git.has_commit(repo.path, Sha("0" * 40))
    tree = repo.git("rev-parse", "HEAD^{tree}")
    assert not git.has_commit(repo.path, Sha(tree))


def test_path_in_commit(repo: GitRepo) -> None:
    first, second = Sha(repo.git("rev-parse", "HEAD~1")), Sha(repo.head())
    assert git.path_in_commit(repo.path, first, "dbt_project.yml")
    assert git.path_in_commit(repo.path, first, "./models/a.sql")
    assert not git.path_in_commit(repo.path, first, "models/b.sql")
    assert git.path_in_commit(repo.path, second, "models/b.sql")
    assert not git.path_in_commit(repo.path, second, "models")
    with pytest.raises(ValueError, match="inside the repository"):
        git.path_in_commit(repo.path, second, "../outside.yml")


def test_read_file_at(repo: GitRepo) -> None:
    first = Sha(repo.git("rev-parse", "HEAD~1"))
    (repo.path / "dbt_project.yml").write_text("changed in the work tree\n")
    assert git.read_file_at(repo.path, first, "dbt_project.yml") == PROJECT["dbt_project.yml"]
    assert git.read_file_at(repo.path, first, "models/b.sql") is None
    assert git.read_file_at(repo.path, first, "models") is None


def test_refs_pointing_at(repo: GitRepo) -> None:
    head = Sha(repo.head())
    repo.branch("release")
    repo.tag("v1", annotated=True)
    repo.tag("light")
    repo.tag("older", ref="HEAD~1")
    assert git.refs_pointing_at(repo.path, head) == ["main", "release", "light", "v1"]
    assert git.refs_pointing_at(repo.path, Sha(repo.git("rev-parse", "HEAD~1"))) == ["older"]


# --- is_ignored -----------------------------------------------------------------------------


def test_is_ignored_dot_folder(repo: GitRepo) -> None:
    (repo.path / ".gitignore").write_text(".dot/\n")
    assert git.is_ignored(repo.path, repo.path / ".dot")
    (repo.path / ".dot").mkdir()
    assert git.is_ignored(repo.path, Path(".dot"))
    assert git.is_ignored(repo.path, repo.path / ".dot" / "build")


def test_is_ignored_dotenv_line_does_not_ignore_dot(repo: GitRepo) -> None:
    (repo.path / ".gitignore").write_text(".dotenv\n")
    assert not git.is_ignored(repo.path, repo.path / ".dot")
    (repo.path / ".dot").mkdir()
    assert not git.is_ignored(repo.path, repo.path / ".dot")
    assert git.is_ignored(repo.path, repo.path / ".dotenv")


def test_is_ignored_by_dot_folders_own_gitignore(repo: GitRepo) -> None:
    (repo.path / ".dot").mkdir()
    (repo.path / ".dot" / ".gitignore").write_text("*\n")
    assert git.is_ignored(repo.path, repo.path / ".dot" / "build")
    assert not git.is_ignored(repo.path, repo.path / "models" / "a.sql")


def test_is_ignored_tracked_file_is_not_ignored(repo: GitRepo) -> None:
    (repo.path / ".gitignore").write_text("models/\n")
    assert not git.is_ignored(repo.path, repo.path / "models" / "a.sql")
    assert git.is_ignored(repo.path, repo.path / "models" / "untracked.sql")


def test_is_ignored_outside_work_tree_is_false(repo: GitRepo, tmp_path: Path) -> None:
    assert not git.is_ignored(repo.path, tmp_path / "elsewhere")


# --- worktrees ------------------------------------------------------------------------------


def test_ensure_worktree_created_then_reused(repo: GitRepo) -> None:
    sha = Sha(repo.head())
    path = _build_dir(repo, sha)
    assert worktrees.ensure_worktree(repo.path, path, sha) is WorktreeStatus.CREATED
    assert (path / "models" / "b.sql").read_text() == "select 2\n"
    assert repo.git("rev-parse", "HEAD", cwd=path) == sha
    inode = path.stat().st_ino
    # dbt output in ignored folders is not a change.
    (path / "target").mkdir()
    (path / "target" / "partial_parse.msgpack").write_bytes(b"cache")
    assert worktrees.ensure_worktree(repo.path, path, sha) is WorktreeStatus.REUSED
    assert path.stat().st_ino == inode
    assert (path / "target" / "partial_parse.msgpack").exists()


def test_ensure_worktree_is_detached_and_locks_no_branch(repo: GitRepo) -> None:
    sha = Sha(repo.head())
    path = _build_dir(repo, sha)
    worktrees.ensure_worktree(repo.path, path, sha)
    porcelain = repo.git("worktree", "list", "--porcelain")
    record = porcelain.split("\n\n")[1]
    assert f"worktree {path}" in record
    assert "detached" in record
    assert "branch " not in record


def test_ensure_worktree_repairs_deleted_folder(repo: GitRepo) -> None:
    sha = Sha(repo.head())
    path = _build_dir(repo, sha)
    worktrees.ensure_worktree(repo.path, path, sha)
    shutil.rmtree(path)
    assert worktrees.ensure_worktree(repo.path, path, sha) is WorktreeStatus.REPAIRED
    assert (path / "models" / "a.sql").exists()


def test_ensure_worktree_refuses_a_folder_git_forgot(repo: GitRepo) -> None:
    sha = Sha(repo.head())
    path = _build_dir(repo, sha)
    worktrees.ensure_worktree(repo.path, path, sha)
    repo.git("worktree", "prune")  # keeps the folder: git still finds it there
    (repo.path / ".git" / "worktrees" / "worktree" / "gitdir").unlink()
    repo.git("worktree", "prune")  # now git has forgotten it; the folder is a stray
    assert path.exists()
    assert str(path) not in repo.git("worktree", "list")
    # git no longer vouches for the folder, so dot leaves it and says how to remove it.
    with pytest.raises(OwnershipError, match="not registered by git") as info:
        worktrees.ensure_worktree(repo.path, path, sha)
    assert info.value.exit_code == ExitCode.BAD_INPUT
    assert (path / "models" / "a.sql").exists()
    removal = info.value.hint.rsplit(": ", 1)[1]
    assert removal == f"rm -rf {path}"
    subprocess.run(shlex.split(removal), check=True)
    assert worktrees.ensure_worktree(repo.path, path, sha) is WorktreeStatus.CREATED
    assert str(path) in repo.git("worktree", "list")
    assert worktrees.ensure_worktree(repo.path, path, sha) is WorktreeStatus.REUSED


def test_ensure_worktree_repairs_modified_file_and_keeps_target(repo: GitRepo) -> None:
    sha = Sha(repo.head())
    path = _build_dir(repo, sha)
    worktrees.ensure_worktree(repo.path, path, sha)
    (path / "target").mkdir()
    (path / "target" / "partial_parse.msgpack").write_bytes(b"cache")
    (path / "models" / "a.sql").write_text("select 'edited'\n")
    (path / "models" / "stray.sql").write_text("select 3\n")
    inode = path.stat().st_ino
    assert worktrees.ensure_worktree(repo.path, path, sha) is WorktreeStatus.REPAIRED
    assert (path / "models" / "a.sql").read_text() == "select 1\n"
    assert not (path / "models" / "stray.sql").exists()
    assert (path / "target" / "partial_parse.msgpack").read_bytes() == b"cache"
    assert path.stat().st_ino == inode


def test_ensure_worktree_repairs_wrong_commit(repo: GitRepo) -> None:
    sha = Sha(repo.head())
    path = _build_dir(repo, sha)
    worktrees.ensure_worktree(repo.path, path, sha)
    repo.git("checkout", "--quiet", "--detach", "HEAD~1", cwd=path)
    assert not (path / "models" / "b.sql").exists()
    assert worktrees.ensure_worktree(repo.path, path, sha) is WorktreeStatus.REPAIRED
    assert repo.git("rev-parse", "HEAD", cwd=path) == sha
    assert (path / "models" / "b.sql").exists()


def test_ensure_worktree_repairs_branch_checked_out_there(repo: GitRepo) -> None:
    sha = Sha(repo.head())
    path = _build_dir(repo, sha)
    worktrees.ensure_worktree(repo.path, path, sha)
    repo.git("checkout", "--quiet", "-b", "scratch", cwd=path)
    assert worktrees.ensure_worktree(repo.path, path, sha) is WorktreeStatus.REPAIRED
    assert repo.git("rev-parse", "scratch") == sha


def test_ensure_worktree_leaves_user_tree_index_and_head_alone(repo: GitRepo) -> None:
    (repo.path / "models" / "a.sql").write_text("select 'uncommitted'\n")
    (repo.path / "models" / "new.sql").write_text("select 4\n")
    repo.git("add", "models/new.sql")
    status_before = repo.git("status", "--porcelain")
    head_bytes, index_bytes, head = _user_state(repo)
    first = Sha(repo.git("rev-parse", "HEAD~1"))
    second = Sha(head)

    for sha in (first, second):
        path = _build_dir(repo, sha)
        worktrees.ensure_worktree(repo.path, path, sha)
        worktrees.ensure_worktree(repo.path, path, sha)
        (path / "models" / "a.sql").write_text("dirty\n")
        worktrees.ensure_worktree(repo.path, path, sha)
        shutil.rmtree(path)
        worktrees.ensure_worktree(repo.path, path, sha)
    worktrees.remove_worktree(repo.path, _build_dir(repo, first))

    assert _user_state(repo) == (head_bytes, index_bytes, head)
    assert repo.git("status", "--porcelain") == status_before
    assert ".dot" not in status_before


def test_worktree_inside_project_keeps_user_status_clean(repo: GitRepo) -> None:
    assert repo.git("status", "--porcelain", "--untracked-files=all") == ""
    sha = Sha(repo.head())
    worktrees.ensure_worktree(repo.path, _build_dir(repo, sha), sha)
    assert repo.git("status", "--porcelain", "--untracked-files=all") == ""


def test_ensure_worktree_replaces_empty_unregistered_folder(repo: GitRepo) -> None:
    sha = Sha(repo.head())
    path = _build_dir(repo, sha)
    path.mkdir(parents=True)
    assert worktrees.ensure_worktree(repo.path, path, sha) is WorktreeStatus.REPAIRED
    assert (path / "dbt_project.yml").exists()


def test_ensure_worktree_repairs_worktree_whose_git_file_was_deleted(repo: GitRepo) -> None:
    sha = Sha(repo.head())
    path = _build_dir(repo, sha)
    worktrees.ensure_worktree(repo.path, path, sha)
    (path / ".git").unlink()
    assert worktrees.ensure_worktree(repo.path, path, sha) is WorktreeStatus.REPAIRED
    assert worktrees.ensure_worktree(repo.path, path, sha) is WorktreeStatus.REUSED


def test_ensure_worktree_refuses_nested_repository(repo: GitRepo) -> None:
    sha = Sha(repo.head())
    path = _build_dir(repo, sha)
    nested = make_repo(path)
    with pytest.raises(OwnershipError, match="will not check out, clean or delete"):
        worktrees.ensure_worktree(repo.path, path, sha)
    assert (nested.path / ".git").is_dir()


def test_ensure_worktree_refuses_unknown_folder_with_content(repo: GitRepo, tmp_path: Path) -> None:
    sha = Sha(repo.head())
    path = tmp_path / "precious"
    path.mkdir()
    (path / "notes.txt").write_text("mine")
    with pytest.raises(OwnershipError, match="will not check out, clean or delete"):
        worktrees.ensure_worktree(repo.path, path, sha)
    assert (path / "notes.txt").read_text() == "mine"


def test_ensure_worktree_refuses_the_main_work_tree(repo: GitRepo) -> None:
    with pytest.raises(OwnershipError, match="not registered"):
        worktrees.ensure_worktree(repo.path, repo.path, Sha(repo.head()))
    with pytest.raises(OwnershipError, match="holds another working tree"):
        worktrees.ensure_worktree(repo.path, repo.path.parent, Sha(repo.head()))


def test_ensure_worktree_unknown_commit_cleans_up(repo: GitRepo) -> None:
    missing = Sha("1" * 40)
    path = _build_dir(repo, missing)
    with pytest.raises(WorktreeError) as info:
        worktrees.ensure_worktree(repo.path, path, missing)
    assert info.value.hint
    assert not path.exists()
    assert str(path) not in repo.git("worktree", "list")


def test_remove_worktree_and_prune(repo: GitRepo) -> None:
    sha = Sha(repo.head())
    path = _build_dir(repo, sha)
    worktrees.ensure_worktree(repo.path, path, sha)
    (path / "models" / "a.sql").write_text("dirty\n")
    worktrees.remove_worktree(repo.path, path)
    assert not path.exists()
    assert str(path) not in repo.git("worktree", "list")
    worktrees.remove_worktree(repo.path, path)  # already gone: only prunes

    worktrees.ensure_worktree(repo.path, path, sha)
    shutil.rmtree(path)
    worktrees.prune_worktrees(repo.path)
    assert str(path) not in repo.git("worktree", "list")
