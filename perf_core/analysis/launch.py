"""Starting the suite's pytest processes: each run a child of a fork server (perf_core/measure/forkserver.py,
run by path) that has torch and pytest imported already, so a run pays no import time of its own; where
the server will not fork (CUDA initialised in it, or PERF_CORE_NO_FORK=1), each run a fresh
`python -m pytest` process, as before the server.

Every run is still a process of its own, in a session of its own: an interruption ends it and whatever
it started (compile workers) with os.killpg. The runs now going are registered here, so that one
failing lane or Ctrl-C can end the others' (`end_all`). This half never imports torch: the server is a
separate process, started by its file's path.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import TracebackType

from perf_core.errors import HistoryError

SERVER = Path(__file__).resolve().parent.parent / "measure" / "forkserver.py"

_LIVE: dict[int, subprocess.Popen | None] = {}  # process groups of the runs going now (their Popen if spawned)
_LIVE_LOCK = threading.Lock()
_STOPPING = threading.Event()  # set while the runs are being ended: none may start
_CAUSE: list[BaseException] = []  # the failure that ended them (end_all's first cause), until allow_runs


class LaunchError(HistoryError):
    """A run could not be started or its server ended under it (exit code 2)."""


class ForkServer:
    """One fork server: `run` one pytest process at a time (a lock keeps it so); `close` (or leaving
    the `with` block) ends the server. Started at once; its imports load while the caller goes on."""

    def __init__(self) -> None:
        self._process = subprocess.Popen(
            [sys.executable, str(SERVER)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            start_new_session=True,  # Ctrl-C reaches this process only, which ends the runs itself
        )
        self._forks: bool | None = None  # None: the server has not said yet
        self._lock = threading.Lock()

    def run(
        self, cwd: Path, args: list[str], env: Mapping[str, str], cores: Sequence[int] = ()
    ) -> subprocess.CompletedProcess:
        """`python -m pytest ARGS` in `cwd` with environment `env`, as a forked child (pinned to `cores`
        when given): its exit code and output. Raises LaunchError when the server has ended or the gate is stopping; an exception
        here (KeyboardInterrupt, Interrupted) ends the run before it propagates."""
        command = [sys.executable, "-m", "pytest", *args]
        with self._lock, tempfile.TemporaryDirectory(prefix="perf-core-run-") as folder:
            forks = self.forks  # waits for the server's imports: outside _LIVE_LOCK, which end_all takes
            out, err = Path(folder, "stdout"), Path(folder, "stderr")
            request = {"cwd": str(cwd), "args": args, "env": dict(env), "cores": list(cores)}
            request |= {"stdout": str(out), "stderr": str(err)}
            with _LIVE_LOCK:  # started and registered at once, so an ending never misses a run
                if stopping():
                    raise LaunchError("stopped: another run failed or the gate was interrupted")
                if forks:
                    self._send(request)
                    fresh, pid = None, self._answer("pid")
                else:
                    fresh = spawn(command, request)
                    pid = fresh.pid
                _LIVE[pid] = fresh
            try:
                returncode = fresh.wait() if fresh else self._answer("returncode")
            except BaseException:
                end_group(pid, fresh)
                raise
            finally:
                with _LIVE_LOCK:
                    _LIVE.pop(pid, None)
            read = {"encoding": "utf-8", "errors": "replace"}
            return subprocess.CompletedProcess(command, returncode, out.read_text(**read), err.read_text(**read))

    def wait_ready(self) -> None:
        """Until the server has its imports loaded (and said whether it forks): runs timed while another
        server still loads would share the CPU with it."""
        if self._forks is None:
            self._forks = bool(self._answer("ready"))

    @property
    def forks(self) -> bool:
        """Whether runs are forked from the loaded server (False: each a fresh process); waits until it has said."""
        self.wait_ready()
        return bool(self._forks)

    def _send(self, request: dict) -> None:
        try:
            self._process.stdin.write(json.dumps(request) + "\n")
            self._process.stdin.flush()
        except (BrokenPipeError, OSError):
            raise self._ended() from None

    def _answer(self, key: str) -> object:
        line = self._process.stdout.readline()
        if not line:
            raise self._ended()
        return json.loads(line)[key]

    def _ended(self) -> LaunchError:
        code = self._process.poll()
        return LaunchError(
            f"the suite's fork server ({SERVER.name}) ended" + (f" (exit {code})" if code is not None else "")
        )

    def close(self) -> None:
        """End the server (SIGTERM, then SIGKILL if it does not go): between runs it is idle, and a run
        that an exception left is ended already (run)."""
        for stop in (self._process.terminate, self._process.kill):
            stop()
            try:
                self._process.wait(5.0)
                break
            except subprocess.TimeoutExpired:
                continue
        for pipe in (self._process.stdin, self._process.stdout):
            try:
                pipe.close()
            except OSError:
                pass

    def __enter__(self) -> ForkServer:
        return self

    def __exit__(self, kind: type | None, error: BaseException | None, trace: TracebackType | None) -> None:
        self.close()


# Set by pytest-xdist in its workers; a run that inherits them is taken by pytest-benchmark for an
# xdist worker and refuses --benchmark-only ("Can't have both --benchmark-only and --benchmark-disable").
XDIST_VARIABLES = ("PYTEST_XDIST_WORKER", "PYTEST_XDIST_WORKER_COUNT", "PYTEST_XDIST_TESTRUNUID")


def env_for(folder: Path) -> dict[str, str]:
    """This process's environment with `folder` first on PYTHONPATH: a run started there imports the
    packages of that folder (a side's worktree, a scratch project) before any installed one. Each run is
    a pytest session of its own: an xdist worker's variables (XDIST_VARIABLES) are not passed on."""
    env = {name: value for name, value in os.environ.items() if name not in XDIST_VARIABLES}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(folder), os.environ.get("PYTHONPATH")]))
    return env


