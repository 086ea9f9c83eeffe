"""What the product accepts as a git ref before git ever sees it.

A ref is user input (`ref: str`); it reaches git only after `check_ref`, so a ref can never pose
as an option or smuggle control characters. The spec grammar (`runs.spec`) and every git call
(`vcs.git`) use this one rule.
"""

from __future__ import annotations

import re

from datum_dot.errors import SpecError

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def check_ref(ref: str) -> str:
    """Refuse refs that could pose as an option or smuggle control characters.

    Args:
        ref: A git ref as the user wrote it.

    Returns:
        The ref, unchanged.

    Raises:
        SpecError: The ref starts with '-' or holds a control character.
    """
    if ref.startswith("-"):
        raise SpecError(
            f"git ref '{ref}' starts with '-', which git would read as an option",
            "name a branch, tag or commit hash; refs starting with '-' are refused",
        )
    if _CONTROL.search(ref):
        raise SpecError(
            f"git ref {ref!r} holds a control character",
            "retype the ref without control characters",
        )
    return ref
