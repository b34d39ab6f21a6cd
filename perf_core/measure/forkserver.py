"""A fork server for the suite's processes: torch, its compiler and pytest imported once, then each run
a forked child of this process. Run by path (`python forkserver.py`); nothing of perf_core imports it
(the project's tests import its warm()).

Why: every suite process used to pay ~8 s on the 2-core machine before its first benchmark (import
torch 4.1 s, the plugin's imports of Dynamo and inductor 4.2 s), more than the timing itself, and the
gate starts 10 of them. A forked child starts with those modules loaded, as the workers of torch's
own DataLoader do. Each child is still a process of its own (own pid, session, heap, CUDA context,
compiled code, inductor state): the runs stay the gate's independent samples.

CUDA must not be initialised here: a child of a process that called cuInit cannot use CUDA (on an
H200 host the first version's children failed their first CUDA call, AcceleratorError, because an
import asked torch.cuda.is_available(), which initialises the driver). So the server asks torch to
answer that from NVML (PYTORCH_NVML_BASED_CUDA_CHECK=1, torch's own switch for forking servers),
and after its imports checks the driver itself (cuda_initialised); when CUDA was initialised all
the same, it says so and ends, and the runs start as fresh processes; with PERF_CORE_NO_FORK=1 it says
so at once, before loading anything.

Why not multiprocessing's forkserver: its children import the module of the function they run, which
would be the launching checkout's perf_core; here nothing of perf_core is imported before the fork,
so each child imports the perf_core of the tree it runs in (perf-core ab's base and head, each its own).

Protocol, one JSON object a line: it says {"ready": true} once the modules are loaded ({"ready":
false}: it will not fork, see above, and ends); then for each
request {"cwd", "args", "env", "cores", "stdout", "stderr"} on stdin (a pytest run: its working
folder, arguments, whole environment, the CPU cores it may run on (empty: any), and the files its
output goes to) it answers {"pid": N} when the
child has started (a process group of its own: os.killpg(N, ...) ends it and what it started) and
{"returncode": R} when it ended (negative: the signal that ended it, as subprocess reports).
One run at a time; end of input ends the server.
"""

import contextlib
import ctypes
import gc
import importlib
import json
import os
import signal
import sys
import warnings

# What a suite process imports, heaviest first; none of perf_core. Hypothesis where installed (a
# development environment): its pytest plugin imports it at the end of every session, 1.5 s a run on
# the 2-core machine (cProfile), whether or not the run used it.
PRELOAD = (
    "torch",
    "torch._dynamo",
    "torch._inductor.compile_fx",
    "numpy",
    "scipy.stats",
    "pytest",
    "pytest_benchmark.plugin",
    "hypothesis",
)


def warm() -> None:
    """What a process's first compile pays once and keeps, done here so that no run pays it: inductor
    probes which vector instructions the CPU has by building and loading ten small programs (2.0 of
    the 2.9 s of the first SwiGLU compile on the 2-core machine, cProfile); the answer is cached
    for the process (functools.cache), and a forked child inherits the cache. The programs stay in
    inductor's cache folder (each built under a lock of torch's, once a machine): a cold machine's
    first build took 15 s."""
    with contextlib.suppress(ImportError, AttributeError):
        from torch._inductor import cpu_vec_isa

        cpu_vec_isa.valid_vec_isa_list()
    # The hash of torch's own source that every compile's cache key includes: 0.25 s a process the
    # first time (functools cache), the largest part of a warm compile's 0.7 s (cProfile).
    with contextlib.suppress(ImportError, AttributeError):
        from torch._inductor.codecache import torch_key

        torch_key()


def cuda_initialised() -> bool:
    """Whether this process has initialised the CUDA driver: cuDeviceGetCount answers
    CUDA_ERROR_NOT_INITIALIZED (3) before cuInit and 0 after. False where there is no driver."""
    try:
        driver = ctypes.CDLL("libcuda.so.1")
    except OSError:
        return False
    count = ctypes.c_int()
    return driver.cuDeviceGetCount(ctypes.byref(count)) == 0


