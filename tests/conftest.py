import contextlib
import gc
import importlib
import itertools
import os
import sys
import tempfile
import threading
import time
from pathlib import Path

import pytest
from helpers import SCRATCH_ADDOPTS

from perf_core.analysis import launch
from perf_core.measure import forkserver

# One compile thread in every process the tests start, as the suite's plugin sets for its own: with
# one worker a core, inductor's default (a pool of compile processes a core) only adds start-up.
os.environ.setdefault("TORCHINDUCTOR_COMPILE_THREADS", "1")

# Under pytest-xdist (the README's test command), every pytest these tests start, in process or not,
# is a session of its own: a worker's variables would make pytest-benchmark disable its timed runs.
for _name in launch.XDIST_VARIABLES:
    os.environ.pop(_name, None)

pytest_plugins = ["pytester"]


# pytester restores sys.modules after each test that uses it; extension modules first imported
# inside such a test (scipy's, through numpy.fft) cannot be imported a second time, nor can torch's
# compiler, which registers operators once per process (the suite's eager runs import it through
# core.no_recompiles, and its inductor graph through breakdown.compiled_code, in process in test_plugin
# and test_trust). pytest_configure loads them where tests run, and where installed: a GPU box may
# carry only what the suite itself needs. Suite runs that compile stay in subprocesses: a compile
# imports more of torch's compiler than can be listed here (tests that compile one call, not a suite
# run, do it in process).
PRELOAD = ("ruptures", "scipy.stats", "torch._dynamo", "torch._inductor.graph")


def runs_tests(config: pytest.Config) -> bool:
    """False in pytest-xdist's controller, which only hands tests to its workers (one a core): xdist's
    own test (xdist.plugin, _is_distribution_mode; it collects in the controller with --collect-only)."""
    if hasattr(config, "workerinput"):
        return True
    distributes = getattr(config.option, "dist", "no") != "no" and bool(getattr(config.option, "tx", None))
    return not distributes or bool(config.getoption("collectonly"))


def pytest_configure(config: pytest.Config) -> None:
    """PRELOAD, where tests run (the xdist controller skips them: 2 s of its start-up, before any
    worker starts). On a cold machine (a fresh clone's CI runner) inductor's first C++ compile in a
    process builds ten probe programs (15 s) unless another process has left them in the cache (torch
    builds each under a lock, once). Under xdist the controller starts them at once, beside the
    workers' start-up, and each worker loads them in the background (forkserver.warm) while its first
    tests run: one that compiles meanwhile waits on torch's lock for what is still being built. Never
    in a run without -n: that may be a timed suite run (tests/test_latency.py), which no thread may
    share."""
    if runs_tests(config):
        for module in PRELOAD:
            with contextlib.suppress(ImportError):
                importlib.import_module(module)
    if hasattr(config, "workerinput") or getattr(config.option, "numprocesses", None):
        threading.Thread(target=forkserver.warm, name="warm inductor", daemon=True).start()


@pytest.hookimpl(trylast=True)
def pytest_unconfigure(config: pytest.Config) -> None:
    """After pytest's last look for unraisable exceptions (its own unconfigure, a full collection),
    put every object out of the collector's sight: its cleanup's second collection and the
    interpreter's at exit then skip torch's million objects (a process that imported torch's compiler
    exits in 0.16 s instead of 1.15 s; the controller waits for each worker's exit). Process-wide and
    never undone: a host that ran pytest.main in process and goes on keeps these objects."""
    gc.freeze()


@pytest.hookimpl(optionalhook=True)  # xdist comes with the dev extras; the README's plain install lacks it
def pytest_xdist_auto_num_workers(config: pytest.Config) -> int | None:
    """`-n auto` on a machine with a CUDA GPU: one worker. The suite's untimed runs build the GPU preset's
    model (13 GB of weights a case) and the floor tests time the card: workers side by side would share
    one GPU's memory and clock. Elsewhere xdist's own choice, one worker a core."""
    import torch  # here, not at the top: where xdist asks

    return 1 if torch.cuda.is_available() else None


SUITE_FILE = Path(__file__).with_name("test_latency.py")


@pytest.fixture
def suite(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> pytest.Pytester:
    """A scratch project holding the real benchmark file and the suite's plugin."""
    # This session's own tests/test_latency.py would stand in for the scratch copy (same module
    # name) in runs made in process; pytester puts it back afterwards.
    monkeypatch.delitem(sys.modules, "test_latency", raising=False)
    monkeypatch.setenv("PYTEST_ADDOPTS", SCRATCH_ADDOPTS)  # pytester cleared the caller's
    pytester.makeconftest('pytest_plugins = ["perf_core.measure.plugin"]\n')
    pytester.makepyfile(test_latency=SUITE_FILE.read_text())
    return pytester


@pytest.fixture(scope="session")
def fork_server():
    """The session's fork server (perf_core.analysis.launch, as perf-core ab uses it): each suite run a
    tests starts is a fresh process forked from one that has torch and pytest imported already."""
    with launch.ForkServer() as server:
        yield server


@pytest.fixture(scope="session")
def second_fork_server():
    """Another session server: a pair's two runs timed together fork from two servers at once (one
    server runs one process at a time, and each of the two runs waits for the other)."""
    with launch.ForkServer() as server:
        yield server


@pytest.fixture
def lent_fork_server(
    fork_server: launch.ForkServer, second_fork_server: launch.ForkServer, monkeypatch: pytest.MonkeyPatch
) -> launch.ForkServer:
    """perf-core ab made in process forks its runs from the session's servers (the two in turn) instead
    of starting (and loading torch in) its own: what ab does with its runs is the same either way."""
    # Entered, a session server; left, it keeps running for the next test.
    servers = itertools.cycle((fork_server, second_fork_server))
    monkeypatch.setattr(launch, "ForkServer", lambda: contextlib.nullcontext(next(servers)))
    return fork_server


@pytest.fixture
def run_suite(suite: pytest.Pytester, fork_server: launch.ForkServer):
    """Run the scratch suite in a fresh process, as pytester.runpytest_subprocess does (its folder, its
    environment, a --basetemp of its own), forked by the session's server: a pytest.RunResult."""
    count = itertools.count()

    def run(*args: object) -> pytest.RunResult:
        basetemp = suite.path / f"runpytest-{next(count)}"
        started = time.monotonic()
        done = fork_server.run(suite.path, [f"--basetemp={basetemp}", *map(str, args)], launch.env_for(suite.path))
        lines = (done.stdout.splitlines(), done.stderr.splitlines())
        return pytest.RunResult(done.returncode, *lines, time.monotonic() - started)

    return run


@pytest.fixture
def storage(tmp_path: Path) -> Path:
    """A history folder, not yet created: pytest-benchmark's default name under the test's folder."""
    return tmp_path / ".benchmarks"


@pytest.fixture(scope="session", autouse=True)
def _private_cache(tmp_path_factory: pytest.TempPathFactory):
    """The commands keep their history index (and the report's vega.js) in the user's cache folder:
    tests use a folder of their own, so they neither read a stale one nor litter the real one.
    In memory where Linux offers it: each new history gets a new SQLite index, whose creation waits
    for the disk (fsync) -- half of test_fuzz's time on a disk, next to nothing on /dev/shm."""
    memory = Path("/dev/shm")
    if not (memory.is_dir() and os.access(memory, os.W_OK)):
        memory = tmp_path_factory.mktemp("cache")
    with tempfile.TemporaryDirectory(prefix="perf-core-cache-", dir=memory) as cache:
        with pytest.MonkeyPatch.context() as patch:
            patch.setenv("XDG_CACHE_HOME", cache)
            yield
