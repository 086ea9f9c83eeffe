"""Checks of dbt itself: the installation, the adapter, and (on request) the connection."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from datum_dot import dbtcore
from datum_dot.errors import DotError
from datum_dot.preflight.model import Check, Status

CONNECTION_TIMEOUT = 120.0
_TAIL_LINES = 3


def dbt_executable() -> Path | None:
    """The dbt CLI of this tool's Python environment, else the first `dbt` on PATH."""
    from datum_dot.runtimes.subprocess import default_dbt

    beside = default_dbt()
    if beside.is_file():
        return beside
    found = shutil.which("dbt")
    return Path(found) if found else None


def check_dbt(runtime: str) -> Check:
    """dbt-core is installed, the runtime can run here, and where the dbt CLI is."""
    from datum_dot.runtimes import registry

    name = "dbt"
    core = dbtcore.versions().get("dbt-core")
    if core is None:
        return Check(name, Status.FAIL, "dbt-core is not installed", "pip install dbt-core")
    executable = dbt_executable()
    where = f"executable {executable}" if executable else "no dbt executable"
    try:
        probe = registry.runtime_class(runtime).probe()
    except DotError as e:
        return Check(name, Status.FAIL, f"dbt-core {core}; {e.message}", e.hint)
    if not probe.available:
        fix = f"install what runtime '{runtime}' needs, or: dot config set runtime local"
        return Check(name, Status.FAIL, f"runtime '{runtime}': {probe.detail}", fix)
    detail = f"dbt-core {core}; {where}; runtime '{runtime}' ({probe.version or probe.detail})"
    if executable is None:
        fix = "pip install dbt-core in this environment (the subprocess runtime needs the CLI)"
        return Check(name, Status.WARN, detail, fix)
    return Check(name, Status.OK, detail)


def check_adapter(adapter_type: str | None) -> Check:
    """The target's adapter plugin imports, with its version."""
    name = "adapter"
    if adapter_type is None:
        return Check(name, Status.SKIP, "needs the target")
    probe = dbtcore.probe_adapter(adapter_type)
    if not probe.importable:
        installed = f" ({probe.package} {probe.version} is installed)" if probe.version else ""
        detail = f"dbt.adapters.{adapter_type} does not import{installed}: {probe.error}"
        return Check(name, Status.FAIL, detail, f"pip install {probe.package}")
    return Check(name, Status.OK, f"{probe.package} {probe.version or '(version unknown)'}")


def check_connection(
    *,
    requested: bool,
    project_dir: Path,
    profiles_dir: Path | None,
    target: str | None,
) -> Check:
    """`dbt debug --connection` against the target (only when asked: it reaches the warehouse).

    This is a probe, not a run: it is not recorded in the run history, and its output is
    captured to report the failure, not streamed.
    """
    from datum_dot.runtimes import process

    name = "connection"
    if not requested:
        return Check(name, Status.SKIP, "pass --connection to test it with dbt debug")
    executable = dbt_executable()
    if profiles_dir is None or target is None or executable is None:
        return Check(name, Status.SKIP, "needs profiles.yml, the target and the dbt executable")
    argv = [
        *(str(executable), "debug", "--connection", "--project-dir", str(project_dir)),
        *("--profiles-dir", str(profiles_dir), "--target", target),
    ]
    command = " ".join(["dbt", *argv[1:]])
    try:
        result = process.run(argv, cwd=project_dir, timeout=CONNECTION_TIMEOUT)
    except (OSError, subprocess.TimeoutExpired) as e:
        return Check(name, Status.FAIL, f"{command}: {e}", f"run it by hand: {command}")
    if result.returncode == 0:
        return Check(name, Status.OK, f"target '{target}' connects (dbt debug --connection)")
    lines = [line.strip() for line in (result.stdout + result.stderr).splitlines() if line.strip()]
    tail = " | ".join(lines[-_TAIL_LINES:]) or f"exit {result.returncode}"
    fix = f"check target '{target}' in {profiles_dir / 'profiles.yml'}; details: {command}"
    return Check(name, Status.FAIL, f"dbt debug failed: {tail}", fix)
