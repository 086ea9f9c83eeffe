"""Run a diff: the manifests, then each selected model's relations and rows in the warehouse,
recorded in the run history as a run of command `diff`.

Nothing is written to either schema: the warehouse is only read (catalog queries, counts,
joins that return aggregates and a few sample rows).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

from datum_dot import dbtcore
from datum_dot.diff.data import DataDiff, RowRequest, compare_data
from datum_dot.diff.manifest import Manifest, NodeChanges, compare_nodes, load_manifest
from datum_dot.diff.queries import SUPPORTED_ADAPTERS
from datum_dot.diff.report import CATEGORIES, DiffResult, ModelDiff
from datum_dot.diff.selection import select_nodes
from datum_dot.diff.sides import Side
from datum_dot.errors import BadInputError, DotError, ExitCode, UsageError
from datum_dot.history import NodeCounts, RunEnd, RunRecorder, RunStart, RunStore
from datum_dot.runs.planner import project_name
from datum_dot.runs.run import RunStatus

DIFF_FILE = "diff.json"
"""The diff's JSON, kept in its run's folder in the history."""


class DiffWarehouseError(DotError):
    """The warehouse of a diff could not be reached or its profile loaded."""


@dataclass(frozen=True)
class DiffRequest:
    """What to compare, and how deep.

    Attributes:
        select: `-s` values (a subset of dbt's syntax, see `selection`); empty for all.
        key: `--key` columns; empty to take each model's declared unique key.
        rows: Compare rows (level 3); False for `--no-rows`.
        sample: Example rows of each kind (`--sample`).
        fail_on: Categories that make the diff exit `ExitCode.DIFF_FOUND` when they occur.
    """

    select: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()
    key: tuple[str, ...] = ()
    rows: bool = True
    sample: int = 5
    fail_on: frozenset[str] = field(default_factory=frozenset)


def parse_fail_on(text: str) -> frozenset[str]:
    """The categories of a `--fail-on` value (`removed,changed-rows`).

    Raises:
        UsageError: A name is not a category.
    """
    names = frozenset(part.strip() for part in text.split(",") if part.strip())
    unknown = sorted(names - {*CATEGORIES, "any"})
    if unknown or not names:
        raise UsageError(
            f"--fail-on {text}: {', '.join(unknown) or 'no category'} is not a category",
            f"name some of {', '.join((*CATEGORIES, 'any'))}, comma-separated",
        )
    return names


def exit_code(result: DiffResult) -> ExitCode:
    """`DIFF_FOUND` when a `--fail-on` category occurred, else OK."""
    return ExitCode.DIFF_FOUND if result.failed_on else ExitCode.OK


def run_diff(
    left: Side,
    right: Side,
    request: DiffRequest,
    *,
    store: RunStore,
    say: Callable[[str], None] = lambda text: None,
) -> DiffResult:
    """Compare two built sides, record the diff in the history, and return what it found.

    Args:
        left: The side compared from.
        right: The side compared to.
        request: What to compare and how deep.
        store: The run history the diff is recorded in.
        say: Called with a line of progress for people.

    Raises:
        BadInputError: The sides are in different warehouses, or a selector matches nothing.
        UsageError: The warehouse's adapter is not one the diff supports.
        DiffWarehouseError: The warehouse could not be reached.
        HistoryError: The history cannot record the diff.
    """
    lman, rman = load_manifest(left.manifest), load_manifest(right.manifest)
    union = {**lman.nodes, **rman.nodes}
    selected = select_nodes(request.select, union, request.exclude)
    adapter = _check_warehouses(left, right)
    start = RunStart(
        project=project_name(left.project_dir),
        spec=f"{left.label} {right.label}",
        command=("diff",),
        env=right.env_name or None,
        ref=right.spec.ref,
        commit=right.commit,
        state={"diff": {"left": left.to_json(), "right": right.to_json()}},
    )
    with RunRecorder(store, start) as recorder:
        recorder.begin()
        try:
            models = _compare(left, lman, rman, selected, request, say)
        except BaseException as e:
            code = ExitCode.CANCELLED if isinstance(e, KeyboardInterrupt) else _code(e)
            status = RunStatus.CANCELLED if isinstance(e, KeyboardInterrupt) else RunStatus.FAILED
            recorder.finish(RunEnd(status, int(code), error_class=type(e).__name__,
                                   error_message=str(e) or None))  # fmt: skip
            raise
        levels = ("manifest", "relation", "rows") if request.rows else ("manifest", "relation")
        result = DiffResult(left, right, adapter, models, levels, request.fail_on,
                            run_id=recorder.run_id)  # fmt: skip
        _record(recorder, store, result)
        unsaved = recorder.unsaved()
    return replace(result, warnings=(unsaved,)) if unsaved else result


def _code(error: BaseException) -> ExitCode:
    return error.exit_code if isinstance(error, DotError) else ExitCode.RUNTIME_FAILURE


def _check_warehouses(left: Side, right: Side) -> str:
    """The adapter both sides use; refuse two warehouses, or an adapter the diff cannot speak."""
    return check_warehouses((left.label, _identity(left)), (right.label, _identity(right)))


def check_warehouses(
    left: tuple[str, dbtcore.WarehouseIdentity], right: tuple[str, dbtcore.WarehouseIdentity]
) -> str:
    """The adapter two sides (label, warehouse) share.

    Raises:
        UsageError: A side's adapter is not one the diff supports.
        BadInputError: The sides are in different warehouses or databases.
    """
    for label, ident in (left, right):
        if ident.adapter_type not in SUPPORTED_ADAPTERS:
            raise UsageError(
                f"{label} is on {ident.adapter_type}; dot diff supports "
                f"{' and '.join(SUPPORTED_ADAPTERS)}",
                "compare builds of an environment whose profile uses one of those",
            )
    (lname, a), (rname, b) = left, right
    if (a.adapter_type, a.location, a.database) != (b.adapter_type, b.location, b.database):
        raise BadInputError(
            f"{lname} and {rname} are in different warehouses ({a.adapter_type} "
            f"{a.location or '-'} database {a.database or '-'}, {b.adapter_type} "
            f"{b.location or '-'} database {b.database or '-'}): the diff joins them in one",
            "compare two builds or environments of the same warehouse and database",
        )
    return a.adapter_type


def _identity(side: Side) -> dbtcore.WarehouseIdentity:
    try:
        return dbtcore.warehouse_identity(
            side.project_dir, side.profiles_dir, target=side.target, variables=side.variables
        )
    except dbtcore.WarehouseUnavailable as e:
        raise DiffWarehouseError(
            f"the profile of {side.label} could not be loaded: {e}",
            f"check it with: dot validate {side.spec}",
        ) from e


def _compare(
    conn: Side,
    lman: Manifest,
    rman: Manifest,
    selected: frozenset[str],
    request: DiffRequest,
    say: Callable[[str], None],
) -> tuple[ModelDiff, ...]:
    both = [uid for uid in sorted(selected) if uid in lman.nodes and uid in rman.nodes]
    data: dict[str, DataDiff] = {}
    rows = RowRequest(key=request.key, sample=request.sample) if request.rows else None
    compared = [u for u in both if rman.nodes[u].materialized != "ephemeral"
                and lman.nodes[u].materialized != "ephemeral"]  # fmt: skip
    if compared:
        try:
            with dbtcore.open_warehouse(
                conn.project_dir, conn.profiles_dir, target=conn.target, variables=conn.variables
            ) as warehouse:
                for uid in compared:
                    say(f"comparing {rman.nodes[uid].name}")
                    data[uid] = _data(warehouse, lman, rman, uid, rows)
        except dbtcore.WarehouseUnavailable as e:
            raise DiffWarehouseError(
                f"the warehouse of {conn.label} could not be reached: {e}",
                f"check the connection: dot validate {conn.spec}",
            ) from e
    return tuple(sorted((_model(uid, lman, rman, data.get(uid)) for uid in selected),
                        key=lambda m: (m.name, m.unique_id)))  # fmt: skip


def _data(
    warehouse: dbtcore.Warehouse, lman: Manifest, rman: Manifest, uid: str, rows: RowRequest | None
) -> DataDiff:
    try:
        return compare_data(warehouse, lman.nodes[uid], rman.nodes[uid], rows=rows)
    except dbtcore.WarehouseQueryFailed as e:
        return DataDiff(None, None, (f"could not be compared in the warehouse: {e}",))


def _model(uid: str, lman: Manifest, rman: Manifest, data: DataDiff | None) -> ModelDiff:
    left, right = lman.nodes.get(uid), rman.nodes.get(uid)
    node = right or left
    assert node is not None  # noqa: S101 - selected from the union of both
    presence = "both" if left and right else "added" if right else "removed"
    changes = compare_nodes(left, right) if left and right else NodeChanges()
    return ModelDiff(
        unique_id=uid,
        name=node.name,
        resource_type=node.resource_type,
        presence=presence,
        changes=changes,
        relation=data.relation if data else None,
        rows=data.rows if data else None,
        notes=data.notes if data else (),
    )


def _record(recorder: RunRecorder, store: RunStore, result: DiffResult) -> None:
    """The diff's lines, its JSON beside them, and its end, in the history."""
    for model in result.models:
        found = f": {', '.join(model.categories)}" if model.categories else ""
        recorder.line("stdout", f"{model.verdict} {model.name}{found}")
    counts = result.counts()
    verdicts = ", ".join(f"{k.removeprefix('verdict:')} {v}" for k, v in counts.items()
                         if k.startswith("verdict:"))  # fmt: skip
    recorder.line("stdout", f"verdicts: {verdicts}")
    if recorder.run_id is not None:
        path: Path = store.run_dir(recorder.run_id) / DIFF_FILE
        try:
            path.write_text(json.dumps(result.to_json(), indent=2, default=str))
        except OSError as e:
            recorder.line("stderr", f"could not keep {DIFF_FILE}: {e.strerror or e}")
    code = exit_code(result)
    failed = ", ".join(result.failed_on)
    end = RunEnd(
        RunStatus.SUCCESS if code == ExitCode.OK else RunStatus.FAILED,
        int(code),
        counts=NodeCounts(models=len(result.models)),
        error_class=None if code == ExitCode.OK else "DiffFound",
        error_message=None if code == ExitCode.OK else f"--fail-on found: {failed}",
    )
    recorder.finish(end)
