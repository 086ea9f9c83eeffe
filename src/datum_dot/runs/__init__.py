"""What a run is, and how it is planned and carried out through a runtime.

- `spec`: the `[env][@ref]` grammar; `run`: `RunRequest` and `RunRecord`.
- `planner.make_plan`: gather config, vars, profiles and git refs into a `plan.BuildPlan`
  (pure, what `--dry-run` prints); `isolatedprofiles` plans an isolated build's profiles.yml.
- `runner.Runner`: one dbt invocation through a runtime, classified (`failures`), retried,
  timed out; `isolation` checks where an isolated build would write.
- `progress`, `prompts`: progress state from dbt's events, the start-up suggestions.
- `commits`, `commands`: git's and dbt's answers for the webhook and the scheduler.

May import: `home`, `runtimes`, `config`, `vcs`, `dbtcore`, `errors`, `outcomes`.
"""
