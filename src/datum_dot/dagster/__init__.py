"""Dagster integration (`pip install 'datum-dot[dagster]'`): dbt assets pinned to a commit.

- `DatumDotResource`: the dbt project and the runtime that runs dbt, as a Dagster resource.
- `dot_assets`: a multi-asset of the models, seeds and snapshots of the commit a spec pins,
  keyed as dagster-dbt keys them; materializing runs `build` through the API (isolated at that
  commit, recorded with trigger `dagster`).
- `dot_schedule`: a dot schedule as a Dagster job and schedule (what
  `dot schedule export NAME --to dagster` writes).

Example:
    >>> import dagster as dg  # doctest: +SKIP
    >>> from datum_dot.dagster import DatumDotResource, dot_assets  # doctest: +SKIP
    >>> dot = DatumDotResource(project_dir="jaffle")  # doctest: +SKIP
    >>> defs = dg.Definitions(assets=[dot_assets(dot, "prod@v1.2")],
    ...                       resources={"dot": dot})  # doctest: +SKIP

The core of datum-dot never imports this package: only a Dagster code location does.
"""

from __future__ import annotations

try:
    import dagster  # type: ignore[import-not-found, unused-ignore]  # noqa: F401
except ModuleNotFoundError as e:
    # the extra is optional: say how to get it rather than which module is missing
    raise ModuleNotFoundError(
        "datum_dot.dagster needs Dagster: pip install 'datum-dot[dagster]'", name="dagster"
    ) from e

from datum_dot.dagster.assets import dot_assets
from datum_dot.dagster.resource import DagsterProject, DatumDotResource
from datum_dot.dagster.schedule import dot_schedule

__all__ = ["DagsterProject", "DatumDotResource", "dot_assets", "dot_schedule"]
