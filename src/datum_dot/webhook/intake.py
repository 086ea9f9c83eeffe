"""Accept-time checks of a run request, cheap enough to answer within milliseconds.

Planning a run (`planner.make_plan`) asks dbt which flags a command takes, which imports dbt
(about 1.5 s the first time). The webhook answers before that: it checks what can be checked
without dbt (the project is registered, the command is a dbt command, the spec parses, the
environment exists, the vars pass `dot_vars.yml`, the git ref resolves) and pins the commit the ref
names now. Full planning happens in the worker, where a failure is a FAILED run record.

Files read here are cached by their (mtime, size, inode): a request costs a few `stat` calls
unless a file changed, and one `git rev-parse` when the spec names a ref.
"""

from __future__ import annotations

import hashlib
import json
import re
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from datum_dot.config.environments import (
    ENVIRONMENTS_FILE,
    USER_ENVIRONMENTS_FILE,
    deep_merge,
    load_environments,
)
from datum_dot.config.variables import (
    VARS_FILE,
    check_vars,
    load_var_declarations,
    parse_cli_vars,
    raise_for_problems,
    split_vars_args,
)
from datum_dot.errors import BaselineError, SpecError, UsageError
from datum_dot.home.settings import CONFIG_FILE
from datum_dot.home.userconfig import UserConfig, load_user_config
from datum_dot.runs import commands, commits
from datum_dot.runs.commitfiles import ProjectFiles, commit_files
from datum_dot.runs.planner import PROJECT_FILE, project_name
from datum_dot.runs.spec import parse_defer_spec, parse_spec, parse_state_from_spec
from datum_dot.webhook.errors import UnknownProjectError
from datum_dot.webhook.jobs import JobRequest, Source

T = TypeVar("T")
MAX_TIMEOUT_SECONDS = 7 * 24 * 3600.0
_MACRO = re.compile(r"[A-Za-z_][A-Za-z0-9_.]*")
_STATE_OPTIONS = frozenset({"--state", "--defer-state"})
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")
# What the OpenAPI schema documents; the checks below say what is wrong more precisely.
SPEC_PATTERN = r"^(?:[A-Za-z0-9_][A-Za-z0-9_.-]*)?(?:@[^\-\x00-\x1f\x7f][^\x00-\x1f\x7f]*)?$"
COMMAND_PATTERN = (
    "^(?:"
    + "|".join(
        [
            *(
                c
                for c, verbs in commands.DBT_COMMANDS.items()
                if not verbs and c != "run-operation"
            ),
            "docs generate",
            "source (?:freshness|snapshot-freshness)",
            "run-operation [A-Za-z_][A-Za-z0-9_.]*",
        ]
    )
    + ")$"
)
_REFUSED: dict[tuple[str, ...], str] = {
    ("docs", "serve"): "serves the docs until stopped; run `docs generate` instead"
}


@dataclass(frozen=True)
class Ask:
    """A run request as a client sent it, on any route.

    Attributes:
        spec: `[env][@ref]`.
        command: dbt's command (`build`, `docs generate`, `run-operation my_macro`).
        args: Arguments for dbt, passed untouched.
        vars: Variables merged over the environment's.
        timeout: Seconds before the run is stopped, or None.
        commit: A commit the ref must be built at (a GitHub push's `after`), or None.
        source: The route it came in by.
        defer: `--defer` (`prod`, `prod@main`), or None.
        state_source: Where a live `defer` reads its state (`history`, `cloud`).
        state_from: `--state-from` (`prod@main`), or None.
        max_state_age: `--max-state-age` in seconds, or None.
    """

    spec: str
    command: str = "build"
    args: tuple[str, ...] = ()
    vars: Mapping[str, Any] = field(default_factory=dict)
    timeout: float | None = None
    commit: str | None = None
    source: Source = Source.API
    defer: str | None = None
    state_source: str = "history"
    state_from: str | None = None
    max_state_age: float | None = None

    def fingerprint(self) -> str:
        """A digest of the request as sent: a key sent again must come with the same one.

        It covers what the client sent, not what that resolved to, so a retry is the same
        request even after its branch has moved on.
        """
        what = {
            "spec": self.spec,
            "command": " ".join(self.command.split()),
            "args": list(self.args),
            "vars": self.vars,
            "timeout": self.timeout,
            "commit": self.commit,
            "defer": self.defer,
            "state_source": self.state_source,
            "state_from": self.state_from,
            "max_state_age": self.max_state_age,
        }
        text = json.dumps(what, sort_keys=True, separators=(",", ":"), default=str)
        return hashlib.sha256(text.encode()).hexdigest()


@dataclass(frozen=True)
class Project:
    """A registered project, as the webhook addresses it.

    Attributes:
        id: The id `dot init` registered (`shop`): the `{project}` of the URLs.
        path: The dbt project folder.
        name: dbt's name of the project: the prefix of its run ids.
    """

    id: str
    path: Path
    name: str


# Entries of the intake's cache before it starts again (each is a project's settings).
_CACHE_LIMIT = 4096


