"""The runtime contract, for every runtime registered in the `datum_dot.runtimes` entry points."""

from __future__ import annotations

import inspect
import json
import logging
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from importlib import metadata
from pathlib import Path

import pytest
from pydantic import ValidationError

from datum_dot.errors import DotError, ExitCode
from datum_dot.history import RunStore
from datum_dot.home.settings import datum_home
from datum_dot.runs.run import RunStatus
from datum_dot.runtimes import registry
from datum_dot.runtimes.base import (
    METADATA_KEYS,
    RunResult,
    Runtime,
    RuntimeContext,
    RuntimeProbe,
    RuntimeUnavailableError,
)
from datum_dot.runtimes.fusion import FusionRuntime, find_fusion
from tests.helpers.example import ExampleProject

SEED_METHODS = (
    "compile_project",
    "run_models",
    "run_tests",
    "get_manifest",
    "get_run_results",
    "supports_parallel_execution",
    "get_runtime_metadata",
)
CONTRACT = (*SEED_METHODS, "invoke", "parse_targets")
# Whether each built-in runtime may run builds in parallel: dbt-core in process holds global
# adapter state, every other runtime runs dbt in a child process or remotely.
PARALLEL = {"local": False, "subprocess": True, "cloud": True, "fusion": True}
BUILT_IN = set(PARALLEL)


def instance(name: str, tmp_path: Path) -> Runtime:
    """An instance of a registered runtime, as `execute()` would create it here."""
    settings: dict[str, object] = {}
    environ: dict[str, str] = {}
    if name == "fusion" and find_fusion() is None:
        # dbt Fusion cannot be installed from a package registry here: stand in for its binary
        # with one that hands its arguments to dbt-core's CLI, so the contract is still checked.
        shim = tmp_path / "dbtf"
        shim.write_text(f'#!/bin/sh\nexec "{Path(sys.executable).parent / "dbt"}" "$@"\n')
        shim.chmod(0o755)
        settings = {"path": str(shim)}
    if name == "cloud":
        settings = {"account_id": 1, "job_id": 2, "api_token_env": "TOKEN_VAR"}
        environ = {"TOKEN_VAR": "secret-token-value"}
    context = RuntimeContext(project_dir=tmp_path, environ=environ)
    return registry.load_runtime(name, settings, context)


def test_registry_holds_the_built_in_runtimes() -> None:
    assert set(registry.names()) >= BUILT_IN


def test_base_declares_the_seed_methods_abstract() -> None:
    assert set(CONTRACT) <= Runtime.__abstractmethods__
    for method in CONTRACT:
        doc = inspect.getdoc(getattr(Runtime, method)) or ""
        assert doc, method
        params = [p for p in inspect.signature(getattr(Runtime, method)).parameters if p != "self"]
        if params and method not in {"get_manifest", "get_run_results"}:
            assert "Args:" in doc, method
        if method not in {"supports_parallel_execution", "get_runtime_metadata"}:
            assert "Returns:" in doc or "Raises:" in doc, method


