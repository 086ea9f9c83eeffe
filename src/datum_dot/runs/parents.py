"""Before an isolated build with a selection: are the selection's parents in the warehouse?

An isolated build writes to a schema of its own, empty on the commit's first build. A selection
that leaves out a parent (`-s stg_orders` without the seed it reads, `dot test` before any build,
`dot run` before the seeds) would make dbt fail with "Table ... does not exist" after it has
started. Without `--defer`, dbt has nowhere else to read a parent from, so the run stops before
dbt starts and says which parents are missing and how to get them.

Exact, not guessed: the selection is dbt's own (`dbt ls` on the manifest, with the run's
selection options), and a parent counts as present when its relation exists in the warehouse
(built before at this commit, or a seed already loaded). Sources are never built by dot and are
not checked; ephemeral parents are looked through to their own parents. A plain `dot build`
selects every parent, so it costs nothing; otherwise the check is a partial parse, an `ls` and
one catalog query per schema (about half a second on the example project).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

from datum_dot import dbtcore
from datum_dot.errors import BadInputError
from datum_dot.runs import commands
from datum_dot.runs.plan import BuildPlan

CHECKED_COMMANDS = frozenset({"build", "run", "test", "snapshot"})
# What `dbt ls` must be told to list what the command itself would run.
_RESOURCE_TYPES = {"run": ("model",), "test": ("test",), "snapshot": ("snapshot",)}
# Options after which `dbt build` may leave a parent out.
_NARROWING = frozenset({"--select", "-s", "--models", "--model", "-m", "--exclude",
                        "--selector", "--resource-type", "--resource-types",
                        "--exclude-resource-type", "--exclude-resource-types"})  # fmt: skip
_BUILT = frozenset({"model", "seed", "snapshot"})
# Unit tests read fixtures, not their model's parents; they are left to dbt.
_EXECUTED = frozenset({"model", "seed", "snapshot", "test"})
_SHOWN = 10


class MissingParentsError(BadInputError):
    """A selection's parents are not in the isolated schema, and there is no `--defer`."""


def needs_check(plan: BuildPlan) -> bool:
    """Whether the run could reach a parent its own schema lacks (isolated, no `--defer`)."""
    if plan.isolated is None or plan.baseline is not None or not plan.command:
        return False
    command = plan.command[0]
    if command not in CHECKED_COMMANDS or "--defer" in plan.dbt_args:
        return False
    return command != "build" or any(_name(arg) in _NARROWING for arg in plan.dbt_args)


def missing_parents(plan: BuildPlan) -> list[dbtcore.GraphNode] | None:
    """The parents the run's selection reads but does not build and the warehouse lacks.

    Returns:
        The missing parents (empty: nothing is missing); None when dbt or the warehouse could
        not answer (dbt's own run then reports what is wrong).

    Raises:
        KeyboardInterrupt: The parse was interrupted.
    """
    iso = plan.isolated
    assert iso is not None  # noqa: S101 - only isolated plans are checked
    try:
        graph = dbtcore.select_graph(plan.parse_args, ls_arguments(plan), env=plan.dbt_env)
    except dbtcore.DbtParseFailed:
        return None
    needed = list(_parents_outside(graph))
    if not needed:
        return []
    places = sorted({(p.database, p.schema) for p in needed})
    existing = dbtcore.existing_relations(
        plan.project_dir, plan.profiles_dir, target=iso.profile.target,
        variables=plan.vars, schemas=places,
    )  # fmt: skip
    if existing is None:
        return None
    return [p for p in needed if _key(p) not in existing]


def raise_for_missing(plan: BuildPlan, missing: Sequence[dbtcore.GraphNode]) -> None:
    """Stop the run when parents are missing, saying which and what to do.

    Raises:
        MissingParentsError: Listing each missing parent and where dbt would look for it.
    """
    if not missing:
        return
    shown = sorted(missing, key=lambda p: p.unique_id)[:_SHOWN]
    lines = [f"  {p.unique_id} ({p.database}.{p.schema}.{p.identifier})" for p in shown]
    if len(missing) > len(shown):
        lines.append(f"  ... and {len(missing) - len(shown)} more")
    schemas = ", ".join(sorted({p.schema for p in missing}))
    raise MissingParentsError(
        f"{len(missing)} parent(s) of the selection are not built in {schemas} and are not "
        "selected, so dbt would fail on them; nothing was run:\n" + "\n".join(lines),
        _hint(plan),
    )


def ls_arguments(plan: BuildPlan) -> list[str]:
    """`dbt ls` arguments that select what the plan's command would run (dbt's own rules)."""
    accepted = commands.command_options(("ls",))
    out: list[str] = []
    for option in _options(plan.dbt_args[len(plan.command) :]):
        if _name(option[0]) in accepted:
            out += option
    types = _RESOURCE_TYPES.get(plan.command[0])
    if types and not any(_name(a) in {"--resource-type", "--resource-types"} for a in out):
        out += ["--resource-type", *types]
    return out


def _options(args: Sequence[str]) -> Iterator[list[str]]:
    """Each option with the words up to the next option (its values: `-s a b`, `--threads 4`).

    `build`, `run`, `test` and `snapshot` take no positional arguments, so every word that is
    not an option belongs to the option before it.
    """
    i = 0
    while i < len(args):
        end = i + 1
        while end < len(args) and not args[end].startswith("-"):
            end += 1
        yield list(args[i:end])
        i = end


def _parents_outside(graph: dbtcore.SelectedGraph) -> Iterator[dbtcore.GraphNode]:
    seen: set[str] = set()
    stack = [
        parent
        for uid in graph.selected
        if (node := graph.nodes.get(uid)) is not None
        and node.resource_type in _EXECUTED
        and node.materialized != "ephemeral"
        for parent in node.parents
    ]
    while stack:
        uid = stack.pop()
        node = graph.nodes.get(uid)
        if uid in seen or node is None:  # None: a source, which dot never builds
            continue
        seen.add(uid)
        if node.materialized == "ephemeral":  # compiled into its children: its parents count
            stack.extend(node.parents)
        elif node.resource_type in _BUILT and uid not in graph.selected:
            yield node


def _key(node: dbtcore.GraphNode) -> tuple[str, str, str]:
    return (node.database.lower(), node.schema.lower(), node.identifier.lower())


def _name(arg: str) -> str:
    return arg.partition("=")[0]


def _hint(plan: BuildPlan) -> str:
    run = f"dot {' '.join(plan.command)} {plan.spec}"
    user = _user_args(plan)
    after = f" -- {' '.join(user)}" if user else ""
    defer = f"defer to a build that has them: {run} --defer {plan.env.name}@<a ref built before>"
    widened = _with_parents(user)
    if widened != user:
        return f"{defer}{after}; or select them too: {run} -- {' '.join(widened)}"
    return f"{defer}{after}; or build them first: dot build {plan.spec}"


def _user_args(plan: BuildPlan) -> list[str]:
    """The selection options of the run, as the user would type them again."""
    out: list[str] = []
    for option in _options(plan.dbt_args[len(plan.command) :]):
        if _name(option[0]) in _NARROWING:
            out += option
    return out


def _with_parents(args: list[str]) -> list[str]:
    out: list[str] = []
    selecting = False
    for word in args:
        if word.startswith("-"):
            selecting = _name(word) in {"--select", "-s", "--models", "--model", "-m"}
            out.append(word)
        elif selecting:
            out.append(
                ",".join(p if p.startswith(("+", "@")) else f"+{p}" for p in word.split(","))
            )
        else:
            out.append(word)
    return out