class Intake:
    """Turns what a client asked for into a queued request, or says what is wrong with it.

    Args:
        home: `$DATUM_HOME`, whose `config.yaml` lists the projects.
    """

    def __init__(self, home: Path) -> None:
        self.home = home
        self._lock = threading.Lock()
        self._cache: dict[tuple[str, Path], tuple[object, object]] = {}

    def config(self) -> UserConfig:
        """The user configuration, re-read when `config.yaml` changes.

        Raises:
            ConfigError: The file is invalid.
        """
        path = self.home / CONFIG_FILE
        return self._cached("config", path, (path,), lambda: load_user_config(self.home))

    def project(self, project_id: str) -> Project:
        """The registered project with this id.

        Raises:
            UnknownProjectError: No project has this id.
            ConfigError: config.yaml is invalid.
        """
        entry = self.config().projects.get(project_id)
        if entry is None:
            raise UnknownProjectError(
                f"no project '{project_id}' is registered",
                "register it with `dot init` in its folder; `dot config show` lists projects",
            )
        path = entry.path
        name = self._cached(
            "name", path, (path / PROJECT_FILE,), lambda: project_name(path.resolve())
        )
        return Project(id=project_id, path=path, name=name)

    def resolve(self, project: Project, ask: Ask) -> JobRequest:
        """Check a request without running anything and resolve what it names.

        Returns:
            The request to queue: the environment after defaults, the commit pinned.

        Raises:
            BadInputError: The command, spec, environment, vars, args or ref is wrong (the
                message says which and why).
            GitError: git itself failed.
        """
        command = check_command(ask.command)
        check_args(ask.args)
        check_timeout(ask.timeout)
        spec = parse_spec(ask.spec)
        commit = files = None
        if spec.ref is not None:
            # A build at a ref uses the settings committed there (ADR 0013): check the request
            # against those, so an environment that exists only at its ref is accepted.
            commit = commits.resolve_commit(self._repo_root(project), ask.commit or spec.ref)
            files = self._commit_files(project, commit)
            envs = self._cached(
                "envs@" + commit,
                project.path,
                (project.path / USER_ENVIRONMENTS_FILE,),
                lambda: load_environments(project.path, project_file=files.environments),
            )
        else:
            envs = self._cached(
                "envs",
                project.path,
                (project.path / ENVIRONMENTS_FILE, project.path / USER_ENVIRONMENTS_FILE),
                lambda: load_environments(project.path),
            )
        env = envs.resolve(spec.env)
        # `--vars` in args is read when the run is planned; read it now, so a bad one is this
        # request's 422 rather than a failed run later. Merged as the plan merges them.
        args_vars = [parse_cli_vars(text) for text in split_vars_args(ask.args)[1]]
        if ask.vars or args_vars:
            if files is not None:
                declarations = load_var_declarations(project.path, project_file=files.variables)
            else:
                declarations = self._cached(
                    "vars",
                    project.path,
                    (project.path / VARS_FILE,),
                    lambda: load_var_declarations(project.path),
                )
            merged = deep_merge(env.vars, ask.vars)
            sources = {**env.var_sources, **dict.fromkeys(ask.vars, "the request's vars")}
            for extra in args_vars:
                merged = deep_merge(merged, extra)
                sources.update(dict.fromkeys(extra, "--vars in the request's args"))
            raise_for_problems(check_vars(merged, declarations, sources=sources, env_name=env.name))
        self._check_state(project, ask)
        return JobRequest(
            project=project.id,
            project_dir=str(project.path),
            project_name=project.name,
            spec=str(spec),
            env=env.name or "",
            ref=spec.ref,
            commit=commit,
            command=command,
            args=ask.args,
            vars=dict(ask.vars),
            timeout=ask.timeout,
            source=ask.source,
            defer=ask.defer,
            state_source=ask.state_source,
            state_from=ask.state_from,
            max_state_age=ask.max_state_age,
        )

    def _check_state(self, project: Project, ask: Ask) -> None:
        """The checks `dot build --defer/--state-from` makes before running, made now.

        Raises:
            BadInputError: A spec does not parse, a ref does not resolve, the live environment
                is not defined or has no successful run, or both `state_from` and `--state`
                in args name the comparison state.
        """
        if ask.state_source == "cloud" and (ask.defer is None or "@" in ask.defer):
            raise UsageError(
                "state_source 'cloud' reads a live environment's dbt Cloud job",
                'name the environment: "defer": "prod", "state_source": "cloud"',
            )
        if ask.max_state_age is not None and ask.defer is None:
            raise UsageError(
                "max_state_age limits the age of deferred state, and defer is not given",
                'add "defer": "prod", or drop max_state_age',
            )
        if ask.defer is not None:
            defer = parse_defer_spec(ask.defer)
            if defer.ref is not None:
                commits.resolve_commit(self._repo_root(project), defer.ref)
            else:
                env = load_environments(project.path).resolve(defer.env)
                if ask.state_source == "history":
                    _check_live_state(self.home, project.name, env.name or str(defer.env))
        if ask.state_from is None:
            return
        state = parse_state_from_spec(ask.state_from)
        commits.resolve_commit(self._repo_root(project), str(state.ref))
        given = next((a for a in ask.args if a.partition("=")[0] in _STATE_OPTIONS), None)
        if given is not None:
            raise UsageError(
                f"state_from {ask.state_from} and {given.partition('=')[0]} in args both name "
                "the state to compare against",
                f"keep one: drop {given.partition('=')[0]} from args to compare against "
                f"{ask.state_from}, or drop state_from",
            )

    def _commit_files(self, project: Project, commit: commits.Sha) -> ProjectFiles:
        # A commit's files never change: read once per commit and project (one git process).
        key = ("files@" + commit, project.path)
        with self._lock:
            hit = self._cache.get(key)
        if hit is not None:
            return hit[1]  # type: ignore[return-value]
        files = commit_files(project.path, self._repo_root(project), commit)
        with self._lock:
            if len(self._cache) > _CACHE_LIMIT:
                self._cache.clear()  # rare: a long-lived server that saw many commits
            self._cache[key] = ((), files)
        return files

    def _repo_root(self, project: Project) -> Path:
        def find() -> Path:
            root = commits.find_repo_root(project.path)
            if root is None:
                raise SpecError(
                    f"{project.path} is not inside a git repository, so a spec with '@ref' "
                    "cannot be built",
                    "drop the '@ref' to build the working tree, or `git init` the project",
                )
            return root

        return self._cached("repo", project.path, (project.path,), find)

    def _cached(self, kind: str, key: Path, files: tuple[Path, ...], load: Callable[[], T]) -> T:
        stamp = tuple(_stamp(path) for path in files)
        with self._lock:
            hit = self._cache.get((kind, key))
        if hit is not None and hit[0] == stamp:
            return hit[1]  # type: ignore[return-value]
        value = load()
        with self._lock:
            self._cache[(kind, key)] = (stamp, value)
        return value