def path_entries(env) -> list[str]:
    """The entries of PYTHONPATH in `env`, empty ones left out (as the interpreter leaves them)."""
    return [entry for entry in env.get("PYTHONPATH", "").split(os.pathsep) if entry]


def child(request: dict, inherited: list[str]) -> None:
    """In the forked child: become the run `request` asks for, as `python -m pytest ARGS` started in
    its folder with its environment would be, then exit with pytest's code."""
    PROTOCOL.close()  # the server's line to its client is not the run's
    os.setpgid(0, 0)  # a group of its own (the server sets it too, so a killpg never finds it missing)
    if request.get("cores"):  # a lane of its own: the same cores for every run of the lane
        os.sched_setaffinity(0, request["cores"])
    os.chdir(request["cwd"])
    os.environ.clear()
    os.environ.update(request["env"])
    # sys.path as that command would have it: its folder, then its PYTHONPATH, then the installation's.
    # Relative entries made absolute against the run's folder, as the interpreter does at its start.
    extra = [os.path.abspath(entry) for entry in path_entries(request["env"])]
    sys.path[:] = [request["cwd"], *extra, *inherited]
    for fd, key in ((1, "stdout"), (2, "stderr")):
        target = os.open(request[key], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        os.dup2(target, fd)
        os.close(target)
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.close(null)
    import pytest

    try:
        code = pytest.main(request["args"])
    except SystemExit as error:  # a plugin that exits: its code, as the interpreter would end with it
        code = error.code if isinstance(error.code, int) else (0 if error.code is None else 1)
    sys.stdout.flush()
    sys.stderr.flush()
    # As multiprocessing's forked children do: the parent's exit handlers are not the child's to run.
    os._exit(int(code))


PROTOCOL = sys.stdout  # main() moves the answers to a copy of fd 1, and fd 1 to stderr


def answer(message: dict) -> None:
    PROTOCOL.write(json.dumps(message) + "\n")
    PROTOCOL.flush()


def load() -> None:
    """What every child starts with: PRELOAD imported and warm()'s work done, then all of it put out
    of the collector's sight (gc.freeze), so that a child's collections skip the server's million
    objects (pytest's at a session's end took 0.5 s) and leave their pages shared, as the standard
    library's gc.freeze documentation advises for a forking server."""
    for name in PRELOAD:
        with contextlib.suppress(ImportError):  # a run that needs it imports it (and fails) itself
            importlib.import_module(name)
    warm()
    gc.collect()
    gc.freeze()


def main() -> None:
    global PROTOCOL
    # The answers go out on a copy of the server's standard output; its fd 1 is then its stderr, so
    # that whatever an import prints cannot be read as an answer.
    PROTOCOL = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)
    if os.environ.get("PERF_CORE_NO_FORK") == "1":  # fresh processes asked for: nothing to load first
        answer({"ready": False})
        return
    warnings.filterwarnings("ignore", message=".*fork.*", category=DeprecationWarning)
    os.environ["PYTORCH_NVML_BASED_CUDA_CHECK"] = "1"  # the server's own; each child gets its request's
    load()
    own = set(path_entries(os.environ))
    inherited = [entry for entry in sys.path[1:] if entry not in own]  # [0] is this script's folder
    forks = not cuda_initialised()
    answer({"ready": forks})
    if not forks:
        return
    for line in sys.stdin:
        request = json.loads(line)
        pid = os.fork()
        if pid == 0:
            try:
                child(request, inherited)
            except BaseException as error:  # noqa: BLE001 -- the child must never return into this loop
                os.write(2, f"fork server: the run could not start: {type(error).__name__}: {error}\n".encode())
                os._exit(70)
        with contextlib.suppress(OSError):  # the child may have set it already
            os.setpgid(pid, pid)
        answer({"pid": pid})
        _, status = os.waitpid(pid, 0)
        with contextlib.suppress(OSError):  # what the run left behind (compile workers) ends with it
            os.killpg(pid, signal.SIGTERM)
        answer({"returncode": os.waitstatus_to_exitcode(status)})


if __name__ == "__main__":
    main()
