"""The warm runner (`dot warm`): real runner processes, real `dot` clients, dbt on DuckDB.

One runner serves the module's example project (started once: importing dbt costs seconds);
the tests that kill, replace or race runners start their own under their own DATUM_HOME.
"""

from __future__ import annotations

import contextlib
import json
import os
import pty
import select
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from datum_dot.warm import client
from datum_dot.warm.paths import RunnerPaths, runner_paths
from datum_dot.warm.session import refusal
from datum_dot.warm.stamp import take_stamp, watched_files
from tests.helpers.example import BIN, ExampleProject, make_example
from tests.helpers.signals import default_sigint

START_SECONDS = 90.0
# A model that runs long enough to be interrupted: dbt-duckdb runs Python models in process.
SLOW_MODEL = """
import time


def model(dbt, session):
    dbt.config(materialized="table")
    time.sleep(10)
    return session.sql("select 1 as x")
"""


@dataclass(frozen=True)
class Warm:
    """An example project and the DATUM_HOME whose runner serves it."""

    example: ExampleProject
    home: Path

    @property
    def paths(self) -> RunnerPaths:
        """The runner's files."""
        return runner_paths(self.home)

    def env(self, **extra: str) -> dict[str, str]:
        """This process's environment, with this home and `extra`."""
        return {**os.environ, "DATUM_HOME": str(self.home), **extra}

    def dot(
        self, *args: str, timeout: float = 300, **extra: str
    ) -> subprocess.CompletedProcess[str]:
        """Run the installed `dot` in the project folder with this home."""
        return subprocess.run(
            [str(BIN / "dot"), *args],
            cwd=self.example.path,
            env=self.env(**extra),
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    def popen(self, *args: str, **extra: str) -> subprocess.Popen[str]:
        """Start the installed `dot` in the project folder with this home."""
        return subprocess.Popen(
            [str(BIN / "dot"), *args],
            cwd=self.example.path,
            env=self.env(**extra),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            preexec_fn=default_sigint,  # only sets a signal disposition
        )

    def start(self) -> int:
        """`dot warm start`; the runner's pid."""
        result = self.dot("warm", "start", "--json", timeout=START_SECONDS + 30)
        assert result.returncode == 0, result.stderr
        status = json.loads(result.stdout)
        assert status["running"] is True
        return int(status["pid"])

    def status(self) -> dict[str, object]:
        """`dot warm status --json`."""
        result = self.dot("warm", "status", "--json")
        assert result.returncode == 0, result.stderr
        return dict(json.loads(result.stdout))

    def last_run(self) -> dict[str, object]:
        """The newest run record."""
        result = self.dot("logs", "--last", "1", "--json")
        assert result.returncode == 0, result.stderr
        data = json.loads(result.stdout)
        return dict(data[0] if isinstance(data, list) else data["runs"][0])


def runner_pids(home: Path) -> list[int]:
    """The live (not zombie) `dot warm serve` processes whose DATUM_HOME is `home`.

    A runner's forked sessions and children have its command line too: while runs are under
    way they are listed as well (what `kill_runners` wants).
    """
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().split(b"\0")
            environ = (entry / "environ").read_bytes().split(b"\0")
            state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        serving = b"serve" in cmdline and cmdline[cmdline.index(b"serve") - 1] == b"warm"
        if serving and state != "Z" and f"DATUM_HOME={home}".encode() in environ:
            found.append(int(entry.name))
    return found


def kill_runners(home: Path) -> None:
    """Kill every runner of `home` and its children (a failed test must not leave them)."""
    for pid in runner_pids(home):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


def wait_for(predicate: object, timeout: float, what: str) -> None:
    """Poll `predicate()` until true."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():  # type: ignore[operator]
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def make_warm(base: Path) -> Warm:
    """An example project with its packages installed, and a DATUM_HOME of its own."""
    example = make_example(base, monkeypatch_env=False)
    warm = Warm(example, base / "datum")
    result = warm.dot("deps", "--disable-prompts", DOT_WARM="0")
    assert result.returncode == 0, result.stderr
    return warm


@pytest.fixture(scope="module")
def served(
    tmp_path_factory: pytest.TempPathFactory, module_monkeypatch: pytest.MonkeyPatch
) -> Iterator[Warm]:
    """The module's project, with a runner started with its own DOT_EXAMPLE_DUCKDB."""
    base = tmp_path_factory.mktemp("warm")
    warm = make_warm(base)
    # The runner's own warehouse variable: runs must use their caller's, never this one.
    module_monkeypatch.setenv("DOT_EXAMPLE_DUCKDB", str(base / "runner.duckdb"))
    warm.start()
    yield warm
    warm.dot("warm", "stop")
    with contextlib.suppress(AssertionError):
        wait_for(lambda: not runner_pids(warm.home), 20, "the runner to stop")
    kill_runners(warm.home)


def test_warm_build_uses_the_callers_environment_and_records_warm(
    served: Warm, tmp_path: Path
) -> None:
    warehouse = tmp_path / "caller.duckdb"
    result = served.dot("build", "prod", "--disable-prompts", DOT_EXAMPLE_DUCKDB=str(warehouse))
    assert result.returncode == 0, result.stderr
    assert "SUCCESS: dbt build" in result.stdout + result.stderr
    # env_var('DOT_EXAMPLE_DUCKDB') in the profile: the caller's file has the tables
    assert warehouse.exists()
    assert not (served.example.path.parent / "runner.duckdb").exists()
    record = served.last_run()
    assert record["warm"] is True
    assert record["status"] == "SUCCESS"
    assert record["pid"] != served.status()["pid"]
    assert int(served.status()["runs_served"]) >= 1  # type: ignore[call-overload]
    version = served.dot("--version")
    assert "warm runner: up" in version.stdout


def test_warm_bypassed_by_no_warm_and_dot_warm_0(served: Warm, tmp_path: Path) -> None:
    warehouse = str(tmp_path / "w.duckdb")
    before = served.status()["runs_served"]
    assert served.dot("ls", "--no-warm", DOT_EXAMPLE_DUCKDB=warehouse).returncode == 0
    assert served.last_run()["warm"] is False
    assert served.dot("ls", DOT_WARM="0", DOT_EXAMPLE_DUCKDB=warehouse).returncode == 0
    assert served.last_run()["warm"] is False
    assert served.status()["runs_served"] == before


def test_warm_run_sees_a_changed_working_tree_file(served: Warm, tmp_path: Path) -> None:
    warehouse = tmp_path / "tree.duckdb"
    model = served.example.path / "models" / "warm_probe.sql"
    try:
        for value in (1, 2):
            model.write_text(f"select {value} as v\n")
            result = served.dot(
                "run", "--disable-prompts", "-s", "warm_probe", DOT_EXAMPLE_DUCKDB=str(warehouse)
            )
            assert result.returncode == 0, result.stdout + result.stderr
            assert served.last_run()["warm"] is True
            con = __import__("duckdb").connect(str(warehouse), read_only=True)
            try:
                assert con.execute("select v from dev.warm_probe").fetchall() == [(value,)]
            finally:
                con.close()
    finally:
        model.unlink()


def test_warm_output_and_isatty_through_a_pty(served: Warm, tmp_path: Path) -> None:
    env = served.env(DOT_EXAMPLE_DUCKDB=str(tmp_path / "pty.duckdb"))
    env.pop("NO_COLOR", None)
    piped = subprocess.run(
        [str(BIN / "dot"), "ls"], cwd=served.example.path, env=env, capture_output=True,
        text=True, timeout=300, check=False,
    )  # fmt: skip
    assert piped.returncode == 0, piped.stderr
    assert "\x1b[" not in piped.stdout + piped.stderr
    assert "jaffle_dot.staging.stg_orders" in piped.stdout
    leader, follower = pty.openpty()
    proc = subprocess.Popen(
        [str(BIN / "dot"), "ls"], cwd=served.example.path, env=env,
        stdin=follower, stdout=follower, stderr=follower,
    )  # fmt: skip
    os.close(follower)
    out = b""
    while True:
        ready, _, _ = select.select([leader], [], [], 120)
        if not ready:
            break
        try:
            chunk = os.read(leader, 65536)
        except OSError:  # EIO: every writer closed the terminal
            break
        if not chunk:
            break
        out += chunk
    os.close(leader)
    assert proc.wait(timeout=60) == 0
    text = out.decode(errors="replace")
    assert "jaffle_dot.staging.stg_orders" in text
    assert "\x1b[" in text  # the child saw a terminal on its stdio: colours
    assert served.last_run()["warm"] is True


def test_warm_runner_memory_steady_over_200_runs(served: Warm, tmp_path: Path) -> None:
    # 200 real hand-offs, each forking a child that runs the CLI's main() to its end. The CLI's
    # cheapest complete path (an unknown environment: exit 20 after reading the project's
    # config) keeps this under a minute; the runner's own memory is what is measured, and a
    # run's dbt work happens in the child, never in the runner.
    devnull = os.open(os.devnull, os.O_RDWR)
    request = client.HandOffRequest(
        ["ls", "no_such_env", "--disable-prompts"],
        "dot",
        served.example.path,
        served.env(DOT_EXAMPLE_DUCKDB=str(tmp_path / "rss.duckdb")),
        fds=(devnull, devnull, devnull),
    )

    def one() -> None:
        code = client.hand_off(served.paths, request, note=print, on_lost=print)
        assert code == 20

    pid = int(served.status()["pid"])  # type: ignore[call-overload]
    try:
        for _ in range(20):
            one()
        before = _rss(pid)
        for _ in range(200):
            one()
        after = _rss(pid)
    finally:
        os.close(devnull)
    assert after - before < 4 * 2**20, f"runner RSS grew {before} -> {after} over 200 runs"


def test_warm_refusal_says_why_for_another_interpreter(served: Warm) -> None:
    files = watched_files()
    stamp = take_stamp(files)
    same = {"executable": sys.executable, "prefix": sys.prefix}
    assert refusal(same, stamp, files) is None
    other = {"executable": "/usr/bin/python3", "prefix": "/usr"}
    assert refusal(other, stamp, files) == "another Python interpreter or virtual environment"


def test_warm_refuses_a_peer_of_another_uid(served: Warm) -> None:
    # The folder (0700) and the socket (0600) stop another user before the runner sees them;
    # open both up for the test, so the runner's own peer credential check is what refuses.
    paths = served.paths
    assert paths.folder.stat().st_mode & 0o777 == 0o700
    assert paths.socket.stat().st_mode & 0o777 == 0o600
    nobody = 65534
    before = served.status()["runs_served"]
    paths.folder.chmod(0o755)
    paths.socket.chmod(0o666)
    try:
        answer = _as_uid(nobody, paths.socket)
    finally:
        paths.folder.chmod(0o700)
        paths.socket.chmod(0o600)
    assert answer == {"refused": "another user's runner"}
    assert served.status()["runs_served"] == before
    # and with the folder private, the connection itself is refused by the kernel
    assert _as_uid(nobody, paths.socket) == {"error": "PermissionError"}


def test_warm_ctrl_c_cancels_the_child_with_exit_50(served: Warm, tmp_path: Path) -> None:
    model = served.example.path / "models" / "warm_slow.py"
    model.write_text(SLOW_MODEL)
    try:
        proc = served.popen(
            "run", "--disable-prompts", "-s", "warm_slow",
            DOT_EXAMPLE_DUCKDB=str(tmp_path / "slow.duckdb"),
        )  # fmt: skip
        wait_for(lambda: _running(served), 120, "the run to start")
        time.sleep(2)
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=60)
        assert proc.returncode == 50, err
        record = served.last_run()
        assert record["status"] == "CANCELLED"
        assert record["warm"] is True
    finally:
        model.unlink()


