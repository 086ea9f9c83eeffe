"""The webhook server: accept run requests over HTTP, queue them durably, run them with workers.

```
app.py        the FastAPI application: the guard, and errors as HTTP statuses
routes.py     the routes, module-level handlers given the context as a dependency
context.py    what every route works with (`AppContext`)
models.py     the request and response bodies (what /openapi.json describes)
guard.py      ASGI middleware before every route: body size limit, then authentication
auth.py       bearer tokens and HMAC signatures (ours and GitHub's), compared in constant time
intake.py     accept-time checks: project, command, spec, environment, vars, git ref (no dbt)
github.py     GitHub push events mapped to runs
queue.py      the durable queue, `$DATUM_HOME/webhook.sqlite`: ids, idempotency, serialization
queuefile.py  its SQLite file: schema, migrations, connections
pgqueue.py    the queue in PostgreSQL beside the history, shared by servers on several hosts
queues.py     which of the two a server uses (the history's store decides), and what both offer
committer.py  group commit: requests accepted together share one transaction (one fsync)
jobs.py       the queue's shapes (a resolved request, a row)
views.py      runs and queued jobs as the API shows them
workers.py    worker processes taking jobs from the queue
execution.py  one job through `execute()` (`--warm`: `runtimes.warmth`, each run forked)
server.py     binding, uvicorn, signals, graceful shutdown
unit.py       the systemd user unit
errors.py     the package's errors
```

Only `app.py`, `routes.py`, `context.py`, `models.py`, `guard.py` and `server.py` import the
server libraries, and nothing outside this package imports them: the CLI loads it only for
`dot webhook`. See adr/0008 for the queue and idempotency design, adr/0020 for PostgreSQL.

May import: `execute` and everything below it, but never the git adapter or `dbtcore`: git
and dbt are asked through `runs` (an import contract).
"""
