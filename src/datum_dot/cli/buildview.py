"""How `dot builds` and `dot clean` show builds, plans and results (text and JSON).

Names from outside (refs, schemas, paths) are wrapped in `Text`, never read as rich markup.
Times are UTC.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

from rich.text import Text

from datum_dot.builds.cleanup import CleanPlan, CleanResult, Kept, Removal
from datum_dot.builds.depscache import DepsEntry
from datum_dot.builds.protection import Guard
from datum_dot.builds.survey import Build, Foreign, Project, Survey
from datum_dot.cli import render
from datum_dot.cli.runview import console, status_text, when


def print_builds(
    project: Project, survey: Survey, guard: Mapping[Path, Guard], *, prog: str, now: datetime
) -> None:
    """One block per build, most recently used first, a total, and what dot leaves alone."""
    out = console()
    builds = survey.builds
    for entry in survey.foreign:
        out.print(_foreign_line(entry))
    if not builds:
        out.print(Text(f"no isolated builds in {project.builds_dir}"))
        return
    for build in builds:
        out.print(_headline(build, now))
        rows: list[tuple[str, str]] = [("commit", build.commit or "?")]
        for env in build.envs:
            if env.target is not None and env.parsed_only:
                rows.append(("env", f"{env.name}: parsed for --state-from only, no schema built"))
            elif env.target is not None:
                rows.append(("env", f"{env.name}: {env.target.schema_key} {env.target.schema}"))
            else:
                rows.append(("env", f"{env.name}: {env.problem}"))
        if build.last_run is not None:
            run = build.last_run
            rows.append(("last run", f"{run.run_id} ({run.start.spec or '-'})"))
        state = guard.get(build.path)
        if state is not None and state.in_use:
            rows.append(("in use", "a running dot process holds its lock"))
        rows += [("kept for", reason) for reason in (state.needed_by if state else ())]
        rows += [("broken", problem) for problem in build.problems]
        for key, value in rows:
            style = "red" if key == "broken" else "dim" if key in ("commit", "last run") else ""
            out.print(Text(f"  {key:<9}", style="bold") + Text(value, style=style))
    total = sum(b.size_bytes for b in builds)
    out.print(
        Text(
            f"{len(builds)} build(s), {size(total)} in {project.builds_dir}; remove old ones "
            f"with `{prog} clean --older-than 14d --keep 5`",
            style="dim",
        )
    )


def print_builds_json(
    project: Project, survey: Survey, guard: Mapping[Path, Guard], warnings: Iterable[str]
) -> None:
    """The builds, and the entries dot leaves alone, as one JSON document."""
    builds = survey.builds
    rows = []
    for build in builds:
        state = guard.get(build.path)
        rows.append(
            {
                **build.to_json(),
                "in_use": bool(state and state.in_use),
                "needed_by": list(state.needed_by) if state else [],
            }
        )
    render.print_json(
        {
            "project_dir": str(project.path),
            "builds_dir": str(project.builds_dir),
            "builds": rows,
            "foreign": [f.to_json() for f in survey.foreign],
            "total_bytes": sum(b.size_bytes for b in builds),
            "warnings": list(warnings),
        }
    )


def print_plan(plan: CleanPlan, *, now: datetime, dry_run: bool = True) -> None:
    """What `dot clean` will do: the whole plan for a dry run, the removals before `--yes`."""
    out = console()
    for removal in plan.removals:
        out.print(Text("remove  ", style="red") + _headline(removal.build, now))
        for drop in removal.drops:
            where = f" in {drop.database}" if drop.database else ""
            out.print(Text(f"          drop schema {drop.schema}{where} ({drop.env})"))
    for kept in plan.kept:
        out.print(_kept_line(kept))
    for entry in plan.deps:
        out.print(_deps_line("remove  ", entry))
    if not plan.removals and not plan.deps:
        out.print(Text(f"nothing to remove; {plan.remaining} build(s) stay"))
        return
    if not dry_run:
        return
    out.print(
        Text(
            f"dry run: would free {size(plan.freed_bytes)}; {plan.remaining} build(s) stay. "
            f"Nothing was removed: run again with --yes to remove",
            style="bold",
        )
    )


def print_result(result: CleanResult) -> None:
    """What `dot clean --yes` did (after `print_plan`, which showed what it would do)."""
    out = console()
    if not (result.plan.removals or result.deps_removed):
        return
    for outcome in result.drops:
        drop = outcome.drop
        name = drop.schema or outcome.planned.schema
        style = "green" if drop.outcome in ("dropped", "absent") else "red"
        note = {"dropped": "dropped", "absent": "not found (nothing to drop)"}.get(
            drop.outcome, f"{drop.outcome} (see below)"
        )
        out.print(
            Text("schema  ", style=style)
            + Text(f"{outcome.short_hash}  {name} ({outcome.planned.env}): {note}")
        )
    for build in result.removed:
        out.print(
            Text("removed ", style="green") + Text(f"{build.short_hash}  {size(build.size_bytes)}")
        )
    for kept in result.kept[len(result.plan.kept) :]:  # the plan's were shown with it
        out.print(_kept_line(kept))
    for failure in result.failures:
        out.print(
            Text("failed  ", style="red")
            + Text(f"{failure.build.short_hash}  {failure.message}; the build was kept")
        )
    for entry in result.deps_removed:
        out.print(_deps_line("removed ", entry))
    out.print(
        Text(
            f"freed {size(result.freed_bytes)}; {len(result.removed)} build(s) removed",
            style="bold",
        )
    )


def print_plan_json(plan: CleanPlan) -> None:
    """The plan as one JSON document."""
    render.print_json({"dry_run": True, **_plan_json(plan)})


def print_result_json(result: CleanResult) -> None:
    """The result as one JSON document."""
    render.print_json(
        {
            "dry_run": False,
            **_plan_json(result.plan),
            "removed": [b.short_hash for b in result.removed],
            "schemas": [
                {
                    "short_hash": o.short_hash,
                    "env": o.planned.env,
                    "schema": o.drop.schema or o.planned.schema,
                    "database": o.drop.database,
                    "outcome": o.drop.outcome,
                    "error": o.drop.error or None,
                }
                for o in result.drops
            ],
            "kept": [_kept_json(k) for k in result.kept],
            "failures": [
                {"short_hash": f.build.short_hash, "error": f.message} for f in result.failures
            ],
            "deps_removed": [str(d.path) for d in result.deps_removed],
            "freed_bytes": result.freed_bytes,
            "warnings": list(dict.fromkeys([*result.plan.warnings, *result.warnings])),
        }
    )


def warn(message: str) -> None:
    """A warning on stderr."""
    render.warn(message)


def size(n: int) -> str:
    """Bytes for people: `512 B`, `3.4 KiB`, `12.0 MiB`, `1.2 GiB`."""
    value = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{int(value)} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} TiB"  # pragma: no cover - the loop returns at GiB


def ago(moment: datetime, now: datetime) -> str:
    """`5m ago`, `3h ago`, `14d ago`."""
    seconds = max((now - moment).total_seconds(), 0)
    for unit, length in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= length:
            return f"{int(seconds // length)}{unit} ago"
    return "just now"


def _headline(build: Build, now: datetime) -> Text:
    refs = ", ".join(build.refs) or "-"
    envs = ", ".join(env.name for env in build.envs) or "-"
    line = Text(build.short_hash, style="bold") + Text(
        f"  refs {refs}  envs {envs}  {size(build.size_bytes)}  last used "
        f"{when(build.last_used)} ({ago(build.last_used, now)})"
    )
    if build.last_run is not None:
        line += Text("  ") + status_text(build.last_run.status)
    if build.is_broken:
        line += Text("  BROKEN", style="red")
    return line


def _kept_line(kept: Kept) -> Text:
    style = "yellow" if kept.warning else "cyan"
    return Text("keep    ", style=style) + Text(f"{kept.build.short_hash}  {kept.reason}")


def _foreign_line(entry: Foreign) -> Text:
    return Text("foreign  ", style="yellow") + Text(
        f"{entry.path.name}  not made by dot, left alone: {entry.reason}"
    )


def _deps_line(prefix: str, entry: DepsEntry) -> Text:
    return Text(prefix, style="red") + Text(
        f"package cache {entry.path.name}  {size(entry.size_bytes)} (no build uses it)"
    )


def _plan_json(plan: CleanPlan) -> dict[str, Any]:
    return {
        "project_dir": str(plan.project.path),
        "remove": [_removal_json(r) for r in plan.removals],
        "kept": [_kept_json(k) for k in plan.kept],
        "deps": [{"path": str(d.path), "size_bytes": d.size_bytes} for d in plan.deps],
        "remaining": plan.remaining,
        "drop_schemas": plan.drop_schemas is not None,
        "freed_bytes": plan.freed_bytes,
        "foreign": [f.to_json() for f in plan.foreign],
        "warnings": list(plan.warnings),
    }


def _removal_json(removal: Removal) -> dict[str, Any]:
    return {
        **removal.build.to_json(),
        "drop": [{"env": d.env, "schema": d.schema, "database": d.database} for d in removal.drops],
    }


def _kept_json(kept: Kept) -> dict[str, Any]:
    return {"short_hash": kept.build.short_hash, "reason": kept.reason, "warning": kept.warning}