def _check_live_state(home: Path, project: str, env: str) -> None:
    """Refuse `defer: ENV` when the history has no successful plain run of ENV to defer to."""
    # lazy: the history's SQLite side loads only for a request that defers to it
    from datum_dot.history import RunStore
    from datum_dot.history.states import HistoryStates

    search = HistoryStates(RunStore(home)).live_state(project, env)
    if search.found is None:
        raise BaselineError(
            f"defer {env}: no successful run of {env} is in the run history with its manifest",
            f"run one first: dot build {env} (or defer to a build: {env}@main)",
        )


def check_command(text: str) -> tuple[str, ...]:
    """dbt's command words from `build`, `docs generate`, `run-operation my_macro`.

    Raises:
        UsageError: Not a dbt command this tool runs, or a command a webhook cannot run.
    """
    words = tuple(text.split())
    known = commands.DBT_COMMANDS
    if not words or words[0] not in known:
        raise UsageError(
            f"unknown dbt command '{text}'",
            f"use one of: {', '.join(known)} (with `docs generate`, `source freshness`, "
            "`run-operation <macro>`)",
        )
    head, rest = words[0], words[1:]
    verbs = known[head]
    if verbs and (len(rest) != 1 or rest[0] not in verbs):
        raise UsageError(
            f"dbt command '{text}' needs one of: {', '.join(f'{head} {v}' for v in verbs)}",
            f'send "command": "{head} {verbs[0]}"',
        )
    if head == "run-operation" and (len(rest) != 1 or not _MACRO.fullmatch(rest[0])):
        raise UsageError(
            f"dbt command '{text}' needs the macro's name: run-operation <macro>",
            'send "command": "run-operation my_macro", and its arguments in args',
        )
    if not verbs and head != "run-operation" and rest:
        raise UsageError(
            f"dbt command '{text}' takes no further words",
            'put options in "args": ["--select", "orders+"]',
        )
    if words in _REFUSED:
        raise UsageError(f"'{text}' cannot be run by the webhook: it {_REFUSED[words]}", "")
    return words


def check_args(args: tuple[str, ...]) -> None:
    """Refuse arguments dbt would never get as given.

    Raises:
        UsageError: An argument holds a control character, or names `--project-dir`.
    """
    for arg in args:
        if _CONTROL.search(arg):
            raise UsageError(f"argument {arg!r} holds a control character", "remove it")
        if arg == "--project-dir" or arg.startswith("--project-dir="):
            raise UsageError(
                "--project-dir in args would bypass the registered project's folder",
                "leave it out: the project is the one in the URL",
            )


def check_timeout(timeout: float | None) -> None:
    """Refuse a timeout that is not a positive number of seconds up to a week.

    Raises:
        UsageError: It is not.
    """
    if timeout is not None and not 0 < timeout <= MAX_TIMEOUT_SECONDS:
        raise UsageError(
            f"timeout must be more than 0 and at most {MAX_TIMEOUT_SECONDS:g} seconds, "
            f"got {timeout:g}",
            '"timeout": 3600, for example',
        )


def _stamp(path: Path) -> tuple[int, int, int] | None:
    try:
        st = path.stat()
    except OSError:
        return None
    return (st.st_mtime_ns, st.st_size, st.st_ino)
