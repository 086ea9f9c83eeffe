"""Why a dbt invocation failed, and what to do about it.

Structured sources come first: a class the runtime read from the exception dbt raised, then
each node's status in the results (`fail` on a test is a data-quality failure; `error` carries
dbt's error type, `Compilation Error` / `Database Error` / `Runtime Error`, at the start of its
message). Free text (dbt's last error message, then the last lines of output) is only read when
nothing structured says more.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from datum_dot.runtimes.artifacts import option_value
from datum_dot.runtimes.base import ErrorClass, InvocationResult, NodeOutcome

RETRYABLE = frozenset({ErrorClass.CONNECTION})
"""Classes worth another attempt: the cause may be gone a few seconds later."""

_TRANSIENT = re.compile(
    r"could not set lock|conflicting lock|database is locked|connection (?:refused|reset|"
    r"aborted|closed|timed out)|could not connect|unable to connect|failed to connect|"
    r"server closed the connection|too many connections|temporar(?:y|ily) unavailable|"
    r"service unavailable|broken pipe|rate limit|throttl|\b(?:502|503|504)\b|deadlock detected|"
    r"network is unreachable|name or service not known|ssl syscall error|operation timed out",
    re.IGNORECASE,
)
_TEXT_CLASSES: tuple[tuple[re.Pattern[str], ErrorClass], ...] = (
    (
        re.compile(r"compilation error|parsing error|jinja|undefined macro", re.I),
        ErrorClass.COMPILATION,
    ),
    (
        re.compile(r"dependency error|uninstalled packages|dbt deps|packages? .*not found", re.I),
        ErrorClass.DEPENDENCY,
    ),
    (
        re.compile(r"database error|sql error|catalog error|binder error|permission denied", re.I),
        ErrorClass.DATABASE,
    ),
    (
        re.compile(r"could not find profile|profile.*not found|credentials", re.I),
        ErrorClass.CONNECTION,
    ),
)
_FAILED = frozenset({"error", "runtime error"})
_PASSED = frozenset({"success", "pass", "warn", "no-op"})


def classify(result: InvocationResult, args: Sequence[str]) -> tuple[ErrorClass | None, str | None]:
    """Classify a failed invocation and suggest what to do; (None, None) for success or Ctrl-C.

    Args:
        result: What the runtime reported.
        args: The argv that was run (for the target, profiles folder and command in the hint).

    Returns:
        The class and a suggestion of the form "what failed -> what to do".
    """
    if result.success or result.interrupted:
        return None, None
    if result.timed_out:
        kind: ErrorClass | None = ErrorClass.TIMEOUT
    else:
        kind = result.error_class or _from_nodes(result.nodes)
        kind = kind or _from_text(result.error) or _from_text("\n".join(result.output_tail))
        if args and args[0] == "deps" and kind is not ErrorClass.CONNECTION:
            kind = ErrorClass.DEPENDENCY
    final = kind or (ErrorClass.INTERNAL if result.error else ErrorClass.DATABASE)
    return final, result.suggestion or suggest(final, args, result.nodes)


def is_partial(result: InvocationResult) -> bool:
    """Some nodes finished and some did not: `dbt retry` can pick up where it stopped."""
    statuses = {node.status for node in result.nodes}
    return bool(statuses & _PASSED) and bool(statuses - _PASSED)


def _from_nodes(nodes: Sequence[NodeOutcome]) -> ErrorClass | None:
    errors = [node for node in nodes if node.status in _FAILED]
    kinds = [_node_class(node) for node in errors]
    for worst in (ErrorClass.COMPILATION, ErrorClass.DATABASE, ErrorClass.DEPENDENCY):
        if worst in kinds:
            return worst
    if kinds:
        return ErrorClass.CONNECTION
    if any(node.status == "fail" for node in nodes):
        return ErrorClass.DATA_QUALITY
    return None


def _node_class(node: NodeOutcome) -> ErrorClass:
    message = node.message or ""
    if message.startswith(("Compilation Error", "Parsing Error")):
        return ErrorClass.COMPILATION
    if _TRANSIENT.search(message):
        return ErrorClass.CONNECTION
    return _from_text(message) or ErrorClass.DATABASE


def _from_text(text: str | None) -> ErrorClass | None:
    if not text:
        return None
    if _TRANSIENT.search(text):
        return ErrorClass.CONNECTION
    for pattern, kind in _TEXT_CLASSES:
        if pattern.search(text):
            return kind
    return None


def suggest(kind: ErrorClass, args: Sequence[str], nodes: Sequence[NodeOutcome] = ()) -> str:
    """An actionable suggestion for a failure class, naming the target and files involved."""
    target = option_value(args, "--target", "-t") or "the profile's default target"
    profiles = option_value(args, "--profiles-dir")
    profile_file = f"{profiles}/profiles.yml" if profiles else "profiles.yml"
    first_error = next((n.unique_id for n in nodes if n.status in _FAILED), None)
    failed_tests = [n.unique_id for n in nodes if n.status == "fail"]
    if kind is ErrorClass.CONNECTION:
        return (
            f"Database connection failed -> check profiles.yml credentials for target {target}: "
            f"{profile_file}; if the database was busy or locked, run again with --retries 3"
        )
    if kind is ErrorClass.COMPILATION:
        where = f" in {first_error}" if first_error else ""
        return f"Compilation failed{where} -> fix the Jinja/SQL named above; `dot compile` checks it without touching the warehouse"
    if kind is ErrorClass.DATABASE:
        where = f" for {first_error}" if first_error else ""
        return f"The database rejected a query{where} -> read the compiled SQL under the target folder's compiled/ and check the objects and grants it uses on target {target}"
    if kind is ErrorClass.DATA_QUALITY:
        names = ", ".join(failed_tests[:3]) or "the failing tests"
        return f"{len(failed_tests)} data test(s) failed ({names}) -> inspect the failing rows: dot test -- --select <test> --store-failures"
    if kind is ErrorClass.DEPENDENCY:
        return "Installing dbt packages failed -> check packages.yml / package-lock.yml and network access, then run `dot deps`"
    if kind is ErrorClass.TIMEOUT:
        return "The run exceeded its timeout and was stopped -> raise --timeout, or select fewer nodes (-- --select ...)"
    log_path = option_value(args, "--log-path") or "logs"
    return f"dbt failed unexpectedly -> run again with --debug; dbt's log is {log_path}/dbt.log"
