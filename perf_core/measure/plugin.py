"""pytest integration: options, parametrization, device-aware timing and the JSON contract.

pytest-benchmark stays the harness (calibration, rounds, statistics, storage, compare); this
plugin only chooses what runs, prepares each call outside the timed region and enriches the JSON
through pytest-benchmark's hooks. Registered by the repository's root conftest.py.
"""

from __future__ import annotations

import contextlib
import os
import platform
import shlex
import time

# Compile workers otherwise keep stealing the CPU for seconds after compiling; must be set
# before torch._inductor reads its config.
os.environ.setdefault("TORCHINDUCTOR_COMPILE_THREADS", "1")

from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
import torch._inductor.config
from pytest_benchmark.utils import get_current_time, get_tag

from perf_core import contract
from perf_core.errors import PerfCoreError
from perf_core.measure import breakdown, clock, core, pairing, storage, summary
from perf_core.measure.phases import Phases, process_start
from perf_core.measure.selection import FLAGS, OPTIONS, Case, Selection, parse_selection
from perf_core.measure.workload import Workload

# The same for a process that imported inductor's config before this module (the fork server's runs).
torch._inductor.config.compile_threads = int(os.environ["TORCHINDUCTOR_COMPILE_THREADS"])

PEAKS_KEY = pytest.StashKey["clock.Peaks | None"]()
SELECTION_KEY = pytest.StashKey["Selection"]()
PHASES = Phases(process_start())  # one process is one run
BARRIER: list[pairing.Barrier] = []  # this run's side of its pair's barrier (--pair-barrier), set at configure
TIMED = ".timed"  # the barrier's second point of a benchmark: both runs have timed it


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("perf_core", "per-token latency benchmarks")
    for name, (default, help_text) in OPTIONS.items():
        parser.addini(f"perf_{name}", help_text, default=default)
        if name not in FLAGS:
            group.addoption(f"--{name}", dest=f"perf_{name}", default=None, help=f"{help_text} (ini: perf_{name})")
            continue
        group.addoption(
            f"--{name}", dest=f"perf_{name}", action="store_const", const="true", help=f"{help_text} (ini: perf_{name})"
        )
        group.addoption(
            f"--no-{name}", dest=f"perf_{name}", action="store_const", const="false", help=f"the opposite of --{name}"
        )
    group.addoption(
        "--pair-barrier",
        dest="perf_pair_barrier",
        metavar="FOLDER:SIDE",
        help="time each benchmark together with the other run of a pair (set by perf-core ab on the CPU;"
        " thread CPU time; see perf_core/measure/pairing.py)",
    )


def pytest_configure(config: pytest.Config) -> None:
    raw = {name: config.getoption(f"perf_{name}") or config.getini(f"perf_{name}") for name in OPTIONS}
    try:
        selection = parse_selection(raw, torch.cuda.is_available())
    except PerfCoreError as error:
        raise pytest.UsageError(str(error)) from None
    torch.set_num_threads(selection.threads)
    config.stash[SELECTION_KEY] = selection
    BARRIER[:] = [b for b in [_barrier(config.getoption("perf_pair_barrier"), selection)] if b]
    # The history is the point of the suite: every timed run is saved, raw rounds included, the same
    # as --benchmark-autosave --benchmark-save-data. Set here rather than in addopts so that runs
    # with --benchmark-disable stay quiet. pytest-benchmark reads these in its (trylast) configure.
    if raw["autosave"].strip().lower() in ("1", "true", "yes") and not config.getoption("benchmark_disable"):
        commit = os.environ.get("PERF_CORE_COMMIT")  # the file name names the commit, as its contents do
        tag = f"{storage.file_safe(commit)}_{get_current_time()}" if commit else get_tag()
        config.option.benchmark_autosave = config.option.benchmark_autosave or tag
        config.option.benchmark_save_data = True
    name = config.option.benchmark_save or config.option.benchmark_autosave
    problem = None if config.getoption("benchmark_disable") or not name else storage.name_problem(name)
    if problem:  # refused now, not after every benchmark has been timed
        shown = name if len(name) <= 60 else name[:57] + "..."
        raise pytest.UsageError(f"cannot save the run as {shown!r}: {problem}")


