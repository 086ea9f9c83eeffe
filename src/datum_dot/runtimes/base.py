"""The runtime interface: how `execute()` asks something to run dbt.

This module imports no dbt code, so that runtimes which never touch dbt-core (dbt Cloud, dbt
Fusion) can be loaded without it.
"""

from __future__ import annotations

import abc
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

EventHandler = Callable[[str, Mapping[str, Any]], None]


@dataclass(frozen=True)
class NodeTarget:
    """Where one node would be written (for the isolation check).

    Attributes:
        unique_id: dbt's id of the node (`model.shop.orders`).
        resource_type: model, seed or snapshot.
        database: The database (catalog, project) it is written to.
        schema: The schema (dataset) it is written to.
        path: The node's file, relative to the project.
        database_overridden: The node sets its own `database` config.
    """

    unique_id: str
    resource_type: str
    database: str
    schema: str
    path: str
    database_overridden: bool = False


@dataclass(frozen=True)
class InvocationResult:
    """The outcome of running one dbt command.

    Attributes:
        success: dbt's own verdict.
        dbt_exit_code: The exit code dbt gave (or would have given from its CLI).
        statuses: The status of each node result.
        error: dbt's error message for an unhandled failure, if any.
        interrupted: The run was stopped by Ctrl-C or a signal.
    """

    success: bool
    dbt_exit_code: int
    statuses: tuple[str, ...] = ()
    error: str | None = None
    interrupted: bool = False


class Runtime(abc.ABC):
    """Something that runs dbt commands."""

    name: str = ""

    @abc.abstractmethod
    def invoke(
        self,
        args: Sequence[str],
        *,
        env: Mapping[str, str],
        on_event: EventHandler | None = None,
    ) -> InvocationResult:
        """Run one dbt command.

        Args:
            args: dbt's argv without the leading `dbt`.
            env: Extra environment variables for dbt.
            on_event: Called with each dbt event's name and data, where the runtime has events.

        Returns:
            The outcome.
        """

    @abc.abstractmethod
    def parse_targets(self, args: Sequence[str], *, env: Mapping[str, str]) -> list[NodeTarget]:
        """Parse the project and list where each materialized node would be written.

        Args:
            args: Project, profile, target, vars and path arguments for `dbt parse`.
            env: Extra environment variables for dbt.

        Returns:
            One entry per model, seed and snapshot that is not ephemeral or disabled.

        Raises:
            DbtError: dbt could not parse the project.
        """
