"""What a run of the suite measures: its options (command line and ini), parsed and validated into a
Selection before any work, and the Case of each benchmark it runs."""

from __future__ import annotations

from dataclasses import dataclass

from perf_core import contract
from perf_core.errors import UsageError, choices, fraction, one_of, positive_int, token_counts
from perf_core.measure import kernels
from perf_core.measure.shape import DEVICES, DTYPE_BYTES
from perf_core.measure.workload import DEFAULT_PRESET, PRESETS, Workload

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
    "gate": (
        "false",
        "the pull-request gate's selection: without --kernels, the device's default kernels less the"
        " model-scale ones (decoder, model: minutes a run on a GPU); perf-core ab passes it (true/false)",
    ),
    "figures": (
        "all",
        "comma-separated figures to measure: steady (pytest-benchmark's rounds), latency and device (CUDA"
        " only), or all; a figure left out costs nothing (steady: one round, recorded as not measured)",
    ),
}
FLAGS = ("breakdown", "gate")  # on/off options: --NAME and --no-NAME on the command line, true/false in the ini


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
        return Case(
            shape.workload(kernel, n_tokens, self.device),
            variant,
            self.preset,
            self.cache,
            self.breakdown,
            self.figures,
        )

    def cases(self) -> list[Case]:
        return [
            self.case(kernel, variant, n) for kernel in self.kernels for variant in self.variants for n in self.tokens
        ]


def parse_figures(text: str, device: str) -> tuple[str, ...]:
    """The figures a run measures, in contract order; "all": every one its device has (the CPU: steady).
    Raises UsageError for a figure the device cannot give (latency and device time are CUDA's)."""
    available = contract.FIGURES if device == "cuda" else ("steady",)
    asked = choices("--figures", text.strip() or "all", ("all", *contract.FIGURES))
    if "all" in asked and len(asked) > 1:
        raise UsageError(f"--figures: 'all' stands alone; got {text.strip()!r}")
    if asked == ("all",):
        return available
    for figure in asked:
        if figure not in available:
            raise UsageError(
                f"--figures: {figure!r} is measured on CUDA only; this run is on the {device}: steady or all"
            )
    return tuple(figure for figure in contract.FIGURES if figure in asked)


def parse_selection(raw: dict[str, str], cuda_available: bool) -> Selection:
    """Validate raw option strings; raises UsageError with a one-line message naming the bad value."""
    # Each value checked against every spelling the option takes (AUTO included), before AUTO is resolved.
    device = one_of("value", raw["device"].strip() or AUTO, (AUTO, *DEVICES), "--device")
    if device == AUTO:
        device = "cuda" if cuda_available else "cpu"
    if device == "cuda" and not cuda_available:
        raise UsageError("--device: 'cuda' was asked for but CUDA is not available on this machine")
    preset = raw["preset"].strip() or DEFAULT_PRESET[device]
    one_of("value", preset, PRESETS, "--preset")
    dtype = raw["dtype"].strip() or PRESETS[preset].dtype
    one_of("value", dtype, DTYPE_BYTES, "--dtype")
    cache = one_of("value", raw["cache"].strip() or AUTO, (AUTO, *contract.CACHE_MODES), "--cache")
    if cache == AUTO:
        cache = contract.COLD if device == "cuda" else contract.WARM
    figures = parse_figures(raw.get("figures", "all"), device)
    gate = one_of("value", raw.get("gate", "false").strip().lower(), ("true", "false"), "--gate") == "true"
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
        kernels=choices(
            "--kernels", raw["kernels"].strip() or ",".join(kernels.defaults(device, gate)), kernels.names()
        ),
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
