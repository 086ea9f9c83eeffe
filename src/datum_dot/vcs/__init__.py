"""The git adapter: every question asked of git, the build worktrees, and what dot owns.

- `git`: one small function per question (GitPython, imported inside functions); `session`
  opens a repository, `resolve_commit` makes the only `Sha`.
- `githead`: the working tree's commit read from `.git` files, without GitPython.
- `refs`: `check_ref`, the rule every ref passes before git sees it.
- `worktrees`: detached worktrees of isolated builds, verified before reuse.
- `ownership`: the proof asked before dot changes anything under a project's `.dot/`.

May import: `errors` only. Only this package imports GitPython (an import contract).
"""
