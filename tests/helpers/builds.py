"""Builders for `dot builds` / `dot clean` tests: build folders made with real git, and schedules.

`make_build` lays out `.dot/build/<short_hash>/` as a build leaves it (a detached worktree made
by git, the `commit` file, `env/<env>/profiles.yml`, optionally `target/run_results.json`)
without running dbt, so tests about listing and removing folders stay fast. Tests about
schemas build for real.
"""

from __future__ import annotations

import os
import subprocess
import time
from datetime import UTC, datetime
from pathlib import Path

import yaml

from datum_dot.builds.workspace import ensure_dot_dir
from tests.helpers.repo import GitRepo


def make_build(
    project: Path,
    repo: GitRepo,
    ref: str,
    *,
    envs: tuple[str, ...] = ("prod",),
    schema: str = "analytics",
    age_days: float = 0.0,
    results: bool = False,
) -> Path:
    """Lay out the isolated build of `ref` under `project/.dot/build/<8-char hash>/`.

    Args:
        project: The dbt project folder (inside `repo`).
        repo: Its repository.
        ref: The ref to build.
        envs: Environment folders, each with an isolated profiles.yml.
        schema: The plain schema; each environment's is `<schema>_<short_hash>`.
        age_days: How long ago it was last used (the `commit` file's time).
        results: Also write `env/<env>/target/run_results.json` (with the same time).

    Returns:
        The build folder.
    """
    sha = repo.git("rev-parse", "--verify", f"{ref}^{{commit}}")
    short = sha[:8]
    ensure_dot_dir(project)
    build = project / ".dot" / "build" / short
    build.mkdir(parents=True, exist_ok=True)
    repo.git("worktree", "add", "--detach", "--quiet", str(build / "worktree"), sha)
    (build / "commit").write_text(sha + "\n")
    stamp = time.time() - age_days * 86400
    for env in envs:
        folder = build / "env" / env
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "profiles.yml").write_text(isolated_profile(f"{schema}_{short}"))
        if results:
            target = folder / "target"
            target.mkdir(exist_ok=True)
            (target / "run_results.json").write_text('{"results": []}\n')
            os.utime(target / "run_results.json", (stamp, stamp))
    os.utime(build / "commit", (stamp, stamp))
    return build


def isolated_profile(schema: str, *, target: str = "prod") -> str:
    """An isolated profiles.yml as dot writes it: one profile, one target."""
    return yaml.safe_dump(
        {
            "jaffle_dot": {
                "target": target,
                "outputs": {
                    target: {
                        "type": "duckdb",
                        "path": "{{ env_var('DOT_EXAMPLE_DUCKDB', 'jaffle.duckdb') }}",
                        "schema": schema,
                        "threads": 1,
                    }
                },
            }
        },
        sort_keys=False,
    )


def write_schedules(home: Path, project: Path, schedules: list[dict[str, object]]) -> Path:
    """Register `project` in `home/config.yaml` with these schedules (as the scheduler will)."""
    home.mkdir(parents=True, exist_ok=True)
    config = {
        "version": 1,
        "projects": {
            "shop": {
                "path": str(project),
                "profiles_dir": str(project),
                "target": "dev",
                "created_at": datetime.now(UTC).isoformat(),
                "schedules": schedules,
            }
        },
    }
    path = home / "config.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def worktree_paths(repo: GitRepo) -> list[Path]:
    """The worktrees git lists (the main one first), symlinks resolved."""
    out = repo.git("worktree", "list", "--porcelain")
    return [
        Path(line.split(" ", 1)[1]).resolve()
        for line in out.splitlines()
        if line.startswith("worktree ")
    ]


def prunable(repo: GitRepo) -> str:
    """What `git worktree prune` would remove (empty when git's list matches the disk)."""
    result = subprocess.run(
        ["git", "worktree", "prune", "--dry-run", "--verbose"],
        cwd=repo.path,
        capture_output=True,
        text=True,
        check=True,
        timeout=30,
    )
    return (result.stdout + result.stderr).strip()
