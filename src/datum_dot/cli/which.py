"""`dot which RELATION [ENV]`: which run, commit, environment and command last built a relation.

```
dot which analytics.customer_orders          schema.relation, or database.schema.relation
dot which customer_orders prod               a model's name, in one environment's runs
dot which analytics.orders --json
```

The answer comes from the artifacts kept with each run in the history (run_results.json and
manifest.json), so it covers runs made since runs kept them.
"""

from __future__ import annotations

import argparse

from datum_dot.errors import HistoryError, UsageError
from datum_dot.history import RunStore
from datum_dot.home.settings import datum_home


def run_which(args: argparse.Namespace, *, prog: str) -> int:
    """`dot which ...`: check the name, ask the history, render the answer."""
    relation = args.relation.strip()
    if not relation or any(not part.strip() for part in relation.split(".")):
        raise UsageError(
            f"'{args.relation}' is not a relation name",
            f"name it as schema.relation or a model's name: {prog} which analytics.orders",
        )
    if relation.count(".") > 2:
        raise UsageError(
            f"'{relation}' has more than three parts",
            f"use database.schema.relation, schema.relation or a model's name: {prog} which "
            "analytics.orders",
        )
    store = RunStore(datum_home())
    found = store.last_built(relation, env=args.env, project=args.project)
    if found is None:
        scope = f" in environment {args.env}" if args.env else ""
        raise HistoryError(
            f"no run in {store.home} built {relation}{scope} (by the artifacts kept with runs)",
            f"build it, or list recent runs with `{prog} logs`; runs kept their artifacts only "
            "from this version on",
        )
    run, node = found
    # lazy: rich loads only for what is shown
    from datum_dot.cli import render, runview

    short = store.short_ids([run.run_id])[run.run_id]
    answer = {
        "relation": node.relation,
        "unique_id": node.unique_id,
        "node_status": node.status,
        "run_id": run.run_id,
        "run_status": run.status.value,
        "environment": run.start.env,
        "spec": run.start.spec,
        "ref": run.start.ref,
        "commit": run.start.commit,
        "command": list(run.start.command),
        "trigger": run.start.trigger,
        "started_at": run.started_at.isoformat(),
        "finished_at": run.finished_at.isoformat() if run.finished_at else None,
    }
    if args.json:
        render.print_json(answer)
        return 0
    runview.print_which(answer, short_id=short, prog=prog)
    return 0
