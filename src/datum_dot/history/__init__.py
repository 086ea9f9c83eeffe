"""The run history: every run `execute()` performs (and every `dot clean` that drops schemas),
recorded as it happens.

```
$DATUM_HOME/history.sqlite     the index (SQLite, WAL; schema versioned by PRAGMA user_version)
$DATUM_HOME/runs/<run_id>/     metadata.json, output.log, stdout.log, stderr.log, run_results.json
```

Use it like this (what `execute()` does around a dbt invocation):

```python
store = RunStore(datum_home())
run_id = store.begin(RunStart(project="shop", spec="prod@main", command=("build",), ...))
with store.output(run_id) as out:
    out.line("stdout", "1 of 3 START sql table model ...")
store.finish(run_id, RunEnd(status=RunStatus.SUCCESS, exit_code=0, run_results=target / "run_results.json"))
```

`execute()` goes through `RunRecorder` instead, which keeps the run going when the history
cannot be written for want of space, and catches up when space returns (see `recorder`).

This package alone touches SQLite (in `database`).

May import: `runs` (the run record's types), `home` and everything below them.
"""

from __future__ import annotations

from datum_dot.history.files import NodeCounts, count_nodes, node_counts, unstamp
from datum_dot.history.output import RunOutput
from datum_dot.history.recorder import RunRecorder
from datum_dot.history.records import (
    FINAL_STATUSES,
    RUN_ID,
    STORED_STATUSES,
    RunEnd,
    RunStart,
    StoredRun,
    check_run_id_prefix,
)
from datum_dot.history.store import ABORTED_CLASS, HISTORY_FILE, RunStore

__all__ = [
    "ABORTED_CLASS",
    "FINAL_STATUSES",
    "HISTORY_FILE",
    "RUN_ID",
    "STORED_STATUSES",
    "NodeCounts",
    "RunEnd",
    "RunOutput",
    "RunRecorder",
    "RunStart",
    "RunStore",
    "StoredRun",
    "check_run_id_prefix",
    "count_nodes",
    "node_counts",
    "unstamp",
]
