"""The git adapter: every question asked of git, the build worktrees, and what dot owns.

- `git`: the facade callers use, re-exporting one small function per question from:
  - `session`: `session` opens a repository (every git call starts there), `find_repo_root`.
  - `sha`: `Sha`, a full commit hash, and the checks that make one.
  - `commits`: `resolve_commit` (the only `Sha` made from a ref), `has_commit`, refs at a commit.
  - `files`: files read from a commit without a checkout, and the files git tracks.
  - `ignores`: whether git's ignore rules ignore a path.
  - `remotes`: the remotes' names, and `git fetch`.
  - `submodules`: a build worktree's submodules, at their recorded commits.
- `githead`: the working tree's commit read from `.git` files, without GitPython.
- `refs`: `check_ref`, the rule every ref passes before git sees it.
- `worktrees`: detached worktrees of isolated builds, verified before reuse.
- `ownership`: the proof asked before dot changes anything under a project's `.dot/`.

May import: `errors` only. Only this package imports GitPython (an import contract); GitPython
is imported inside functions, so `dot --help` never pays for it.
"""