def _barrier(value: str | None, selection: Selection) -> pairing.Barrier | None:
    if value is None:
        return None
    if selection.device == "cuda":  # thread CPU time would leave out the device's work
        raise pytest.UsageError("--pair-barrier: CPU runs only (this one runs on cuda)")
    if selection.threads != 1:  # thread CPU time counts this thread alone
        raise pytest.UsageError(f"--pair-barrier: one torch thread only (--threads {selection.threads})")
    try:
        return pairing.parse(value)
    except ValueError as error:
        raise pytest.UsageError(str(error)) from None


def pytest_sessionfinish(session: pytest.Session) -> None:
    for barrier in BARRIER:
        barrier.finish()


def pytest_unconfigure(config: pytest.Config) -> None:
    BARRIER.clear()  # a later session in this process (pytester's, in process) has its own


def pytest_sessionstart(session: pytest.Session) -> None:
    """The storage folder is checked before any work, and a run that fails to save anyway is written aside."""
    bench = getattr(session.config, "_benchmarksession", None)
    if bench is None or bench.disabled or not (bench.save or bench.autosave):
        return
    folder = getattr(bench.storage, "path", None)  # a FileStorage's; other storages have none
    problem = folder and storage.folder_problem(Path(folder) / bench.machine_id)
    if problem:
        raise pytest.UsageError(f"--benchmark-storage: runs cannot be saved there: {problem}")
    terminal = session.config.pluginmanager.get_plugin("terminalreporter")
    report = (lambda line: terminal.write_line(line, red=True, bold=True)) if terminal else print
    bench.storage.save = storage.never_lost(bench.storage.save, report)


def pytest_report_header(config: pytest.Config) -> list[str]:
    """What this run measures, in the header (and for `perf-core ab`'s pre-flight check, which also
    reads whether this suite knows --pair-barrier: contract.PAIRS_TOGETHER_LINE)."""
    s = config.stash[SELECTION_KEY]
    return [
        f"perf_core: device {s.device}, preset {s.preset} ({s.dtype}), {s.threads} thread(s), {s.cache} cache, rest {s.rest:g},"
        f" kernels {','.join(s.kernels)}, variants {','.join(s.variants)}, tokens {','.join(map(str, s.tokens))}",
        contract.PAIRS_TOGETHER_LINE,
    ]


def pytest_report_collectionfinish(config: pytest.Config, start_path, items: list[pytest.Item]) -> str | None:
    """The files holding benchmarks (tests that use pytest-benchmark's fixture), relative to the rootdir:
    `perf-core ab` reads this line from its pre-flight pass and collects only them in each timed run
    (collecting every test module of this project costs a run ~2 s more of imports)."""
    files = sorted({item.path.relative_to(config.rootpath).as_posix() for item in items if _benchmarks(item)})
    return f"perf_core: benchmark files {shlex.join(files)}" if files else None


def _benchmarks(item: pytest.Item) -> bool:
    return "benchmark" in getattr(item, "fixturenames", ()) and item.path.is_relative_to(item.config.rootpath)


# A benchmark's parameters, each saved by pytest-benchmark under `params` (plain values, so that its own
# `compare --group-by param:kernel` reads them); the test id joins them (`attention-compiled-128`).
PARAMS = (contract.KERNEL, contract.VARIANT, contract.N_TOKENS)


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "perf_case" in metafunc.fixturenames:
        selection = metafunc.config.stash[SELECTION_KEY]
        timer = clock.timer_for(selection.device, selection.rest, paired=bool(BARRIER))
        # pytest-benchmark's public way to choose the timer and the group: its marker (see clock.timer_for);
        # one group per kernel and variant, so that its table and histogram hold one curve each.
        params = [
            pytest.param(
                case.workload.kernel,
                case.variant,
                case.workload.n_tokens,
                id=case.id,
                marks=pytest.mark.benchmark(timer=timer, group=contract.parse_name(case.id).panel),
            )
            for case in selection.cases()
        ]
        metafunc.parametrize(PARAMS, params)


