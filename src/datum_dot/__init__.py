"""datum-dot: run dbt for a named environment at an exact git commit, isolated and recorded."""

from __future__ import annotations

__version__ = "0.1.0"
