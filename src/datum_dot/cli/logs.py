"""`dot logs`: list recorded runs, show one, follow new ones, prune old records.

```
dot logs [--last N] [--status S[,S]] [--env E] [--project P] [--since AGE|DATE] [--json]
dot logs RUN_ID [--raw] [--json]       RUN_ID may be any unique prefix or suffix of the id
dot logs RUN_ID --artifacts [--json]   the dbt artifacts kept with the run, with their sha256
dot logs RUN_ID --artifact NAME        one artifact's bytes (from the database: --artifacts-to-db)
dot logs last [--status S] [--env E] [--project P] [--since AGE|DATE] [--raw] [--json]
dot logs [RUN_ID|last] --follow [--raw] [--json]
dot logs prune [--keep N] [--older-than AGE] [--json]
```

`last` is the run `dot logs` with the same filters would list first: the newest run, or the
newest failed run of prod with `dot logs last --status failed --env prod`.

`--follow` without a run id prints new runs and the live output of running ones until Ctrl-C
(exit 50, as every cancelled command); with a run id it follows that run and exits 0 once the
run has finished (at once if it already had).
"""

from __future__ import annotations

import argparse
import re
import sys
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta

from datum_dot.errors import HistoryError, UsageError
from datum_dot.history import STORED_STATUSES, RunStore, StoredRun
from datum_dot.home.settings import datum_home
from datum_dot.runs.run import RunStatus

DEFAULT_LAST = 10
PRUNE = "prune"
LAST = "last"
_AGE_PART = re.compile(r"(\d+)([smhdw])")
_AGE_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}
_LIST_ONLY = ("last", "status", "since")
_MAX_COUNT = 1_000_000_000
_MAX_AGE = timedelta(days=100 * 366)
_PRUNE_ONLY = ("keep", "older_than")


@dataclass(frozen=True)
class Filters:
    """Which runs to list or follow.

    Attributes:
        last: At most this many (None: no limit).
        status: Only these statuses (None: all).
        env: Only this environment.
        project: Only this project.
        since: Only runs started at or after this time.
    """

    last: int | None = DEFAULT_LAST
    status: tuple[RunStatus, ...] | None = None
    env: str | None = None
    project: str | None = None
    since: datetime | None = None


def run_logs(args: argparse.Namespace, *, prog: str) -> int:
    """`dot logs ...`: turn the arguments into typed values, read the history, render it."""
    _check_combinations(args, prog)
    store = RunStore(datum_home())
    if args.run_id == PRUNE:
        return _prune(store, args, prog)
    filters = Filters(
        last=_count("--last", args.last) if args.last is not None else DEFAULT_LAST,
        status=parse_statuses(args.status) if args.status is not None else None,
        env=args.env,
        project=args.project,
        since=parse_since(args.since, datetime.now(UTC)) if args.since is not None else None,
    )
    if args.run_id is not None:
        # `get` checks the id's form before any file is read
        run = _newest(store, filters, prog) if args.run_id == LAST else store.get(args.run_id)
        run = run.with_failed_node()
        if args.artifacts:
            return _show_artifacts(run, as_json=args.json)
        if args.artifact is not None:
            sys.stdout.buffer.write(store.artifact(run, args.artifact))
            sys.stdout.flush()
            return 0
        if args.follow:
            # lazy: rich and the run views load only for what is shown
            from datum_dot.cli.follow import follow_run

            return follow_run(store, run.run_id, raw=args.raw, as_json=args.json)
        return _show(run, raw=args.raw, as_json=args.json, prog=prog)
    if args.follow:
        # lazy: rich and the run views load only for what is shown
        from datum_dot.cli.follow import follow_all

        return follow_all(store, env=filters.env, project=filters.project, as_json=args.json)
    runs = store.query(
        last=filters.last,
        status=filters.status,
        env=filters.env,
        since=filters.since,
        project=filters.project,
    )
    runs = [run.with_failed_node() for run in runs]
    # lazy: rich and the run views load only for what is shown
    from datum_dot.cli import render, runtable

    if args.json:
        render.print_json([run.to_json() for run in runs])
    else:
        runtable.print_runs(
            runs,
            filtered=replace(filters, last=DEFAULT_LAST) != Filters(),
            home=store.home,
            short_ids=store.short_ids,
        )
    return 0


