"""dot never deletes, moves or checks out what it did not make (ADR 0010).

Each test plants something a repository or a careless hand could put under `.dot/` (a link out
of the project, a link to the user's own linked worktree holding uncommitted work, a worktree
whose `.git` file names the main repository, a tracked `.dot`, a folder of someone else's) and
proves, with sentinel files outside the project, that `dot clean --all --yes --force`,
`dot clean <hash>` and `dot build` leave it alone, and that the hints dot prints work as printed.
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

from datum_dot.errors import OwnershipError
from datum_dot.vcs import ownership, worktrees
from datum_dot.vcs.git import Sha
from datum_dot.vcs.worktrees import WorktreeStatus
from tests.helpers.builds import make_build
from tests.helpers.example import ExampleProject
from tests.helpers.history import assert_bad_input, capture_user_state

ONE_SEED = ("--", "-s", "raw_customers")


@dataclass(frozen=True)
class Sentinel:
    """A folder outside the project with files in two subfolders; `intact` checks all of them."""

    root: Path

    @classmethod
    def plant(cls, root: Path) -> Sentinel:
        for name in ("deps", "photos", "deadbeef"):
            (root / name).mkdir(parents=True)
            (root / name / "keep.txt").write_text(f"{name}\n")
        (root / "notes.txt").write_text("mine\n")
        return cls(root)

    def intact(self) -> bool:
        files = {p.relative_to(self.root).as_posix(): p.read_text() for p in self.files()}
        return files == {
            "deps/keep.txt": "deps\n",
            "photos/keep.txt": "photos\n",
            "deadbeef/keep.txt": "deadbeef\n",
            "notes.txt": "mine\n",
        }

    def files(self) -> list[Path]:
        return sorted(p for p in self.root.rglob("*") if p.is_file())


@dataclass(frozen=True)
class Feature:
    """The user's own linked worktree, with an uncommitted edit, a staged and an untracked file."""

    path: Path

    @classmethod
    def make(cls, example: ExampleProject, path: Path) -> Feature:
        example.repo.git("worktree", "add", "--quiet", "-b", "feature", str(path))
        (path / "README.md").write_text("uncommitted edit\n")
        (path / "staged.txt").write_text("staged\n")
        example.repo.git("add", "staged.txt", cwd=path)
        (path / "untracked.txt").write_text("untracked\n")
        return cls(path)

    def intact(self) -> bool:
        return (
            (self.path / "README.md").read_text() == "uncommitted edit\n"
            and (self.path / "staged.txt").read_text() == "staged\n"
            and (self.path / "untracked.txt").read_text() == "untracked\n"
            and "A  staged.txt" in _git(self.path, "status", "--porcelain")
        )


def _git(cwd: Path, *args: str) -> str:
    return subprocess.run(
        ["git", *args], cwd=cwd, capture_output=True, text=True, check=True, timeout=30
    ).stdout


def _hint(result: subprocess.CompletedProcess[str]) -> str:
    """The runnable command at the end of the `hint:` line."""
    line = next(line for line in result.stderr.splitlines() if line.startswith("hint: "))
    return line.rsplit(": ", 1)[1]


def _clean_everything(example: ExampleProject) -> subprocess.CompletedProcess[str]:
    return example.dot("clean", "--all", "--yes", "--force")


# --- links out of the project -------------------------------------------------------------


def test_clean_and_build_refuse_a_dot_folder_that_is_a_link(
    example: ExampleProject, tmp_path: Path
) -> None:
    sentinel = Sentinel.plant(tmp_path / "Documents")
    (sentinel.root / "build").symlink_to(sentinel.root / "photos")
    (example.path / ".dot").symlink_to(sentinel.root)
    for args in (("clean", "--all", "--yes", "--force"), ("builds",), ("build", "prod@HEAD")):
        result = example.dot(*args)
        assert_bad_input(result, "is a symbolic link")
        assert sentinel.intact(), args
    # The hint removes the link only; the next build makes a real .dot.
    subprocess.run(shlex.split(_hint(example.dot("builds"))), check=True, cwd=example.path)
    assert sentinel.intact()
    assert not (example.path / ".dot").exists()


