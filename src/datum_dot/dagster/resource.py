"""`DatumDotResource`: the dbt project and its runtime, given to Dagster as a resource.

Runs started through it go through `execute()` as the API's do, recorded with trigger `dagster`.
"""

# mypy: allow-subclassing-any, allow-untyped-decorators
# The main environment type-checks this package without Dagster installed (Dagster's types
# are Any there); scripts/test-dagster checks it against Dagster's own types.

from __future__ import annotations

import dagster as dg  # type: ignore[import-not-found, unused-ignore]

from datum_dot.api.project import Project


class DagsterProject(Project):
    """A `Project` whose runs the history records with trigger `dagster`."""

    trigger = "dagster"


class DatumDotResource(dg.ConfigurableResource["DatumDotResource"]):
    """The dbt project datum-dot runs for Dagster, and the runtime that runs dbt.

    Attributes:
        project_dir: The dbt project folder (holding dbt_project.yml), or a folder inside it.
        runtime: `local`, `subprocess`, `cloud`, `fusion` or a plugin's name; None: the
            environment's, else `local`.
        home: The history folder; None: `$DATUM_HOME` (else `~/.datum`), as for `dot`.

    Example:
        >>> dot = DatumDotResource(project_dir="jaffle", runtime="subprocess")  # doctest: +SKIP
    """

    project_dir: str
    runtime: str | None = None
    home: str | None = None

    def project(self) -> DagsterProject:
        """The project, its runs recorded with trigger `dagster`.

        Raises:
            ProjectNotFoundError: No dbt_project.yml in `project_dir` or above it (exit 20).
        """
        return DagsterProject(self.project_dir, home=self.home)

    def supports_parallel_execution(self, spec: str) -> bool:
        """Whether the runtime this resource runs `spec` with can run two dbt commands in one
        process at once (the in-process `local` runtime cannot: dbt keeps global state).

        Raises:
            BadInput: The spec does not plan (exit code 20).
        """
        return self.project().runtime(self.runtime, spec=spec).supports_parallel_execution()

    def runtime_name(self, spec: str) -> str:
        """The runtime's name for `spec`: this resource's, else the environment's."""
        return self.project().runtime(self.runtime, spec=spec).name
