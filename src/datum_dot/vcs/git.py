"""Every question the product asks git, one small function each: the git adapter's facade.

The functions live in modules named for what they ask, and callers reach them here
(`from datum_dot.vcs import git`, then `git.resolve_commit(...)`):

- `session`: `session` (every git call starts there), `find_repo_root`, `COMMAND_TIMEOUT`.
- `sha`: `Sha`, `validate_sha`, `short_hash`.
- `commits`: `resolve_commit` (the only `Sha` made from a ref), `has_commit`, `refs_pointing_at`.
- `files`: files of a commit (`read_file_at`, `read_files_at`, `path_in_commit`) and
  `tracked_paths`.
- `ignores`: `is_ignored`, `is_ignored_in`.
- `remotes`: `remote_names`, `fetch`.
- `submodules`: `update_submodules`.

Only these modules, with `datum_dot.vcs.worktrees`, talk to git. They use GitPython, imported
inside functions so that `dot --help` never pays for it, and reach raw git only through
GitPython's command wrapper (`repo.git.<command>(...)`) with list arguments.
"""

from __future__ import annotations

from datum_dot.vcs.commits import has_commit, refs_pointing_at, resolve_commit
from datum_dot.vcs.files import path_in_commit, read_file_at, read_files_at, tracked_paths
from datum_dot.vcs.ignores import is_ignored, is_ignored_in
from datum_dot.vcs.remotes import fetch, remote_names
from datum_dot.vcs.session import COMMAND_TIMEOUT, find_repo_root, session
from datum_dot.vcs.sha import Sha, short_hash, validate_sha
from datum_dot.vcs.submodules import update_submodules

__all__ = [
    "COMMAND_TIMEOUT",
    "Sha",
    "fetch",
    "find_repo_root",
    "has_commit",
    "is_ignored",
    "is_ignored_in",
    "path_in_commit",
    "read_file_at",
    "read_files_at",
    "refs_pointing_at",
    "remote_names",
    "resolve_commit",
    "session",
    "short_hash",
    "tracked_paths",
    "update_submodules",
    "validate_sha",
]