def spawn(command: list[str], request: dict) -> subprocess.Popen:
    """A run as a fresh process, in a session of its own (for when the server does not fork)."""
    with open(request["stdout"], "w") as out, open(request["stderr"], "w") as err:
        child = subprocess.Popen(
            command, cwd=request["cwd"], env=request["env"], stdout=out, stderr=err, start_new_session=True
        )
    if request["cores"]:
        os.sched_setaffinity(child.pid, request["cores"])
    return child


def end_group(pid: int, spawned: subprocess.Popen | None = None) -> None:
    """End a run's process group: SIGTERM, then SIGKILL if it is still there after 5 s. A spawned run
    is reaped here (`spawned`); a forked one by its server."""
    for signum in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(pid, signum)
        except ProcessLookupError:
            return
        if spawned is not None:
            try:
                spawned.wait(5.0)
                return
            except subprocess.TimeoutExpired:
                continue
        deadline = time.monotonic() + 5.0
        while time.monotonic() < deadline:
            try:
                os.killpg(pid, 0)
            except ProcessLookupError:
                return
            time.sleep(0.05)


def end_all(cause: BaseException | None = None) -> None:
    """Stop new runs from starting and end every run going now (one lane failed, or an interruption);
    the first `cause` given is kept (`cause`): the runs ended here fail too, and not for that reason."""
    with _LIVE_LOCK:
        _STOPPING.set()
        if cause is not None and not _CAUSE:
            _CAUSE.append(cause)
        running = list(_LIVE.items())
    for pid, spawned in running:
        end_group(pid, spawned)


def stopping() -> bool:
    """Whether end_all has stopped new runs (until allow_runs)."""
    return _STOPPING.is_set()


def allow_runs() -> None:
    """After end_all: the next gate in this process may start runs again."""
    _STOPPING.clear()
    _CAUSE.clear()


def cause() -> BaseException | None:
    """The failure that made end_all end the runs (None: none given, or allow_runs since)."""
    return _CAUSE[0] if _CAUSE else None
