"""The `fusion` runtime: the dbt Fusion engine's binary (`dbtf`) in a child process.

Fusion is a separate program (written in Rust), not a Python package: when it is not installed,
selecting this runtime is bad input with instructions, not a stub that pretends to run.
Its output is passed through as text (its log format is not dbt-core's); results come from the
run_results.json it writes, as for the dbt CLI.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Mapping
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from datum_dot.errors import ConfigError
from datum_dot.runtimes import process
from datum_dot.runtimes.base import Runtime, RuntimeContext, RuntimeProbe, RuntimeUnavailableError
from datum_dot.runtimes.executable import ExecutableRuntime

NAMES = ("dbtf",)
INSTALL_HINT = (
    "install dbt Fusion (https://github.com/dbt-labs/dbt-fusion): "
    "curl -fsSL https://public.cdn.getdbt.com/fs/install/install.sh | sh -s -- --update, "
    "or set runtimes.fusion.path; --runtime local or --runtime subprocess work now"
)


def find_fusion(configured: Path | None = None) -> Path | None:
    """The Fusion binary: the configured path, `dbtf` on PATH, or `~/.local/bin/dbtf`."""
    if configured is not None:
        return configured if configured.is_file() else None
    for name in NAMES:
        found = shutil.which(name)
        if found:
            return Path(found)
    local = Path.home() / ".local" / "bin" / "dbtf"
    return local if local.is_file() else None


class FusionSettings(BaseModel):
    """`runtimes.fusion` in dot_environments.yml."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    path: Path | None = None
    grace_seconds: float = Field(default=process.GRACE_SECONDS, ge=0)


class FusionRuntime(ExecutableRuntime):
    """Run dbt Fusion's binary, streaming its output, in its own process group."""

    name = "fusion"
    structured_logs = False

    def __init__(
        self, executable: Path | None = None, *, grace: float = process.GRACE_SECONDS
    ) -> None:
        found = find_fusion(executable)
        if found is None:
            where = f" at {executable}" if executable else " (no `dbtf` on PATH)"
            raise RuntimeUnavailableError(f"dbt Fusion is not installed{where}", INSTALL_HINT)
        super().__init__(found, grace=grace)

    @classmethod
    def from_settings(cls, settings: Mapping[str, object], context: RuntimeContext) -> Runtime:
        """Create from `runtimes.fusion`; see `Runtime.from_settings`."""
        try:
            parsed = FusionSettings.model_validate(dict(settings))
        except ValidationError as e:
            first = e.errors()[0]
            raise ConfigError(
                f"runtimes.fusion.{'.'.join(map(str, first['loc']))}: {first['msg']}",
                "allowed keys: path, grace_seconds",
            ) from e
        del context
        return cls(parsed.path, grace=parsed.grace_seconds)

    @classmethod
    def probe(cls) -> RuntimeProbe:
        """Whether `dbtf` is installed, and its `--version`."""
        path = find_fusion()
        if path is None:
            return RuntimeProbe(
                False, "", "not installed (no `dbtf`): https://github.com/dbt-labs/dbt-fusion"
            )
        try:
            done = process.run([str(path), "--version"], timeout=30)
        except (OSError, subprocess.TimeoutExpired) as e:
            return RuntimeProbe(False, "", f"{path} --version failed: {e}")
        return RuntimeProbe(
            done.returncode == 0, done.stdout.strip() or done.stderr.strip(), str(path)
        )