@pytest.mark.parametrize("level", ["build", "cache", "hash", "env", "worktree"])
def test_clean_leaves_links_under_dot_and_their_targets_alone(
    example: ExampleProject, tmp_path: Path, level: str
) -> None:
    sentinel = Sentinel.plant(tmp_path / "Documents")
    build = make_build(example.path, example.repo, "HEAD")
    dot = example.path / ".dot"
    link = {
        "build": dot / "build",
        "cache": dot / "cache",
        "hash": build,
        "env": build / "env",
        "worktree": build / "worktree",
    }[level]
    if level in ("build", "hash", "worktree"):
        worktrees.remove_worktree(example.repo.path, build / "worktree")
    if link.exists():
        ownership.remove_tree(link)
    link.symlink_to(sentinel.root)

    result = _clean_everything(example)
    assert result.returncode == 10, result.stdout + result.stderr
    assert "left alone" in result.stderr
    assert "Traceback" not in result.stderr
    assert sentinel.intact()
    assert link.is_symlink()


def test_builds_reports_foreign_entries_and_clean_never_removes_them(
    example: ExampleProject, tmp_path: Path
) -> None:
    build = make_build(example.path, example.repo, "HEAD")
    builds_dir = build.parent
    (builds_dir / "notes").mkdir()
    (builds_dir / "notes" / "todo.txt").write_text("mine\n")
    (builds_dir / "abcdef12").mkdir()  # a hex name but no commit file
    (builds_dir / "abcdef12" / "data.csv").write_text("1,2\n")
    wrong = builds_dir / "12345678"
    wrong.mkdir()
    (wrong / "commit").write_text(example.repo.head() + "\n")  # names another commit
    listed = json.loads(example.dot("builds", "--json").stdout)
    foreign = {f["name"]: f["reason"] for f in listed["foreign"]}
    assert set(foreign) == {"notes", "abcdef12", "12345678"}
    assert "not a short commit hash" in foreign["notes"]
    assert "no commit file" in foreign["abcdef12"]
    assert "another commit" in foreign["12345678"]
    assert [b["short_hash"] for b in listed["builds"]] == [build.name]
    shown = example.dot("builds")
    assert "not made by dot" in shown.stdout + shown.stderr

    result = _clean_everything(example)
    assert result.returncode == 10, result.stderr
    assert sorted(p.name for p in builds_dir.iterdir()) == ["12345678", "abcdef12", "notes"]
    assert (builds_dir / "notes" / "todo.txt").read_text() == "mine\n"
    assert (builds_dir / "abcdef12" / "data.csv").read_text() == "1,2\n"


# --- the user's own linked worktree behind a link -------------------------------------------


@pytest.mark.slow
def test_a_build_worktree_linked_to_the_users_worktree_is_never_touched(
    example: ExampleProject, tmp_path: Path
) -> None:
    feature = Feature.make(example, tmp_path / "work" / "feature")
    sentinel = Sentinel.plant(tmp_path / "Documents")
    example.repo.tag("v1")
    build = make_build(example.path, example.repo, "v1")
    worktrees.remove_worktree(example.repo.path, build / "worktree")
    (build / "worktree").symlink_to(feature.path)
    commit = (build / "commit").read_text().strip()

    for args in (("clean", "--all", "--yes", "--force"), ("clean", build.name, "--yes")):
        result = example.dot(*args)
        assert feature.intact(), args
        assert sentinel.intact()
    assert (build / "worktree").is_symlink()
    assert "symbolic link" in result.stderr

    built = example.dot("build", "prod@v1", *ONE_SEED)
    assert_bad_input(built, "is a symbolic link")
    assert feature.intact()
    assert _git(feature.path, "rev-parse", "--abbrev-ref", "HEAD").strip() == "feature"

    # The printed hint removes the link, and the next build makes its own worktree.
    subprocess.run(shlex.split(_hint(built)), check=True)
    assert feature.intact()
    built = example.dot("build", "prod@v1", *ONE_SEED)
    assert built.returncode == 0, built.stderr
    assert not (build / "worktree").is_symlink()
    assert _git(build / "worktree", "rev-parse", "HEAD").strip() == commit
    assert feature.intact()


# --- a worktree whose .git file names another repository's git dir --------------------------


