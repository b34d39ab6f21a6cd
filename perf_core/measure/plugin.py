"""pytest integration: options, parametrization, device-aware timing and the JSON contract.

pytest-benchmark stays the harness (calibration, rounds, statistics, storage, compare); this
plugin only chooses what runs, prepares each call outside the timed region and enriches the JSON
through pytest-benchmark's hooks. Registered by the repository's root conftest.py.
"""

from __future__ import annotations

import contextlib
import os
import platform
import time

# Compile workers otherwise keep stealing the CPU for seconds after compiling; must be set
# before torch._inductor reads its config.
os.environ.setdefault("TORCHINDUCTOR_COMPILE_THREADS", "1")

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch
from pytest_benchmark.utils import get_current_time, get_tag

from perf_core import contract
from perf_core.errors import PerfCoreError, UsageError, choices, fraction, one_of, positive_int, token_counts
from perf_core.measure import breakdown, clock, core, kernels, storage
from perf_core.measure.shape import DEVICES, DTYPE_BYTES
from perf_core.measure.workload import DEFAULT_PRESET, PRESETS, Workload
from perf_core.units import format_seconds

PEAKS_KEY = pytest.StashKey["clock.Peaks | None"]()
SELECTION_KEY = pytest.StashKey["Selection"]()
# The card rests as long as it worked: on an H200 that kept 1980 MHz through the heaviest rounds,
# where back to back it fell to 1515-1695 MHz under its power cap, and their medians came within 5%
# of do_bench's single calls, three of five within 1% (rest 2 was no closer; results/h200/rest_trial.jsonl).
DEFAULT_REST = 1.0
AUTO = "auto"  # device, cache and rest: chosen by the device

PRESET_HELP = (
    ", ".join(f"{name} ({preset.description})" for name, preset in PRESETS.items())
    + "; default: "
    + ", ".join(f"{name} on {device}" for device, name in DEFAULT_PRESET.items())
)

def process_start() -> float:
    """This process's start on the perf_counter clock: from /proc on Linux (10 ms ticks), else now
    (where /proc is absent: from the plugin's import, after Python's and pytest's own start)."""
    now = time.perf_counter()
    try:
        fields = Path("/proc/self/stat").read_text().rsplit(")", 1)[1].split()
        uptime = float(Path("/proc/uptime").read_text().split()[0])
        age = uptime - int(fields[19]) / os.sysconf("SC_CLK_TCK")  # field 22, starttime, in clock ticks
    except (OSError, ValueError, IndexError):
        return now
    return now - max(0.0, age)


@dataclass
class Phases:
    """Where this process's seconds went (contract.PHASES), on the perf_counter clock: one process is one
    run, so one instance (PHASES) per process."""

    started: float
    first: float | None = None  # the first benchmark's start
    compile_s: float = 0.0  # every benchmark's core.prepare

    def begin(self) -> None:
        if self.first is None:
            self.first = time.perf_counter()

    def as_dict(self, now: float) -> dict[str, float]:
        first = now if self.first is None else self.first
        startup_s, compile_s, timing_s = contract.PHASES
        return {
            startup_s: first - self.started,
            compile_s: self.compile_s,
            timing_s: max(0.0, now - first - self.compile_s),
        }


PHASES = Phases(process_start())

# option name -> (ini default, help). Command line wins over the ini file, as in pytest itself.
OPTIONS = {
    "tokens": (",".join(map(str, contract.TOKEN_COUNTS)), "comma-separated token counts"),
    # Empty: the registry's kernels for the device (perf_core.measure.kernels.defaults), including
    # ones a conftest or an entry point adds: every one on CUDA; on the CPU all but decoder and model.
    "kernels": ("", "comma-separated kernels (default: every registered one that runs by default on the device)"),
    "variants": (",".join(contract.VARIANTS), f"comma-separated variants ({', '.join(contract.VARIANTS)})"),
    "device": (AUTO, "cpu, cuda, or auto (cuda when available)"),
    "dtype": ("", f"override the preset's dtype ({', '.join(DTYPE_BYTES)})"),
    "preset": ("", f"workload preset: {PRESET_HELP}"),
    "threads": ("1", "torch intra-op threads; one gives stable numbers on small CPUs"),
    "cache": (AUTO, "cold (weights and input rotated past L2), warm (back to back), or auto: cold on CUDA"),
    "rest": (
        AUTO,
        "CUDA only: after each round the card rests this many times as long as it worked, so it"
        " keeps its clock under its power cap (0: back to back); auto: 1 on CUDA, 0 on the CPU",
    ),
    "autosave": ("true", "save every timed run under --benchmark-storage, with raw rounds (true/false)"),
    "breakdown": (
        "true",
        "after the timed rounds, profile a few calls: per-kernel times and the compiled code's fingerprint (true/false)",
    ),
    "figures": (
        "all",
        "comma-separated figures to measure: steady (pytest-benchmark's rounds), latency and device (CUDA"
        " only), or all; a figure left out costs nothing (steady: one round, recorded as not measured)",
    ),
}
FLAGS = ("breakdown",)  # on/off options: --NAME and --no-NAME on the command line, true/false in the ini


