"""`dot diff`: what changed between two builds, from the manifest down to the rows.

Three levels, each cheap before the next: the two manifests (`manifest`), the relations in the
warehouse (columns and row counts, `relations`), and the rows (`rows`), compared in the
warehouse with SQL issued through dbt's adapter (`dbtcore.open_warehouse`); rows are never
pulled into Python to be compared. `compare.run_diff` runs them and records the diff in the
run history; `report` holds the result and its JSON.

May import: `history`, `runs`, `home`, `config`, `vcs`, `dbtcore` and everything below them.
"""
