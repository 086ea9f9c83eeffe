"""`dot --version`: the tool's version, dbt-core's and each adapter's, and the warm runner's state.

Its own module, apart from `render`, whose console helpers cost 15 ms to import: the whole
command stays under 100 ms, never imports dbt, and never waits on the runner.
"""

from __future__ import annotations

from datum_dot import __version__


def print_versions(prog: str) -> None:
    """Print the tool's version, those of dbt-core and every installed adapter, and whether a
    warm runner is up."""
    from datum_dot.cli.warm import runner_line
    from datum_dot.installed import versions

    print(f"{prog} (datum-dot) {__version__}")
    found = versions()
    if not found:
        print("dbt-core: not installed")
    for name, version in found.items():
        print(f"{name} {version}")
    print(runner_line())
