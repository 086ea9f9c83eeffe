"""The git adapter: repository questions, worktrees, and what dot owns under `.dot/`."""
