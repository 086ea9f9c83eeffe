"""Imported by the fork server only: warm dbt up once, so each forked invocation starts warm.

A process's first dbt invocation spends over a second generating serializers and JSON schemas
that every later invocation reuses. The fork server imports this module at start-up; importing
it parses a throwaway one-model project against an in-memory DuckDB database (when dbt-duckdb is
installed; otherwise nothing happens), then drops the adapter again, so the children it forks
inherit the warm caches and no adapter state. It parses without dbt's static parser, whose
thread pool a forked child would not inherit. Nothing else imports this module. The parse itself
is `dbtcore.warm_parse`: only `dbtcore` imports dbt.
"""

from __future__ import annotations

from datum_dot import dbtcore

WARMED = dbtcore.warm_parse()
