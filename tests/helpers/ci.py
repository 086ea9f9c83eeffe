"""Skips that hold only off CI: under `CI=true` (set by `.ci/run`) a missing program is a failure."""

from __future__ import annotations

import os
from typing import NoReturn

import pytest

# Read once, when the test modules are imported: the `hermetic` fixture takes CI out of the
# environment of every test (and of the programs the tests start).
IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}


def skip_or_fail(reason: str) -> NoReturn:
    """Skip the test for `reason`, or fail it under CI, which provides everything the suite uses.

    Raises:
        pytest.fail.Exception: Under CI.
        pytest.skip.Exception: Elsewhere.
    """
    if IN_CI:
        pytest.fail(f"{reason} (CI=true: .ci/run provides it, so its absence is a failure)")
    pytest.skip(reason)
