"""The two sides of a diff: which manifest, warehouse connection and commit each spec names.

`env@ref` is an isolated build: its manifest in `.dot/build/<hash>/env/<env>/target/`, its
relations in the schema its isolated profile names. `env` is the live environment: its
schema, with the manifest of its newest successful run from the run history where there is one
(adr/0017), otherwise the checkout's `target/manifest.json`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from datum_dot.errors import BadInputError
from datum_dot.runs.plan import OptionsLookup
from datum_dot.runs.planner import make_plan, project_name, working_tree_commit
from datum_dot.runs.run import RunRequest
from datum_dot.runs.spec import Spec
from datum_dot.runs.state import StateHistory

MANIFEST = "manifest.json"


class SideNotBuiltError(BadInputError):
    """A side of a diff has no manifest: it was never built."""


@dataclass(frozen=True)
class Side:
    """One side of a diff, planned (nothing was run or connected).

    Attributes:
        spec: The spec as parsed.
        kind: `build` (an isolated build) or `live` (the environment's own schema).
        env_name: The environment's name.
        commit: The commit its manifest was built from, where known.
        manifest: Its manifest.json (may not exist yet: see `built`).
        built: Whether the manifest exists.
        run_id: The history run whose manifest is used (live sides), if any.
        project_dir: The dbt project the adapter loads (the build's worktree for `env@ref`).
        profiles_dir: The folder of the profiles.yml to connect with.
        target: The profile's target, or None for its default.
        variables: Vars for rendering the profile.
        source: Where the manifest came from, for people.
    """

    spec: Spec
    kind: Literal["build", "live"]
    env_name: str
    commit: str | None
    manifest: Path
    built: bool
    project_dir: Path
    profiles_dir: Path
    target: str | None
    variables: Mapping[str, Any] = field(default_factory=dict)
    run_id: str | None = None
    source: str = ""

    @property
    def label(self) -> str:
        """The spec as the user wrote it (`prod@v1.0`), or `(default)`."""
        return str(self.spec) or "(default)"

    def to_json(self) -> dict[str, Any]:
        """The side as JSON-ready data (the diff's `left` and `right`)."""
        return {
            "spec": str(self.spec),
            "kind": self.kind,
            "environment": self.env_name,
            "commit": self.commit,
            "manifest": str(self.manifest),
            "run_id": self.run_id,
            "source": self.source,
        }


def plan_side(
    spec: Spec, project_dir: Path, *, options_for: OptionsLookup, states: StateHistory | None
) -> Side:
    """Plan one side of a diff: where its manifest is and how to connect to its relations.

    Raises:
        DotError: As `make_plan` (an unknown environment, a ref that does not resolve).
    """
    plan = make_plan(
        RunRequest(command=("build",), spec=spec, project_dir=project_dir),
        options_for=options_for,
        states=states,
    )
    name = plan.env.name or str(spec.env or "")
    if plan.isolated is not None:
        manifest = plan.target_path / MANIFEST
        return Side(
            spec=spec,
            kind="build",
            env_name=name,
            commit=plan.isolated.commit,
            manifest=manifest,
            built=manifest.is_file(),
            project_dir=plan.project_dir,
            profiles_dir=plan.profiles_dir,
            target=plan.isolated.profile.target,
            variables=plan.vars,
            source=f"isolated build {plan.isolated.short_hash}, schema "
            f"{plan.isolated.profile.schema_after}",
        )
    target = _target(plan.dbt_args)
    found = states.live_state(project_name(plan.project_dir), name).found if states else None
    if found is not None:
        manifest, commit = found.state_dir / MANIFEST, found.commit
        source = f"run {found.run_id} ({found.finished_at:%Y-%m-%d %H:%M} UTC)"
    else:
        manifest, commit = plan.target_path / MANIFEST, working_tree_commit(plan.project_dir)
        source = f"the checkout's {manifest.parent.name}/{MANIFEST}"
    return Side(
        spec=spec,
        kind="live",
        env_name=name,
        commit=commit,
        manifest=manifest,
        built=manifest.is_file(),
        project_dir=plan.project_dir,
        profiles_dir=plan.profiles_dir,
        target=target,
        variables=plan.vars,
        run_id=found.run_id if found is not None else None,
        source=source,
    )


def require_built(side: Side, *, prog: str, other: str) -> None:
    """Refuse a side that was never built, naming the command that builds it.

    Raises:
        SideNotBuiltError: Its manifest does not exist.
    """
    if side.built:
        return
    what = (
        f"{side.label} has not been built: {side.manifest} does not exist"
        if side.kind == "build"
        else f"{side.label} has no successful run in the history and no {side.manifest}"
    )
    raise SideNotBuiltError(
        what, f"build it first: {prog} build {side.spec}, or pass --build ({other})"
    )


def _target(argv: tuple[str, ...]) -> str | None:
    for i, arg in enumerate(argv):
        if arg in ("--target", "-t") and i + 1 < len(argv):
            return argv[i + 1]
        if arg.startswith("--target="):
            return arg.partition("=")[2]
    return None


def plan_sides(
    left: Spec, right: Spec, project_dir: Path, *, states: StateHistory | None
) -> tuple[Side, Side]:
    """Plan both sides of a diff, with dbt's own option lists (this imports dbt).

    Raises:
        DotError: As `make_plan`.
    """
    from datum_dot.runs.commands import command_options

    return (
        plan_side(left, project_dir, options_for=command_options, states=states),
        plan_side(right, project_dir, options_for=command_options, states=states),
    )
