"""The warm runner: one process per user that imports dbt once and forks a child per run.

`dot warm start` (or `warm: auto` in the user config) starts it; the CLI hands each dbt command
to it over a Unix socket in `$DATUM_HOME/warm/` with its argv, environment and stdio, and the
forked child runs the command exactly as the CLI would in a fresh process (see adr/0018).

- `paths`: where the socket, lock, pid and log files live.
- `protocol`: the framing of a request (JSON plus SCM_RIGHTS fds) and of the replies.
- `stamp`: what the installed code looked like when the runner started, to notice a change.
- `server`: the runner's accept loop; `session`: one request's forked children.
- `client`: the CLI's side: hand a command off, ask for status, start and stop.

"""