@pytest.fixture
def perf_case(pytestconfig: pytest.Config, kernel: str, variant: str, n_tokens: int) -> Case:
    """This test's benchmark, from its three parameters (set by pytest_generate_tests)."""
    return pytestconfig.stash[SELECTION_KEY].case(kernel, variant, n_tokens)


@pytest.fixture(scope="session")
def perf_peaks(pytestconfig: pytest.Config) -> clock.Peaks | None:
    """The device's measured matmul rate and memory bandwidth, once per run (None when not timing):
    the best over the suite's own products and, for warm runs, its working sets (see measure_peaks)."""
    if pytestconfig.getoption("benchmark_disable"):
        return None
    selection = pytestconfig.stash[SELECTION_KEY]
    workloads = {case.workload for case in selection.cases()}
    gemms = {gemm for workload in workloads for gemm in workload.gemms}
    # Cold runs read their weights from device memory, never from cache: the large buffer alone.
    sizes = () if selection.cache == contract.COLD else {workload.bytes for workload in workloads}
    peaks = clock.measure_peaks(selection.device, selection.dtype, gemms, sizes)
    pytestconfig.stash[PEAKS_KEY] = peaks
    return peaks


@contextlib.contextmanager
def failures_reported(case: Case) -> Iterator[None]:
    """Turn compile failures and out-of-memory errors into one clear failure of this benchmark only."""
    try:
        yield
        return
    except core.CompileFailed as error:
        message = str(error)
    except torch.OutOfMemoryError:
        torch.cuda.empty_cache()  # so the next token count starts from a clean cache
        w = case.workload
        message = f"out of memory in {case.id}: {w.n_tokens} tokens, batch {w.batch}, d_model {w.d_model}, {w.dtype}"
    pytest.fail(message, pytrace=False)  # outside the except block: no chained traceback


def extra_info(
    case: Case, call: core.PreparedCall, median_s: float | None, peaks: clock.Peaks | None, l2_bytes: int | None = None
) -> dict:
    """The per-benchmark fields of the JSON contract (see the README); the GPU-only figures are added by run_case."""
    w = case.workload
    info = {
        contract.KERNEL: w.kernel,
        contract.VARIANT: case.variant,
        contract.N_TOKENS: w.n_tokens,
        contract.PRESET: case.preset,
        **w.sizes(),
        contract.FLOPS: w.flops,
        contract.BYTES: w.bytes,
        # pytest-benchmark's one round of a run without steady figures is no measurement: no per-token figure.
        contract.PER_TOKEN_S: None if median_s is None or "steady" not in case.figures else median_s / w.n_tokens,
        contract.FLOOR_S: None if peaks is None else w.floor_s(peaks.flops_per_s, peaks.bytes_per_s),
        contract.CACHE: case.cache,
        contract.COPIES: call.copies,
        contract.L2_BYTES: l2_bytes,
        # The rates are the steady state's: a run without steady rounds has one untimed call, no rate.
        **rates(w, median_s if "steady" in case.figures else None, peaks),
    }
    if call.flags is not None:
        info[contract.COMPILE_S] = call.compile_s
        info[contract.COMPILE_CACHE] = None if call.cache_hit is None else ("hit" if call.cache_hit else "miss")
        info[contract.COMPILE_FLAGS] = call.flags.as_dict()
    return info