@pytest.mark.slow
def test_a_build_worktree_pointing_at_the_main_git_dir_never_moves_the_checkout(
    example: ExampleProject,
) -> None:
    repo = example.repo
    repo.tag("v1")
    repo.commit({"README.md": "second\n"}, "second")
    build = make_build(example.path, repo, "v1")
    (build / "worktree" / ".git").write_text(f"gitdir: {repo.path / '.git'}\n")
    (repo.path / "staged.txt").write_text("staged work\n")
    repo.git("add", "staged.txt")
    before = capture_user_state(repo.path)

    result = example.dot("build", "prod@v1", *ONE_SEED)
    assert result.returncode == 0, result.stderr
    assert capture_user_state(repo.path) == before
    worktree = build / "worktree"
    assert _git(worktree, "rev-parse", "HEAD").strip() == repo.git("rev-parse", "v1")
    assert Path(_git(worktree, "rev-parse", "--show-toplevel").strip()) == worktree


def test_clean_removes_a_build_whose_worktree_git_file_is_corrupt(
    example: ExampleProject, tmp_path: Path
) -> None:
    repo = example.repo
    feature = Feature.make(example, tmp_path / "feature")
    before = capture_user_state(repo.path)
    pointing_home = make_build(example.path, repo, "HEAD")
    (pointing_home / "worktree" / ".git").write_text(f"gitdir: {repo.path / '.git'}\n")
    repo.commit({"README.md": "two\n"}, "two")
    before = capture_user_state(repo.path)
    dangling = make_build(example.path, repo, "HEAD")
    (dangling / "worktree" / ".git").write_text("gitdir: /nonexistent\n")

    result = example.dot("clean", pointing_home.name, dangling.name, "--yes")
    assert result.returncode == 0, result.stderr
    assert not pointing_home.exists()
    assert not dangling.exists()
    assert capture_user_state(repo.path) == before
    assert feature.intact()
    listed = repo.git("worktree", "list", "--porcelain")
    assert str(pointing_home) not in listed
    assert str(dangling) not in listed
    assert str(feature.path) in listed


def test_ensure_worktree_repairs_a_dangling_git_file_without_touching_the_checkout(
    example: ExampleProject,
) -> None:
    repo = example.repo
    sha = Sha(repo.head())
    build = make_build(example.path, repo, "HEAD")
    (build / "worktree" / ".git").write_text("gitdir: /nonexistent\n")
    before = capture_user_state(repo.path)
    assert worktrees.ensure_worktree(repo.path, build / "worktree", sha) is WorktreeStatus.REPAIRED
    assert worktrees.ensure_worktree(repo.path, build / "worktree", sha) is WorktreeStatus.REUSED
    assert capture_user_state(repo.path) == before


def test_locked_build_worktree_hint_unlocks_it(example: ExampleProject) -> None:
    build = make_build(example.path, example.repo, "HEAD")
    example.repo.git("worktree", "lock", str(build / "worktree"))
    result = example.dot("clean", build.name, "--yes")
    assert result.returncode == 30, result.stdout + result.stderr
    assert build.exists()
    failed = next(line for line in result.stdout.splitlines() if line.startswith("failed"))
    hint = failed[failed.index("[") + 1 : failed.index("]")]
    assert hint == f"git worktree unlock {build / 'worktree'}"
    subprocess.run(shlex.split(hint), check=True, cwd=example.path)
    result = example.dot("clean", build.name, "--yes")
    assert result.returncode == 0, result.stderr
    assert not build.exists()


# --- a tracked .dot -------------------------------------------------------------------------


def test_a_tracked_dot_folder_is_refused_and_the_hint_untracks_it(
    example: ExampleProject, tmp_path: Path
) -> None:
    sentinel = Sentinel.plant(tmp_path / "Documents")
    dot = example.path / ".dot"
    dot.mkdir()
    (dot / "build").symlink_to(sentinel.root)
    example.repo.git("add", "-f", ".dot/build")
    example.repo.git("commit", "--quiet", "-m", "commit a link under .dot")
    for args in (("clean", "--all", "--yes", "--force"), ("builds",), ("build", "prod@HEAD")):
        result = example.dot(*args)
        assert_bad_input(result, "git tracks .dot/build")
        assert sentinel.intact()
    subprocess.run(shlex.split(_hint(result)), check=True)
    assert not example.repo.git("ls-files", ".dot")
    # Still a link on disk: now reported as foreign and left alone, never followed.
    result = _clean_everything(example)
    assert result.returncode == 10, result.stderr
    assert sentinel.intact()


def test_building_a_commit_that_tracks_dot_is_refused(example: ExampleProject) -> None:
    repo = example.repo
    (example.path / ".dot").mkdir()
    (example.path / ".dot" / "marker").write_text("x\n")
    repo.git("add", "-f", ".dot/marker")
    repo.git("commit", "--quiet", "-m", "track .dot")
    repo.tag("tracked")
    repo.git("rm", "--quiet", "-r", "--cached", ".dot")
    repo.git("commit", "--quiet", "-m", "untrack .dot")
    result = example.dot("build", "prod@tracked", *ONE_SEED)
    assert_bad_input(result, "tracks .dot/marker")
    assert not (example.path / ".dot" / "build").exists()


