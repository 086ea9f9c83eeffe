"""The one package that imports dbt-core; this module is its facade.

Everything dbt returns is converted here into our own frozen types, so that differences between
dbt versions stay in this package. dbt is imported lazily, inside functions: importing the
package costs no dbt import, and `dot --help` does not pay for it.

Callers use `from datum_dot import dbtcore` and the names re-exported below; the submodules each
hold one concern:

- `commands`: dbt's commands and the options each accepts (cached per process).
- `invocation`: `invoke`, one in-process dbt invocation, and its outcome.
- `events`: dbt's event callbacks, their data converted when read.
- `parsing`: a project parsed in process: the nodes a run writes, a selection's graph.
- `adapters`: installed versions, an adapter's probe, the modules a warm worker preloads.
- `warmup`: the throwaway parse the warm workers run before they fork.
- `schemas`: relations in a target's schemas, and a schema drop.
- `warehouse`: read-only questions to a warehouse (for `dot diff`).
- `runtimeconfig`: dbt's rendered `RuntimeConfig`, cached.
- `guards`: the invocation lock, environment and connection release every use of dbt holds.
- `collector`: dbt's import with the garbage collector paused, for a process that asks.
"""

from __future__ import annotations

from datum_dot.dbtcore.adapters import AdapterProbe, preload_modules, probe_adapter, versions
from datum_dot.dbtcore.collector import own_collector
from datum_dot.dbtcore.commands import (
    DBT_COMMANDS,
    all_option_names,
    command_options,
    option_arities,
)
from datum_dot.dbtcore.invocation import Invocation, exception_class, invoke
from datum_dot.dbtcore.parsing import (
    DbtParseFailed,
    GraphNode,
    SelectedGraph,
    parse_targets,
    select_graph,
)
from datum_dot.dbtcore.schemas import SchemaDrop, drop_target_schema, existing_relations
from datum_dot.dbtcore.warehouse import (
    Warehouse,
    WarehouseColumn,
    WarehouseIdentity,
    WarehouseQueryFailed,
    WarehouseUnavailable,
    open_warehouse,
    warehouse_identity,
)
from datum_dot.dbtcore.warmup import warm_parse

__all__ = [
    "DBT_COMMANDS",
    "AdapterProbe",
    "DbtParseFailed",
    "GraphNode",
    "Invocation",
    "SchemaDrop",
    "SelectedGraph",
    "Warehouse",
    "WarehouseColumn",
    "WarehouseIdentity",
    "WarehouseQueryFailed",
    "WarehouseUnavailable",
    "all_option_names",
    "command_options",
    "drop_target_schema",
    "exception_class",
    "existing_relations",
    "invoke",
    "open_warehouse",
    "option_arities",
    "own_collector",
    "parse_targets",
    "preload_modules",
    "probe_adapter",
    "select_graph",
    "versions",
    "warehouse_identity",
    "warm_parse",
]