def test_warm_runner_killed_mid_run_aborts_the_run_with_exit_30(
    served: Warm, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    warm = Warm(served.example, tmp_path / "datum")  # a home, so a runner, of its own
    monkeypatch.setenv("DOT_EXAMPLE_DUCKDB", str(tmp_path / "own.duckdb"))
    slow = warm.example.path / "models" / "warm_slow.py"
    try:
        pid = warm.start()
        slow.write_text(SLOW_MODEL)
        proc = warm.popen("run", "--disable-prompts", "-s", "warm_slow")
        wait_for(lambda: _running(warm), 120, "the run to start")
        time.sleep(2)
        os.kill(pid, signal.SIGKILL)
        _, err = proc.communicate(timeout=60)
        assert proc.returncode == 30, err
        assert "the warm runner ended during the run" in err
        record = warm.last_run()
        assert record["status"] == "ABORTED"
        assert record["warm"] is True
        # the next run starts the normal way: no runner, no failure
        assert warm.dot("ls").returncode == 0
        assert warm.last_run()["warm"] is False
    finally:
        slow.unlink(missing_ok=True)
        kill_runners(warm.home)


def test_warm_two_starters_start_one_runner_and_warm_off_stops_it(
    served: Warm, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    warm = Warm(served.example, tmp_path / "datum")  # a home, so a runner, of its own
    monkeypatch.setenv("DOT_EXAMPLE_DUCKDB", str(tmp_path / "own.duckdb"))
    try:
        starters = [warm.popen("warm", "start", "--json") for _ in range(2)]
        pids = set()
        for proc in starters:
            out, err = proc.communicate(timeout=START_SECONDS + 30)
            assert proc.returncode == 0, err
            pids.add(json.loads(out)["pid"])
        assert len(pids) == 1
        wait_for(lambda: len(runner_pids(warm.home)) == 1, 30, "the second runner to exit")
        assert runner_pids(warm.home) == list(pids)
        # `warm: off` set while it runs: the next run goes the normal way, and the runner stops
        assert warm.dot("config", "set", "warm", "off").returncode == 0
        assert warm.dot("ls").returncode == 0
        assert warm.last_run()["warm"] is False
        wait_for(lambda: not runner_pids(warm.home), 30, "the runner to stop")
    finally:
        kill_runners(warm.home)


def test_warm_auto_replaces_a_stale_socket_and_stops_on_a_code_change(
    served: Warm, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    warm = Warm(served.example, tmp_path / "datum")  # a home, so a runner, of its own
    monkeypatch.setenv("DOT_EXAMPLE_DUCKDB", str(tmp_path / "own.duckdb"))
    try:
        # a socket file left by a runner that died: nothing listens on it
        warm.paths.make_private()
        stale = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        stale.bind(str(warm.paths.socket))
        stale.close()
        assert warm.paths.socket.exists()
        assert "warm runner: not running" in warm.dot("--version").stdout
        assert warm.dot("config", "set", "warm", "auto").returncode == 0
        first = warm.dot("ls")  # runs the normal way, and starts a runner for the next runs
        assert first.returncode == 0, first.stderr
        assert warm.last_run()["warm"] is False
        assert client.wait_until_up(warm.paths, timeout=START_SECONDS)
        assert warm.dot("ls").returncode == 0
        assert warm.last_run()["warm"] is True
        # datum-dot's code changes under an editable install: the runner refuses and stops
        module = Path(client.__file__)
        stat = module.stat()
        os.utime(module, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))
        try:
            changed = warm.dot("ls", DOT_WARM_VERBOSE="1")
        finally:
            os.utime(module, ns=(stat.st_atime_ns, stat.st_mtime_ns))
        assert changed.returncode == 0, changed.stderr
        assert "changed since the runner started" in changed.stderr
        assert warm.last_run()["warm"] is False
    finally:
        kill_runners(warm.home)


def _running(warm: Warm) -> bool:
    result = warm.dot("logs", "--last", "1", "--json")
    return result.returncode == 0 and '"RUNNING"' in result.stdout


def _rss(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError(f"no VmRSS for {pid}")


def _as_uid(uid: int, path: Path) -> dict[str, object]:
    """Connect to `path` from a forked child running as `uid`; what the runner answered."""
    reader, writer = os.pipe()
    child = os.fork()
    if child == 0:  # pragma: no cover - the child reports through the pipe
        os.close(reader)
        answer: dict[str, object]
        try:
            # The test's temporary folders are root's alone: step into the runner's folder
            # first, so only that folder's and the socket's own modes are in the way.
            os.chdir(path.parent)
            os.setgid(uid)
            os.setuid(uid)
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            sock.settimeout(10)
            sock.connect(path.name)
            # The runner checks the peer before it reads a byte: its answer comes unasked.
            data = b""
            while chunk := sock.recv(4096):
                data += chunk
            answer = json.loads(data.split(b"\n")[0]) if data else {"closed": True}
        except OSError as e:
            answer = {"error": type(e).__name__}
        os.write(writer, json.dumps(answer).encode())
        os._exit(0)
    os.close(writer)
    data = b""
    while chunk := os.read(reader, 4096):
        data += chunk
    os.close(reader)
    os.waitpid(child, 0)
    return dict(json.loads(data))