# --- files where dot keeps folders ----------------------------------------------------------


@pytest.mark.parametrize("level", [".dot", "build", "cache"])
def test_a_file_where_dot_keeps_a_folder_is_bad_input(example: ExampleProject, level: str) -> None:
    dot = example.path / ".dot"
    path = dot if level == ".dot" else dot / level
    if level != ".dot":
        dot.mkdir()
    path.write_text("not a folder\n")
    result = example.dot("build", "prod@HEAD", *ONE_SEED)
    assert_bad_input(result, "is a file")
    assert path.read_text() == "not a folder\n"
    subprocess.run(shlex.split(_hint(result)), check=True)
    assert not path.exists()


def test_a_file_where_a_build_keeps_env_or_commit_is_bad_input(example: ExampleProject) -> None:
    sha = example.repo.head()
    build = example.path / ".dot" / "build" / sha[:8]
    build.mkdir(parents=True)
    (build / "env").write_text("not a folder\n")
    result = example.dot("build", "prod@HEAD", *ONE_SEED)
    assert_bad_input(result, "is a file")
    assert (build / "env").read_text() == "not a folder\n"
    (build / "env").unlink()
    (build / "commit").mkdir()
    result = example.dot("build", "prod@HEAD", *ONE_SEED)
    assert_bad_input(result, "commit is a folder")
    assert (build / "commit").is_dir()
    subprocess.run(shlex.split(_hint(result)), check=True)
    result = example.dot("build", "prod@HEAD", *ONE_SEED)
    assert result.returncode == 0, result.stderr


# --- deleting without following links -------------------------------------------------------


def test_remove_tree_unlinks_links_inside_and_never_follows_them(tmp_path: Path) -> None:
    sentinel = Sentinel.plant(tmp_path / "outside")
    doomed = tmp_path / "doomed"
    (doomed / "sub").mkdir(parents=True)
    (doomed / "sub" / "link").symlink_to(sentinel.root)
    (doomed / "sub" / "file").write_text("x")
    ownership.remove_tree(doomed)
    assert not doomed.exists()
    assert sentinel.intact()


def test_remove_tree_refuses_a_path_through_a_link_planted_above_it(tmp_path: Path) -> None:
    sentinel = Sentinel.plant(tmp_path / "outside")
    parent = tmp_path / "project" / ".dot"
    parent.mkdir(parents=True)
    (parent / "build").symlink_to(sentinel.root)
    with pytest.raises(OwnershipError, match="symbolic link"):
        ownership.remove_tree(parent / "build" / "deadbeef")
    with pytest.raises(OwnershipError, match="symbolic link"):
        ownership.remove_tree(parent / "build")
    assert sentinel.intact()


def test_remove_tree_refuses_relative_paths(tmp_path: Path) -> None:
    os.chdir(tmp_path)
    (tmp_path / "x").mkdir()
    with pytest.raises(OwnershipError, match="not an absolute"):
        ownership.remove_tree(Path("x"))
    assert (tmp_path / "x").is_dir()


def test_validate_fix_never_changes_a_profile_behind_a_link(
    example: ExampleProject, tmp_path: Path
) -> None:
    outside = tmp_path / "elsewhere" / "12345678" / "env" / "prod" / "profiles.yml"
    outside.parent.mkdir(parents=True)
    outside.write_text("mine: {}\n")
    outside.chmod(0o644)
    dot = example.path / ".dot"
    dot.mkdir()
    (dot / "build").symlink_to(tmp_path / "elsewhere")
    result = example.dot("validate", "--auto-fix", "--yes")
    assert "elsewhere" not in result.stdout + result.stderr
    assert outside.stat().st_mode & 0o777 == 0o644
    # The same file reached without a link is found and fixed.
    (dot / "build").unlink()
    (tmp_path / "elsewhere").rename(dot / "build")
    inside = dot / "build" / "12345678" / "env" / "prod" / "profiles.yml"
    result = example.dot("validate", "--auto-fix", "--yes")
    assert "chmod 600" in result.stdout + result.stderr
    assert inside.stat().st_mode & 0o777 == 0o600