def _newest(store: RunStore, filters: Filters, prog: str) -> StoredRun:
    """`last`: the run a listing with the same filters shows first."""
    runs = store.query(
        last=1, status=filters.status, env=filters.env, since=filters.since, project=filters.project
    )
    if runs:
        return runs[0]
    if replace(filters, last=DEFAULT_LAST) != Filters():
        raise HistoryError(
            "no run matches these filters, so there is no last one to show",
            f"list what there is with `{prog} logs --last 50`",
        )
    raise HistoryError(
        f"no runs recorded yet in {store.home}, so there is no last one to show",
        f"run one first, for example `{prog} build`; then `{prog} logs last` shows it",
    )


def _show_artifacts(run: StoredRun, *, as_json: bool) -> int:
    # lazy: rich and the run views load only for what is shown
    from datum_dot.cli import render, runview

    if as_json:
        render.print_json(runview.artifacts_json(run))
    else:
        runview.print_artifacts(run)
    return 0


def _show(run: StoredRun, *, raw: bool, as_json: bool, prog: str) -> int:
    # lazy: rich and the run views load only for what is shown
    from datum_dot.cli import render, runview

    if as_json:
        render.print_json(runview.run_detail_json(run))
    elif raw:
        runview.print_raw_output(run)
    else:
        runview.print_run(run)
    if not run.has_log_files():
        raise HistoryError(
            f"log files of run {run.run_id} are missing: {run.run_dir} was deleted or emptied",
            f"the record above is all that is left; remove it with `{prog} logs prune` once it "
            "is old enough, or restore the folder from a backup",
        )
    return 0


def _prune(store: RunStore, args: argparse.Namespace, prog: str) -> int:
    # lazy: rich and the run views load only for what is shown
    from datum_dot.cli import render, runview

    if args.keep is None and args.older_than is None:
        raise UsageError(
            "prune needs a limit: --keep N and/or --older-than AGE",
            f"for example: {prog} logs prune --keep 500 --older-than 30d",
        )
    keep = _count("--keep", args.keep, minimum=0) if args.keep is not None else None
    older = parse_age(args.older_than, "--older-than") if args.older_than is not None else None
    removed = store.prune(keep=keep, older_than=older)
    if args.json:
        render.print_json({"removed": removed})
    else:
        runview.print_pruned(removed)
    return 0


