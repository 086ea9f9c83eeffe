"""The webhook server: accept run requests over HTTP, queue them durably, run them with workers.

```
intake.py   accept-time checks: project, command, spec, environment, git ref (cheap, no dbt)
queue.py    the durable queue, `$DATUM_HOME/webhook.sqlite`: ids, idempotency, serialization
workers.py  a pool of threads running queued requests through `execute()`
auth.py     bearer tokens and HMAC signatures, compared in constant time
guard.py    the ASGI middleware: body size limit and authentication, before any route
app.py      the FastAPI application (routes, errors, OpenAPI)
github.py   GitHub push events mapped to runs
server.py   binding, uvicorn, signals and graceful shutdown
service.py  the systemd user unit
```

Only `app.py`, `guard.py` and `server.py` import FastAPI, Starlette or uvicorn, and nothing outside
this package imports them: the CLI loads this package only for `dot webhook`.
"""
