"""The import contracts of pyproject.toml (`lint-imports`): kept by the tree, broken by a plant."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import datum_dot

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = Path(datum_dot.__file__).parent
LINT_IMPORTS = Path(sys.executable).parent / "lint-imports"


def lint_imports(cwd: Path, config: Path, pythonpath: Path | None = None) -> str:
    env = {"PATH": "/usr/bin:/bin"} if pythonpath is None else {"PYTHONPATH": str(pythonpath)}
    result = subprocess.run(
        [str(LINT_IMPORTS), "--config", str(config), "--no-cache"],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    return f"exit {result.returncode}\n{result.stdout}{result.stderr}"


def test_layers_contracts_are_kept_by_the_tree() -> None:
    out = lint_imports(ROOT, ROOT / "pyproject.toml")
    assert out.startswith("exit 0\n"), out
    assert "0 broken" in out, out


def test_layers_contract_fails_on_a_planted_upward_import(tmp_path: Path) -> None:
    copy = tmp_path / "datum_dot"
    shutil.copytree(PACKAGE, copy, ignore=shutil.ignore_patterns("__pycache__"))
    spec = copy / "runs" / "spec.py"
    # the spec grammar (runs) reaching up into the builds layer
    spec.write_text(spec.read_text() + "\nfrom datum_dot.builds import survey  # noqa: E402\n")
    out = lint_imports(tmp_path, ROOT / "pyproject.toml", pythonpath=tmp_path)
    assert out.startswith("exit 1\n"), out
    assert "Layers import downward only, from the CLI to the adapters BROKEN" in out, out
    assert "datum_dot.runs is not allowed to import datum_dot.builds" in out, out
    assert "datum_dot.runs.spec -> datum_dot.builds.survey" in out, out


def test_layers_one_module_writes_the_warm_up_project() -> None:
    # The fork server and the webhook's warm worker warm dbt up through `dbtcore.warm_parse`.
    writers = sorted(
        path.relative_to(PACKAGE).as_posix()
        for path in PACKAGE.rglob("*.py")
        if '"dbt_project.yml").write_text' in path.read_text(encoding="utf-8")
    )
    assert writers == ["dbtcore/warmup.py"]
