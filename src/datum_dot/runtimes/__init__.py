"""Runtimes: what executes dbt (in process, a child process, dbt Cloud, dbt Fusion)."""
