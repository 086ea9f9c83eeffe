"""The user's state in `$DATUM_HOME`, and what it says about a registered project.

- `settings`: `datum_home()` and the defaults every layer shares.
- `privatefiles`, `locks`, `sqlitefile`: atomic 0600 writes, file locks, the SQLite opener.
- `userconfig`: `config.yaml` (registered projects, schedules, webhook settings).
- `keys`, `tokens`: a key pair per project, the webhook's token.
- `registration` (`dot init`), `configkeys` (`dot config set`), `effective` (the effective
  settings of a project and where each comes from).
- `sessionlog`, `liveness`: the session log, and whether a run's writer is still alive.

May import: `runtimes`, `config`, `vcs`, `dbtcore`, `errors`, `outcomes`.
"""
