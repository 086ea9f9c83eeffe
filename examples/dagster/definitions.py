"""Dagster definitions for the dbt project in this folder, built as tag v1.2 has it.

Load them from the dbt project's folder: `dagster dev -f definitions.py`.
"""

import dagster as dg

from datum_dot.dagster import DatumDotResource, dot_assets

dot = DatumDotResource(project_dir=".", runtime="local")

defs = dg.Definitions(
    assets=[dot_assets(dot, "prod@v1.2")],
    resources={"dot": dot},
)