def _check_combinations(args: argparse.Namespace, prog: str) -> None:
    given = {name for name in (*_LIST_ONLY, *_PRUNE_ONLY) if getattr(args, name) is not None}
    flags = {name: "--" + name.replace("_", "-") for name in given}
    if args.run_id == PRUNE:
        wrong = sorted(flags[n] for n in given - set(_PRUNE_ONLY))
        wrong += [
            f
            for f, on in (
                ("--follow", args.follow),
                ("--raw", args.raw),
                ("--artifacts", args.artifacts),
            )
            if on
        ]
        wrong += [f for f, v in (("--env", args.env), ("--project", args.project)) if v]
        if wrong:
            raise UsageError(
                f"{', '.join(wrong)} cannot be used with `{prog} logs prune`",
                f"prune takes --keep N, --older-than AGE and --json: {prog} logs prune --keep 500",
            )
        return
    if given & set(_PRUNE_ONLY):
        options = " and ".join(sorted(flags[n] for n in given & set(_PRUNE_ONLY)))
        raise UsageError(
            f"{options} only go with `{prog} logs prune`",
            f"to remove old records: {prog} logs prune --keep 500 --older-than 30d",
        )
    selected = sorted(flags[n] for n in given)
    if args.run_id == LAST and args.last is not None:
        raise UsageError(
            f"--last {args.last} cannot be used with `{prog} logs last`, which shows one run",
            f"list the newest runs with `{prog} logs --last {args.last}`, or show the newest "
            f"with `{prog} logs last`",
        )
    if args.run_id not in (None, LAST) and (selected or args.env or args.project):
        raise UsageError(
            f"filters ({', '.join(selected) or '--env/--project'}) do not apply to one run",
            f"list runs with `{prog} logs {' '.join(selected)} ...`, show the newest that "
            f"matches with `{prog} logs last {' '.join(selected)} ...`, or show one with "
            f"`{prog} logs {args.run_id}`",
        )
    if args.follow and selected and args.run_id is None:
        raise UsageError(
            f"{', '.join(selected)} cannot be used with --follow, which shows new runs only",
            f"follow new runs with `{prog} logs --follow [--env ENV]`",
        )
    if args.artifacts and (args.run_id is None or args.follow or args.raw):
        raise UsageError(
            "--artifacts lists one run's kept dbt artifacts and needs a run id (not --follow "
            "or --raw)",
            f"name the run: {prog} logs <run-id> --artifacts (`{prog} logs` lists recent ids)",
        )
    if args.artifact is not None and (
        args.run_id is None or args.follow or args.raw or args.artifacts or args.json
    ):
        raise UsageError(
            "--artifact NAME writes one artifact of one run and needs a run id (not --follow, "
            "--raw, --artifacts or --json)",
            f"name the run: {prog} logs <run-id> --artifact manifest.json > manifest.json",
        )
    if args.raw and args.run_id is None:
        raise UsageError(
            "--raw prints one run's output and needs a run id",
            f"name the run: {prog} logs <run-id> --raw (`{prog} logs` lists recent ids)",
        )


def _count(option: str, value: int, *, minimum: int = 1) -> int:
    if not minimum <= value <= _MAX_COUNT:
        raise UsageError(
            f"{option} {value} must be a whole number from {minimum} to {_MAX_COUNT}",
            f"for example {option} {max(minimum, 10)}",
        )
    return value


def parse_statuses(text: str) -> tuple[RunStatus, ...]:
    """Parse `--status`: one status or a comma-separated list, in any case.

    Raises:
        UsageError: A word is not a stored status (the message lists the valid ones).
    """
    valid = {s.value: s for s in STORED_STATUSES}
    words = [w.strip().upper() for w in text.split(",") if w.strip()]
    bad = [w for w in words if w not in valid]
    if bad or not words:
        raise UsageError(
            f"--status '{text}' is not a run status",
            f"use one or more of {', '.join(valid)} (comma-separated, any case), "
            "for example --status failed,timeout",
        )
    return tuple(dict.fromkeys(valid[w] for w in words))


def parse_age(text: str, option: str) -> timedelta:
    """Parse an age such as `30m`, `12h`, `2d`, `1w` or `1d12h`.

    Raises:
        UsageError: The text is not an age.
    """
    cleaned = text.strip().lower()
    hint = f"give a number and a unit (s, m, h, d, w), for example {option} 30d or {option} 12h"
    if not cleaned or _AGE_PART.sub("", cleaned):
        raise UsageError(f"{option} '{text}' is not an age", hint)
    try:
        age = sum(
            (timedelta(**{_AGE_UNITS[unit]: int(n)}) for n, unit in _AGE_PART.findall(cleaned)),
            timedelta(0),
        )
    except OverflowError:
        age = _MAX_AGE * 2
    if age > _MAX_AGE:
        raise UsageError(f"{option} '{text}' is longer than 100 years", hint)
    return age


def parse_since(text: str, now: datetime) -> datetime:
    """Parse `--since`: an age back from `now` (`2d`, `12h`, `30m`) or an ISO date/time (UTC).

    Raises:
        UsageError: The text is neither an age nor an ISO date or date and time.
    """
    if _AGE_PART.match(text.strip().lower()):
        return now - parse_age(text, "--since")
    try:
        moment = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise UsageError(
            f"--since '{text}' is neither an age nor a date",
            "use an age such as 2d, 12h or 30m, or a date such as 2024-05-01 or "
            "2024-05-01T06:00 (UTC unless an offset is given)",
        ) from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
