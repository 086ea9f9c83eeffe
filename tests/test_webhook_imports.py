"""Layering: FastAPI and uvicorn stay inside the webhook package and out of `dot --help`."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import datum_dot

SRC = Path(datum_dot.__file__).parent
SERVER_LIBRARIES = ("fastapi", "uvicorn", "starlette", "anyio")


def imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def test_webhook_server_libraries_are_imported_by_the_webhook_package_only() -> None:
    for path in SRC.rglob("*.py"):
        if "webhook" in path.relative_to(SRC).parts:
            continue
        heavy = {m for m in imported_modules(path) if m.split(".")[0] in SERVER_LIBRARIES}
        assert not heavy, f"{path} imports {heavy}"


def test_webhook_package_is_imported_by_the_cli_only() -> None:
    for path in SRC.rglob("*.py"):
        parts = path.relative_to(SRC).parts
        if parts[0] in ("webhook", "cli"):
            continue
        uses = {m for m in imported_modules(path) if m.startswith("datum_dot.webhook")}
        assert not uses, f"the core module {path} imports {uses}"


def test_webhook_help_loads_no_server_library() -> None:
    code = (
        "import contextlib, io, sys\n"
        "from datum_dot.cli.main import main\n"
        "for argv in (['--help'], ['webhook', '--help'], ['webhook', 'serve', '--help']):\n"
        "    with contextlib.suppress(SystemExit), contextlib.redirect_stdout(io.StringIO()):\n"
        "        main(argv)\n"
        f"print(sorted(m for m in sys.modules if m.split('.')[0] in {SERVER_LIBRARIES!r}))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert result.stdout.strip().splitlines()[-1] == "[]"
