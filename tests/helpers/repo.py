"""Build real git repositories for tests, with the git command line and list arguments."""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class GitRepo:
    """A git repository made for a test.

    Attributes:
        path: The top of its work tree.
    """

    path: Path

    def git(self, *args: str, cwd: Path | None = None) -> str:
        """Run git in the repository (or in `cwd`) and return its stripped stdout."""
        result = subprocess.run(
            ["git", *args],
            cwd=cwd or self.path,
            capture_output=True,
            text=True,
            check=False,
            timeout=30,
        )
        if result.returncode != 0:
            raise AssertionError(f"git {' '.join(args)} failed: {result.stderr}")
        return result.stdout.strip()

    def write(self, files: dict[str, str]) -> None:
        """Write files (relative path -> text) into the work tree, making folders as needed."""
        for name, text in files.items():
            target = self.path / name
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(text)

    def commit(self, files: dict[str, str], message: str = "change") -> str:
        """Write `files`, commit everything in the work tree, and return the new commit's hash."""
        self.write(files)
        self.git("add", "--all")
        self.git("commit", "--quiet", "--allow-empty", "--message", message)
        return self.head()

    def head(self) -> str:
        """Return the full hash HEAD points at."""
        return self.git("rev-parse", "HEAD")

    def tag(self, name: str, *, annotated: bool = False, ref: str = "HEAD") -> None:
        """Tag `ref`, with an annotated tag object when `annotated`."""
        if annotated:
            self.git("tag", "--annotate", "--message", f"release {name}", name, ref)
        else:
            self.git("tag", name, ref)

    def branch(self, name: str, ref: str = "HEAD") -> None:
        """Create branch `name` at `ref` without switching to it."""
        self.git("branch", name, ref)

    def checkout(self, ref: str) -> None:
        """Switch the work tree to `ref`."""
        self.git("checkout", "--quiet", ref)


def make_repo(path: Path, *, branch: str = "main") -> GitRepo:
    """Create an empty repository at `path` whose first branch is `branch`.

    The caller's environment must already be hermetic (tests/conftest.py sees to it).
    """
    path.mkdir(parents=True, exist_ok=True)
    repo = GitRepo(path.resolve())
    repo.git("init", "--quiet", f"--initial-branch={branch}")
    return repo
