"""The main job on the example project, end to end, in a temporary git repository.

1. copy `.dot-example/` into a temporary folder and make it a git repository with three
   commits (tag v1.0 on the first, a changed model on the last);
2. `dot deps`, then `dot build` (default environment, working tree) and `dot build prod`;
3. `dot build prod@v1.0` and `dot build prod@main`: isolated builds into analytics_<hash>;
4. print where the results are: the DuckDB file, its schemas and row counts.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / ".dot-example"
DOT = Path(sys.executable).parent / "dot"


def git(repo: Path, *args: str) -> str:
    """Run git in the demo repository with a fixed identity."""
    env = {
        **os.environ,
        "GIT_AUTHOR_NAME": "Demo",
        "GIT_AUTHOR_EMAIL": "demo@example.invalid",
        "GIT_COMMITTER_NAME": "Demo",
        "GIT_COMMITTER_EMAIL": "demo@example.invalid",
    }
    out = subprocess.run(
        ["git", *args], cwd=repo, env=env, check=True, capture_output=True, text=True
    )
    return out.stdout.strip()


def dot(repo: Path, *args: str) -> None:
    """Run the installed `dot` in the demo repository, failing the demo if it fails."""
    print(f"\n$ dot {' '.join(args)}", flush=True)
    subprocess.run([str(DOT), *args, "--disable-prompts"], cwd=repo, check=True)


def make_repo(base: Path) -> Path:
    """Copy the example into a git repository with three commits."""
    repo = base / "jaffle_dot"
    shutil.copytree(EXAMPLE, repo, ignore=shutil.ignore_patterns("*.duckdb", "target", "logs"))
    git(repo, "init", "-q", "-b", "main")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "Example project")
    git(repo, "tag", "-a", "v1.0", "-m", "First release")
    readme = repo / "README.md"
    readme.write_text(readme.read_text() + "\nA second commit.\n")
    git(repo, "commit", "-q", "-am", "Docs")
    orders = repo / "models" / "marts" / "orders.sql"
    orders.write_text(orders.read_text().replace("select", "select /* v2 */", 1))
    git(repo, "commit", "-q", "-am", "Mark orders as v2")
    return repo


def show_results(database: Path) -> None:
    """Print every schema in the warehouse and the row count of its orders table."""
    import duckdb

    con = duckdb.connect(str(database), read_only=True)
    rows = con.execute(
        "select table_schema, count(*) from information_schema.tables group by 1 order by 1"
    ).fetchall()
    print(f"\nResults are in {database}:")
    for schema, tables in rows:
        orders = con.execute(f'select count(*) from "{schema}".orders').fetchone()  # noqa: S608 - the schema comes from the catalog
        print(f"  schema {schema:<22} {tables} tables and views, orders: {orders[0]} rows")
    con.close()


def main() -> int:
    """Run the demo; returns the exit code."""
    base = Path(tempfile.mkdtemp(prefix="dot-demo-"))
    repo = make_repo(base)
    os.environ["DOT_EXAMPLE_DUCKDB"] = str(repo / "jaffle.duckdb")
    print(f"Demo repository: {repo}")
    print(git(repo, "log", "--oneline", "--decorate"))
    dot(repo, "deps")
    dot(repo, "build")
    dot(repo, "build", "prod")
    dot(repo, "build", "prod@v1.0")
    dot(repo, "build", "prod@main")
    dot(repo, "build", "prod@main", "--dry-run")
    show_results(repo / "jaffle.duckdb")
    print(f"\nIsolated build folders: {repo / '.dot' / 'build'}")
    for folder in sorted((repo / ".dot" / "build").iterdir()):
        print(f"  {folder.name}: commit {(folder / 'commit').read_text().strip()}")
    print(f"\nTry it yourself: cd {repo} && {DOT} build dev@HEAD~1")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
