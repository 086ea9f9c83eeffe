"""Checks of dbt itself: the installation, the adapter, and (on request) the connection."""

from __future__ import annotations

import contextlib
import io
import shutil
from collections.abc import Mapping
from pathlib import Path

from datum_dot import dbtcore
from datum_dot.errors import DotError
from datum_dot.preflight.model import Check, Status
from datum_dot.runs.run import RunRequest, RunStatus
from datum_dot.runs.spec import Spec
from datum_dot.runtimes import registry
from datum_dot.runtimes.subprocess import default_dbt

CONNECTION_TIMEOUT = 120.0
_TAIL_LINES = 3


def dbt_executable() -> Path | None:
    """The dbt CLI of this tool's Python environment, else the first `dbt` on PATH."""
    beside = default_dbt()
    if beside.is_file():
        return beside
    found = shutil.which("dbt")
    return Path(found) if found else None


def check_dbt(runtime: str) -> Check:
    """dbt-core is installed, the runtime can run here, and where the dbt CLI is."""
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
    env_name: str | None,
    profiles_dir: Path | None,
    target: str | None,
    environ: Mapping[str, str],
) -> Check:
    """`dbt debug --connection` against the target (only when asked: it reaches the warehouse).

    The probe is a run like any other: it goes through `execute()` (in process, with the
    environment's settings) and is recorded in the run history, so a failed connection keeps
    dbt's whole output. Only the last lines are shown here; the table or the JSON stays clean.
    """
    # lazy: the run path (history, runtimes) loads only for the connection check
    from datum_dot.execute import execute

    name = "connection"
    if not requested:
        return Check(name, Status.SKIP, "not tested: pass --connection to test it with dbt debug")
    if profiles_dir is None or target is None:
        return Check(name, Status.SKIP, "needs profiles.yml and the target")
    request = RunRequest(
        command=("debug",),
        spec=Spec(env=env_name),
        project_dir=project_dir,
        dbt_args=("--connection", "--target", target, "--profiles-dir", str(profiles_dir)),
        timeout=CONNECTION_TIMEOUT,
        environ=environ,
        runtime="local",
    )
    command = f"dot debug{f' {env_name}' if env_name else ''} -- --connection --target {target}"
    captured = io.StringIO()
    try:
        with contextlib.redirect_stdout(captured), contextlib.redirect_stderr(captured):
            record = execute(request)
    except DotError as e:
        return Check(name, Status.FAIL, f"dbt debug could not run: {e.message}", e.hint)
    details = f"dot logs {record.run_id}" if record.run_id else command
    if record.status is RunStatus.SUCCESS:
        return Check(name, Status.OK, f"target '{target}' connects (dbt debug --connection)")
    lines = [line.strip() for line in captured.getvalue().splitlines() if line.strip()]
    tail = " | ".join(lines[-_TAIL_LINES:]) or record.error or f"exit {record.dbt_exit_code}"
    fix = f"check target '{target}' in {profiles_dir / 'profiles.yml'}; details: {details}"
    return Check(name, Status.FAIL, f"dbt debug failed: {tail}", fix)