@dataclass(frozen=True)
class Case:
    """One benchmark: a workload and a variant (eager or compiled)."""

    workload: Workload
    variant: str
    preset: str
    cache: str = contract.WARM
    breakdown: bool = False  # profile the call after its timed rounds (perf_core.measure.breakdown)
    figures: tuple[str, ...] = contract.FIGURES  # what run_case measures (contract.FIGURES_KEY)

    @property
    def id(self) -> str:
        return contract.bench_name(self.workload.kernel, self.variant, self.workload.n_tokens)


@dataclass(frozen=True)
class Selection:
    """What this run measures, parsed and validated from the options before any work."""

    tokens: tuple[int, ...]
    kernels: tuple[str, ...]
    variants: tuple[str, ...]
    device: str
    dtype: str
    preset: str
    threads: int
    cache: str = contract.WARM
    rest: float = 0.0  # see clock.RestingTimer
    breakdown: bool = False
    figures: tuple[str, ...] = ("steady",)  # see parse_figures

    def case(self, kernel: str, variant: str, n_tokens: int) -> Case:
        shape = PRESETS[self.preset].with_dtype(self.dtype)
        return Case(shape.workload(kernel, n_tokens, self.device), variant, self.preset, self.cache, self.breakdown, self.figures)

    def cases(self) -> list[Case]:
        return [
            self.case(kernel, variant, n) for kernel in self.kernels for variant in self.variants for n in self.tokens
        ]


def parse_figures(text: str, device: str) -> tuple[str, ...]:
    """The figures a run measures, in contract order; "all": every one its device has (the CPU: steady).
    Raises UsageError for a figure the device cannot give (latency and device time are CUDA's)."""
    available = contract.FIGURES if device == "cuda" else ("steady",)
    if text.strip() in ("", "all"):
        return available
    asked = choices("--figures", text, contract.FIGURES)
    for figure in asked:
        if figure not in available:
            raise UsageError(
                f"--figures: {figure!r} is measured on CUDA only; this run is on the {device}: steady or all"
            )
    return tuple(figure for figure in contract.FIGURES if figure in asked)


def parse_selection(raw: dict[str, str], cuda_available: bool) -> Selection:
    """Validate raw option strings; raises UsageError with a one-line message naming the bad value."""
    device = raw["device"].strip() or AUTO
    if device == AUTO:
        device = "cuda" if cuda_available else "cpu"
    one_of("value", device, DEVICES, "--device")
    if device == "cuda" and not cuda_available:
        raise UsageError("--device: 'cuda' was asked for but CUDA is not available on this machine")
    preset = raw["preset"].strip() or DEFAULT_PRESET[device]
    one_of("value", preset, PRESETS, "--preset")
    dtype = raw["dtype"].strip() or PRESETS[preset].dtype
    one_of("value", dtype, DTYPE_BYTES, "--dtype")
    cache = raw["cache"].strip() or AUTO
    if cache == AUTO:
        cache = contract.COLD if device == "cuda" else contract.WARM
    one_of("value", cache, contract.CACHE_MODES, "--cache")
    figures = parse_figures(raw.get("figures", "all"), device)
    rest_text = raw["rest"].strip() or AUTO
    # The rest falls between steady rounds; a run without them has nothing to rest from.
    auto_rest = DEFAULT_REST if device == "cuda" and "steady" in figures else 0.0
    rest = auto_rest if rest_text == AUTO else fraction("--rest", rest_text, *contract.REST_BOUNDS)
    if rest and device != "cuda":
        raise UsageError(f"--rest: {rest_text!r} rests a GPU between rounds; this run is on the {device}: 0 or auto")
    if rest and "steady" not in figures:
        raise UsageError(f"--rest: {rest_text!r} rests the GPU between steady rounds; --figures has none: 0 or auto")
    return Selection(
        tokens=token_counts("--tokens", raw["tokens"]),
        kernels=choices("--kernels", raw["kernels"].strip() or ",".join(kernels.defaults(device)), kernels.names()),
        variants=choices("--variants", raw["variants"], contract.VARIANTS),
        device=device,
        dtype=dtype,
        preset=preset,
        threads=positive_int("--threads", raw["threads"]),
        cache=cache,
        rest=rest,
        breakdown=one_of("value", raw["breakdown"].strip().lower(), ("true", "false"), "--breakdown") == "true",
        figures=figures,
    )


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