def test_base_module_imports_no_dbt() -> None:
    code = (
        "import sys, datum_dot.runtimes.base, datum_dot.runtimes.registry, datum_dot.runs.runner\n"
        "print(sorted(m for m in sys.modules if m == 'dbt' or m.startswith('dbt.')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


@pytest.mark.parametrize("name", registry.names())
def test_runtime_class_complies(name: str) -> None:
    cls = registry.runtime_class(name)
    assert issubclass(cls, Runtime)
    assert not inspect.isabstract(cls)
    assert cls.name == name
    assert isinstance(cls.probe(), RuntimeProbe)
    if name in PARALLEL:
        assert cls.parallel is PARALLEL[name], name
    else:  # a third-party runtime declares its own
        assert isinstance(cls.parallel, bool), name
    for method in CONTRACT:
        base_sig = inspect.signature(getattr(Runtime, method))
        sig = inspect.signature(getattr(cls, method))
        assert list(sig.parameters) == list(base_sig.parameters), (name, method)
        for param, base_param in zip(
            sig.parameters.values(), base_sig.parameters.values(), strict=True
        ):
            assert param.kind == base_param.kind, (name, method, param.name)
            assert param.default == base_param.default, (name, method, param.name)
        assert sig.return_annotation == base_sig.return_annotation, (name, method)


@pytest.mark.parametrize("name", registry.names())
def test_runtime_instance_metadata_and_parallelism(name: str, tmp_path: Path) -> None:
    runtime = instance(name, tmp_path)
    metadata = runtime.get_runtime_metadata()
    assert set(metadata) >= METADATA_KEYS, name
    assert metadata["type"] == name
    assert metadata["python_version"] == sys.version.split()[0]
    assert isinstance(runtime.supports_parallel_execution(), bool)
    assert runtime.supports_parallel_execution() is type(runtime).parallel is metadata["parallel"]
    text = json.dumps(metadata)  # plain JSON, and never a secret
    assert "secret-token-value" not in text
    if name in {"local", "subprocess"}:
        assert str(metadata["dbt_version"]).startswith("1.")


def test_local_is_serial_and_the_others_parallel(tmp_path: Path) -> None:
    assert instance("local", tmp_path).supports_parallel_execution() is False
    assert instance("subprocess", tmp_path).supports_parallel_execution() is True
    assert instance("cloud", tmp_path).supports_parallel_execution() is True


def test_fusion_absent_is_bad_input_with_install_hint(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Where no `dbtf` can be found (not on PATH, not in ~/.local/bin), whatever this machine has.
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setenv("HOME", str(tmp_path))
    assert find_fusion() is None
    with pytest.raises(RuntimeUnavailableError) as caught:
        registry.load_runtime("fusion", {}, RuntimeContext())
    assert caught.value.exit_code is ExitCode.BAD_INPUT
    assert "dbt Fusion is not installed" in caught.value.message
    assert "install.sh" in caught.value.hint
    assert "--runtime local" in caught.value.hint
    with pytest.raises(RuntimeUnavailableError):
        FusionRuntime(tmp_path / "dbtf")  # a configured path that does not exist
    assert FusionRuntime.probe().available is False


def test_runtime_without_settings_refuses_unknown_settings() -> None:
    with pytest.raises(DotError) as caught:
        registry.load_runtime("local", {"isolation": "sometimes"}, RuntimeContext())
    assert caught.value.exit_code is ExitCode.BAD_INPUT
    assert "runtimes.local" in caught.value.message


def test_run_result_has_the_seed_fields_and_validates() -> None:
    assert set(RunResult.model_fields) == {
        "success", "manifest_path", "run_results_path", "catalog_path", "execution_time_seconds",
        "models_run", "tests_run", "failures", "metadata",
    }  # fmt: skip
    ok = RunResult(
        success=True,
        manifest_path=Path("t/manifest.json"),
        run_results_path=Path("t/run_results.json"),
        execution_time_seconds=1.5,
        models_run=3,
        tests_run=2,
        failures=0,
    )
    assert ok.catalog_path is None
    assert ok.metadata == {}
    with pytest.raises(ValidationError):
        RunResult.model_validate({**ok.model_dump(), "models_run": -1})
    with pytest.raises(ValidationError):
        ok.success = False  # type: ignore[misc]


# --- a third-party plugin, declared as a real distribution's entry point -------------------


@pytest.fixture
def plugin_dist(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A distribution on sys.path declaring two runtimes: one that works, one that is broken."""
    (tmp_path / "dot_demo_plugin.py").write_text(
        textwrap.dedent(
            """\
            from datum_dot.runtimes.subprocess import SubprocessRuntime


            class DemoRuntime(SubprocessRuntime):
                name = "demo"
            """
        )
    )
    info = tmp_path / "dot_demo_plugin-1.2.3.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: dot-demo-plugin\nVersion: 1.2.3\n")
    (info / "entry_points.txt").write_text(
        "[datum_dot.runtimes]\ndemo = dot_demo_plugin:DemoRuntime\nbroken = dot_demo_missing:Nope\n"
        "local = dot_demo_plugin:DemoRuntime\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    registry._entry_points.cache_clear()
    yield tmp_path
    registry._entry_points.cache_clear()


def test_third_party_runtime_is_found_and_broken_ones_skipped(
    plugin_dist: Path, caplog: pytest.LogCaptureFixture
) -> None:
    assert {"demo", "broken"} <= set(registry.names())
    cls = registry.runtime_class("demo")
    assert cls.__name__ == "DemoRuntime"
    assert issubclass(cls, Runtime)
    with caplog.at_level(logging.WARNING, logger="datum_dot.runtimes.registry"):
        infos = {info.name: info for info in registry.installed()}
    assert infos["demo"].probe.available
    assert infos["demo"].package == "dot-demo-plugin 1.2.3"
    assert not infos["broken"].probe.available
    assert "failed to load" in infos["broken"].probe.detail
    assert any("broken" in record.getMessage() for record in caplog.records)
    assert infos["local"].probe.available  # a broken plugin breaks nobody else
    with pytest.raises(RuntimeUnavailableError) as caught:
        registry.runtime_class("broken")
    assert "ModuleNotFoundError" in caught.value.message
    # a plugin cannot take a built-in name: `local` stays dbt-core in process
    assert registry.runtime_class("local").__name__ == "LocalRuntime"
    assert infos["local"].target == "datum_dot.runtimes.local:LocalRuntime"
    assert any("name is built in" in record.getMessage() for record in caplog.records)


def test_built_in_runtimes_match_the_declared_entry_points() -> None:
    declared = {
        entry.name: entry.value
        for entry in metadata.entry_points(group=registry.GROUP)
        if entry.dist is not None and entry.dist.name == "datum-dot"
    }
    assert declared == registry.BUILTIN
    for name in registry.BUILTIN:
        assert registry.runtime_class(name).name == name


def test_plugin_runtime_that_raises_ends_its_run_failed(example: ExampleProject) -> None:
    plugins = example.path.parent / "plugins"
    (plugins / "dot_crash_plugin-0.1.dist-info").mkdir(parents=True)
    (plugins / "dot_crash_plugin.py").write_text(
        textwrap.dedent(
            """\
            from datum_dot.runtimes.subprocess import SubprocessRuntime


            class PluginCrash(RuntimeError):
                pass


            class CrashingRuntime(SubprocessRuntime):
                name = "crashing"

                def invoke(self, args, *, env, on_event=None, output=None, timeout=None):
                    raise PluginCrash("the plugin lost its connection")
            """
        )
    )
    info = plugins / "dot_crash_plugin-0.1.dist-info"
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: dot-crash-plugin\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(
        "[datum_dot.runtimes]\ncrashing = dot_crash_plugin:CrashingRuntime\n"
    )

    done = example.dot("build", "--runtime", "crashing", env={"PYTHONPATH": str(plugins)})

    assert done.returncode == ExitCode.RUNTIME_FAILURE, done.stderr
    errors = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, done.stderr
    assert "the plugin lost its connection" in errors[0]
    assert "Traceback" not in done.stderr
    (run,) = RunStore(datum_home()).query()
    assert run.status is RunStatus.FAILED
    assert run.exit_code == ExitCode.RUNTIME_FAILURE
    assert run.error_class == "PluginCrash"
    assert run.error_message == "the plugin lost its connection"
    log = (run.run_dir / "output.log").read_text()
    assert "Traceback (most recent call last)" in log
    assert "dot_crash_plugin.py" in log
    assert "PluginCrash: the plugin lost its connection" in log
