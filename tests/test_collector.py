"""dbt's import with the garbage collector paused and frozen, only in a process that asks."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

from datum_dot.runtimes import forked


def _python(code: str) -> list[str]:
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    return done.stdout.split()


def test_a_process_that_does_not_ask_keeps_its_collector() -> None:
    out = _python("""
        import gc
        from datum_dot.dbtcore.collector import importing_dbt
        with importing_dbt():
            paused = not gc.isenabled()
            import decimal
        print(paused, gc.isenabled(), gc.get_freeze_count())
    """)
    assert out == ["False", "True", "0"]


def test_the_first_import_in_a_process_that_asks_runs_paused_and_is_frozen() -> None:
    out = _python("""
        import gc
        from datum_dot.dbtcore.collector import importing_dbt, own_collector
        own_collector()
        with importing_dbt():
            paused = not gc.isenabled()
            import decimal
        frozen = gc.get_freeze_count()
        with importing_dbt():
            again = not gc.isenabled()
        print(paused, gc.isenabled(), frozen > 1000, again, gc.get_freeze_count() == frozen)
    """)
    assert out == ["True", "True", "True", "False", "True"]


def test_a_failed_import_leaves_the_collector_as_it_was() -> None:
    out = _python("""
        import gc
        from datum_dot.dbtcore.collector import importing_dbt, own_collector
        own_collector()
        gc.disable()  # the caller's own choice stands
        try:
            with importing_dbt():
                import no_such_module_here
        except ImportError:
            pass
        first = gc.isenabled()
        print(first)
    """)
    assert out == ["False"]


def test_the_command_line_asks_for_a_dbt_command_only(tmp_path: Path) -> None:
    code = """
        import sys
        from datum_dot.cli.main import main
        from datum_dot.dbtcore.collector import owns_collector
        sys.argv = ["dot", *{words!r}]
        try:
            main()
        except SystemExit:
            pass
        print(owns_collector(), file=sys.stderr)
    """
    env = {"DOT_WARM": "0", "PATH": "/usr/bin:/bin", "DATUM_HOME": str(tmp_path / "home")}

    def owned(words: list[str]) -> str:
        done = subprocess.run(
            [sys.executable, "-c", textwrap.dedent(code.format(words=words))],
            capture_output=True, text=True, timeout=60, env=env, cwd=tmp_path,
        )  # fmt: skip
        return done.stderr.split()[-1]

    # each gets as far as running (and stops there: no project here), help does not
    assert owned(["build", "--dry-run"]) == "True"
    assert owned(["diff", "prod@main", "prod@HEAD"]) == "True"
    assert owned(["build", "--help"]) == "False"
    assert owned(["logs", "--last", "1"]) == "False"


def test_a_forked_child_freezes_what_it_inherited() -> None:
    import gc

    assert gc.get_freeze_count() == 0
    child = forked.fork(lambda: 0 if gc.get_freeze_count() > 0 else 3)
    assert child.wait(30) == 0
    assert gc.get_freeze_count() == 0  # the parent is left as it was