def rates(w: Workload, median_s: float | None, peaks: clock.Peaks | None) -> dict:
    """Tokens per second and streamed bytes per second of the median call, and that bandwidth's share
    of the measured copy bandwidth (None where there is no median or no measured peak)."""
    bytes_per_s = None if median_s is None else w.bytes / median_s
    return {
        contract.TOKENS_PER_S: None if median_s is None else w.n_tokens / median_s,
        contract.BYTES_PER_S: bytes_per_s,
        contract.BANDWIDTH_SHARE: None if bytes_per_s is None or peaks is None else bytes_per_s / peaks.bytes_per_s,
    }


def run_case(benchmark, case: Case, peaks: clock.Peaks | None) -> None:
    """Prepare (compile, check, warm up), time under a recompile guard, record the contract fields.

    On CUDA three figures are kept apart: steady state (pytest-benchmark's rounds), isolated-call
    latency (host included) and device time (CUDA events, no host); NVML samples the clocks while
    the rounds run, so a throttled benchmark is marked rather than trusted. Only the figures in
    `case.figures` are measured; without steady, pytest-benchmark gets the one round it requires.
    In a run with --pair-barrier (perf-core ab's pairs on the CPU, pairing.py) the timing starts once
    the pair's other run is ready to time this benchmark too, and the next benchmark's compile once
    both have timed it: neither run compiles while the other times.
    """
    steady = "steady" in case.figures
    PHASES.begin()
    try:
        with failures_reported(case):
            _time_case(benchmark, case, peaks, steady)
    except BaseException:
        for barrier in BARRIER:  # the other run must not wait for a benchmark this one did not finish
            barrier.arrive(case.id)
            barrier.arrive(case.id + TIMED)
        raise


def _time_case(benchmark, case: Case, peaks: clock.Peaks | None, steady: bool) -> None:
    device = case.workload.device
    l2 = clock.l2_bytes(device)
    with breakdown.compiled_code(kernel_profile=case.breakdown and device == "cpu") as code:
        start = time.perf_counter()
        call = core.prepare(case.workload, case.variant, cache=case.cache, l2_bytes=l2)
        PHASES.compile_s += time.perf_counter() - start
    met = [barrier.meet(case.id) for barrier in BARRIER]
    sampler = None
    if device == "cuda":
        nvml = clock.nvml_module()
        sampler = clock.ClockSampler(nvml, clock.current_gpu(nvml)[0])
    figures = {}
    with core.no_recompiles(), sampler or contextlib.nullcontext():
        if steady:
            benchmark(call.fn)
        else:  # the clocks are sampled over the GPU figures' own loops instead
            benchmark.pedantic(call.fn, rounds=1, iterations=1)
            figures = gpu_figures(call.fn, case) if device == "cuda" and benchmark.stats else {}
    met += [barrier.meet(case.id, TIMED) for barrier in BARRIER]
    median_s = benchmark.stats.stats.median if benchmark.stats else None
    benchmark.extra_info.update(extra_info(case, call, median_s, peaks, l2))
    if BARRIER:  # whether the pair's other run timed it at the same time (not: it lacked it, or the wait ran out)
        benchmark.extra_info["timed_together"] = all(met)
    if device == "cuda" and median_s is not None:
        figures = gpu_figures(call.fn, case) if steady else figures
        benchmark.extra_info.update({**figures, **sampler.report().as_dict()})
    if case.breakdown and median_s is not None:  # after every timed figure: the profiler stays out of them
        benchmark.extra_info.update(breakdown_info(call, code, device))


def gpu_figures(fn, case: Case) -> dict:
    """The CUDA-only figures of `case.figures`, each from its own loop (isolated calls, CUDA events)."""
    info = {}
    if "latency" in case.figures:
        latency_s = clock.isolated_latency_s(fn, torch.cuda.synchronize)
        info[contract.LATENCY_S] = latency_s
        info[contract.LATENCY_PER_TOKEN_S] = latency_s / case.workload.n_tokens
    if "device" in case.figures:
        info[contract.DEVICE_S] = clock.device_time_s(fn)
    return info


