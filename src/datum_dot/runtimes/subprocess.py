"""The `subprocess` runtime: the dbt CLI in a child process.

By default the dbt executable of the same Python environment as this tool (next to
`sys.executable`), not whichever `dbt` comes first on PATH; `runtimes.subprocess.dbt_path`
overrides it. Every invocation is its own process, so invocations may run in parallel, and a
timeout or a cancellation stops dbt and everything it started.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from datum_dot import dbtcore
from datum_dot.errors import ConfigError
from datum_dot.runtimes import process
from datum_dot.runtimes.base import Runtime, RuntimeContext, RuntimeProbe
from datum_dot.runtimes.executable import ExecutableRuntime, require_executable


def default_dbt() -> Path:
    """The `dbt` script installed next to the running Python."""
    return Path(sys.executable).parent / "dbt"


class SubprocessSettings(BaseModel):
    """`runtimes.subprocess` in dot_environments.yml.

    Attributes:
        dbt_path: The dbt executable (default: the one next to this tool's Python).
        grace_seconds: Between asking a timed-out dbt to stop and killing it.
        timestamps: Prefix each output line with `[HH:MM:SS]`.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    dbt_path: Path | None = None
    grace_seconds: float = Field(default=process.GRACE_SECONDS, ge=0)
    timestamps: bool = True


class SubprocessRuntime(ExecutableRuntime):
    """Run the dbt CLI in a child process (parallel-safe, cancellable)."""

    name = "subprocess"
    supports_dbt_retry = True

    def __init__(
        self,
        executable: Path | None = None,
        *,
        grace: float = process.GRACE_SECONDS,
        timestamps: bool = True,
    ) -> None:
        path = executable or default_dbt()
        require_executable(
            path,
            what="the subprocess runtime needs the dbt CLI",
            hint="install dbt-core in this environment, or set runtimes.subprocess.dbt_path",
        )
        super().__init__(path, grace=grace, timestamps=timestamps)

    @classmethod
    def from_settings(cls, settings: Mapping[str, object], context: RuntimeContext) -> Runtime:
        """Create from `runtimes.subprocess`; see `Runtime.from_settings`."""
        try:
            parsed = SubprocessSettings.model_validate(dict(settings))
        except ValidationError as e:
            first = e.errors()[0]
            raise ConfigError(
                f"runtimes.subprocess.{'.'.join(map(str, first['loc']))}: {first['msg']}",
                "allowed keys: dbt_path, grace_seconds, timestamps",
            ) from e
        del context
        return cls(parsed.dbt_path, grace=parsed.grace_seconds, timestamps=parsed.timestamps)

    def version(self) -> str:
        """dbt-core's version; read from the installed package for the default executable."""
        if self.executable == default_dbt():
            return dbtcore.versions().get("dbt-core", "")
        return super().version()

    @classmethod
    def probe(cls) -> RuntimeProbe:
        """The default dbt executable and the version of dbt-core beside it."""
        path = default_dbt()
        if not path.is_file():
            return RuntimeProbe(False, "", f"no dbt executable at {path}")
        version = dbtcore.versions().get("dbt-core", "")
        return RuntimeProbe(True, f"dbt-core {version}" if version else "", str(path))