def pytest_configure(config: pytest.Config) -> None:
    raw = {name: config.getoption(f"perf_{name}") or config.getini(f"perf_{name}") for name in OPTIONS}
    try:
        selection = parse_selection(raw, torch.cuda.is_available())
    except PerfCoreError as error:
        raise pytest.UsageError(str(error)) from None
    torch.set_num_threads(selection.threads)
    config.stash[SELECTION_KEY] = selection
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


def pytest_report_header(config: pytest.Config) -> str:
    """What this run measures, in the header (and for `perf-core ab`'s pre-flight check)."""
    s = config.stash[SELECTION_KEY]
    return (
        f"perf_core: device {s.device}, preset {s.preset} ({s.dtype}), {s.threads} thread(s), {s.cache} cache, rest {s.rest:g},"
        f" kernels {','.join(s.kernels)}, variants {','.join(s.variants)}, tokens {','.join(map(str, s.tokens))}"
    )


# A benchmark's parameters, each saved by pytest-benchmark under `params` (plain values, so that its own
# `compare --group-by param:kernel` reads them); the test id joins them (`attention-compiled-128`).
PARAMS = (contract.KERNEL, contract.VARIANT, contract.N_TOKENS)


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "perf_case" in metafunc.fixturenames:
        selection = metafunc.config.stash[SELECTION_KEY]
        timer = clock.timer_for(selection.device, selection.rest)
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
        **rates(w, median_s, peaks),
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
    """
    device = case.workload.device
    steady = "steady" in case.figures
    PHASES.begin()
    with failures_reported(case):
        l2 = clock.l2_bytes(device)
        with breakdown.compiled_code(kernel_profile=case.breakdown and device == "cpu") as code:
            start = time.perf_counter()
            call = core.prepare(case.workload, case.variant, cache=case.cache, l2_bytes=l2)
            PHASES.compile_s += time.perf_counter() - start
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
        median_s = benchmark.stats.stats.median if benchmark.stats else None
        benchmark.extra_info.update(extra_info(case, call, median_s, peaks, l2))
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
    held = (contract.PER_TOKEN_S, contract.DEVICE_S, contract.LATENCY_S)
    rows = [b for b in (session.benchmarks if session else []) if any(b.extra_info.get(key) for key in held)]
    if not rows:
        return
    selection = config.stash[SELECTION_KEY]
    where = (
        f"{clock.device_name(selection.device)}, preset {selection.preset} ({selection.dtype}),"
        f" {torch.get_num_threads()} thread(s), {selection.cache} cache"
        + (f", rest {selection.rest:g}" if selection.device == "cuda" else "")
    )
    terminalreporter.section(f"per-token latency (median per call / tokens): {where}")
    header = (
        f"{'benchmark':<28}{'per call':>14}{'per token':>14}{'floor/token':>14}{'x floor':>9}{'device/call':>14}"
        f"{'tokens/s':>12}{'GB/s':>10}{'of copy':>9}"
    )
    terminalreporter.write_line(header)
    named = {}
    for bench in rows:
        info = bench.extra_info
        named[contract.bench_name(info[contract.KERNEL], info[contract.VARIANT], info[contract.N_TOKENS])] = bench
    for name in sorted(named, key=contract.parse_name):
        bench = named[name]
        info = bench.extra_info
        n = info[contract.N_TOKENS]
        floor = info.get(contract.FLOOR_S)
        per_token = info.get(contract.PER_TOKEN_S)  # None where steady was not measured
        ratio = f"{per_token * n / floor:.2f}" if floor and per_token else "-"  # 0.96 must not read 1.0
        mark = "  THROTTLED" if info.get(contract.THROTTLED) else ""
        terminalreporter.write_line(
            f"{name:<28}{format_seconds(per_token and per_token * n):>14}{format_seconds(per_token):>14}"
            f"{format_seconds(floor / n if floor else None):>14}{ratio:>9}"
            f"{format_seconds(info.get(contract.DEVICE_S)):>14}{_rate_columns(info)}{mark}"
        )
    if any(b.extra_info.get(contract.THROTTLED) for b in rows):
        terminalreporter.write_line(
            "THROTTLED: NVML saw the card slowed (power, thermal) or its SM clock low during the rounds"
        )


def _rate_columns(info: dict) -> str:
    """tokens/s, GB/s and the share of the copy bandwidth; '-' where the run lacks one (no peaks)."""
    tokens, streamed, share = (
        info.get(key) for key in (contract.TOKENS_PER_S, contract.BYTES_PER_S, contract.BANDWIDTH_SHARE)
    )
    tokens_text = "-" if tokens is None else f"{tokens:,.0f}"
    streamed_text = "-" if streamed is None else f"{streamed / 1e9:.2f}"
    share_text = "-" if share is None else f"{share:.0%}"
    return f"{tokens_text:>12}{streamed_text:>10}{share_text:>9}"
