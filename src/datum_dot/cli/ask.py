"""Questions on a terminal: a default in brackets, the answer checked, asked again when wrong.

Asked only when a person is there to answer (stdin and stderr are terminals, and `CI` is not
set); questions go to stderr, so stdout stays the command's output.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable

from datum_dot.errors import UsageError

ATTEMPTS = 3

Check = Callable[[str], str | None]
"""An answer -> what is wrong with it, or None when it will do."""


def is_interactive() -> bool:
    """Whether a person can answer: stdin and stderr are terminals and this is not CI."""
    ci = os.environ.get("CI", "").lower() in {"1", "true", "yes"}
    return not ci and sys.stdin.isatty() and sys.stderr.isatty()


def ask(question: str, default: str, check: Check) -> str:
    """Ask until `check` accepts the answer (an empty answer is `default`).

    Raises:
        UsageError: No acceptable answer after three tries, or the input ended.
    """
    problem = None
    for _ in range(ATTEMPTS):
        shown = f" [{default}]" if default else ""
        print(f"{question}{shown}: ", end="", file=sys.stderr, flush=True)
        line = sys.stdin.readline()
        if not line:
            print(file=sys.stderr)
            raise UsageError(f"no answer to: {question}", "answer it, or pass it as an option")
        answer = line.strip() or default
        problem = check(answer)
        if problem is None:
            return answer
        print(f"  {problem}", file=sys.stderr)
    raise UsageError(f"no usable answer to: {question} ({problem})", "pass it as an option")