def breakdown_info(call: core.PreparedCall, code: breakdown.GeneratedCode, device: str) -> dict:
    """The breakdown fields of one benchmark (contract.BREAKDOWN...); never raises for a profiler fault."""
    parts, note = breakdown.record(call.fn, device)
    info: dict = {contract.BREAKDOWN: parts}
    if note:
        info[contract.BREAKDOWN_NOTE] = note
    if call.flags is not None:
        info[contract.CODE_FINGERPRINT] = code.fingerprint
        info[contract.CODE_KERNELS] = code.kernels
    return info


def pytest_benchmark_update_machine_info(config: pytest.Config, machine_info: dict) -> None:
    selection = config.stash[SELECTION_KEY]
    machine_info.update(
        {
            contract.TORCH_VERSION: torch.__version__,
            contract.DEVICE: selection.device,
            contract.DEVICE_NAME: clock.device_name(selection.device),
            contract.NUM_THREADS: torch.get_num_threads(),
            contract.CUDA_VERSION: torch.version.cuda if selection.device == "cuda" else None,
            contract.PRESET: selection.preset,
            contract.CACHE: selection.cache,
            contract.REST: selection.rest,
            contract.BREAKDOWN: selection.breakdown,
            contract.L2_BYTES: clock.l2_bytes(selection.device),
            contract.PYTHON_VERSION: platform.python_version(),
            contract.FIGURES_KEY: list(selection.figures),
        }
    )
    if selection.device == "cuda":
        index, uuid = clock.current_gpu(clock.nvml_module())
        machine_info.update({contract.GPU_INDEX: index, contract.GPU_UUID: uuid})
        # Which SDPA backends were allowed to run (PyTorch picks among the enabled ones per shape).
        backends = torch.backends.cuda
        machine_info[contract.SDPA_BACKENDS] = {
            "flash": backends.flash_sdp_enabled(),
            "mem_efficient": backends.mem_efficient_sdp_enabled(),
            "cudnn": backends.cudnn_sdp_enabled(),
            "math": backends.math_sdp_enabled(),
        }
    peaks = config.stash.get(PEAKS_KEY, None)
    if peaks is not None:
        machine_info.update(peaks.as_dict())


def pytest_benchmark_update_commit_info(config: pytest.Config, commit_info: dict) -> None:
    """PERF_CORE_COMMIT, when set, names the commit that ran, whatever git says.

    For copied trees (a GPU box, a CI tarball): they may carry no .git, or a stale one whose HEAD
    is not the code that ran (seen on the lent GPU machines). Both of git's times are replaced: a
    stale HEAD's author time would otherwise stand in for the missing PERF_CORE_COMMIT_TIME (the
    readers then order the run by its own save time).
    """
    commit = os.environ.get("PERF_CORE_COMMIT")
    if commit:
        when = os.environ.get("PERF_CORE_COMMIT_TIME")
        commit_info.update(
            {
                contract.COMMIT_ID: commit,
                contract.COMMIT_TIME: when,
                contract.COMMIT_AUTHOR_TIME: when,
                contract.COMMIT_DIRTY: False,
                contract.COMMIT_ERROR: None,
            }
        )


def pytest_benchmark_update_json(config: pytest.Config, benchmarks: list, output_json: dict) -> None:
    output_json[contract.FORMAT_KEY] = contract.FORMAT_VERSION
    output_json[contract.PHASES_KEY] = PHASES.as_dict(time.perf_counter())


@pytest.hookimpl(trylast=True)
def pytest_terminal_summary(terminalreporter, config: pytest.Config) -> None:
    """A per-token table beside pytest-benchmark's per-call one, naming what it measured."""
    session = getattr(config, "_benchmarksession", None)
    lines = summary.per_token_lines(session.benchmarks if session else [])
    if not lines:
        return
    selection: Selection = config.stash[SELECTION_KEY]
    terminalreporter.section(summary.title(selection, clock.device_name(selection.device), torch.get_num_threads()))
    for line in lines:
        terminalreporter.write_line(line)
