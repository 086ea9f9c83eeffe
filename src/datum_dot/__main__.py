"""`python -m datum_dot` runs the same program as `dot`."""

from __future__ import annotations

from datum_dot.cli.main import main

raise SystemExit(main())
