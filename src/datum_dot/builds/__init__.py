"""Isolated builds (`.dot/build/<short_hash>/`): made real for a run, listed, and cleaned.

- `workspace.prepared`: make a plan real: worktree, isolated profiles.yml, packages (`packages`,
  from the `.dot/cache/deps` cache), under locks.
- `survey`: the builds of a project as found on disk (`survey_builds`, `dot builds`).
- `cleanup` (`dot clean`) with `selection`, `protection`, `schemadrop` and `depscache`.

May import: `history`, `runs` and everything below them.
"""
