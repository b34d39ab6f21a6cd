"""Breakdowns as the suite takes them: stable names, the compiled code's fingerprint, a failing
profiler, the on/off switch, and the CPU judging case of issue 22 (an added scale after the matmul)."""

import json

import pytest
import torch
from helpers import perf_core, raw_options

from perf_core import contract
from perf_core.analysis.explain import explain
from perf_core.analysis.records import load_runs
from perf_core.errors import UsageError
from perf_core.measure import breakdown, core, kernels, plugin
from perf_core.measure.kernels import Kernel, Matmul
from perf_core.measure.selection import parse_selection
from perf_core.measure.workload import PRESETS


@pytest.mark.parametrize(
    ("raw", "stable"),
    [
        ("graph_0_cpp_fused__unsafe_view_mul_0", "cpp_fused__unsafe_view_mul"),
        ("cpp_fused_add_mul_12", "cpp_fused_add_mul"),
        ("triton_poi_fused_add_3", "triton_poi_fused_add"),
        ("triton_red_fused__softmax_0", "triton_red_fused__softmax"),
        (
            "## Call CompiledFxGraph f55eukd6dsc7voyjmmtsxck344qytkwstdnjgflxrjc36vcqy5mq ##",
            "## Call CompiledFxGraph ##",
        ),
        ("Torch-Compiled Region: 0/3", "Torch-Compiled Region"),
        ("nvjet_sm90_tst_64x16_64x16_2x1_v_bz_splitK_NNT", "nvjet_sm90_tst_64x16_64x16_2x1_v_bz_splitK_NNT"),
        ("aten::mm", "aten::mm"),
        ("void at::native::kernel<0x7f3a2c00>", "void at::native::kernel<0x>"),
    ],
)
def test_profiler_names_lose_what_changes_between_runs(raw, stable):
    assert breakdown.stable_name(raw) == stable


class Scaled(Matmul):
    """The suite's matmul and one extra operation: a scale after the product."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x @ self.weight) * 0.5


def compiled_code_of(kernel: str) -> breakdown.GeneratedCode:
    workload = PRESETS["cpu-small"].workload(kernel, 16, "cpu")
    with breakdown.compiled_code(kernel_profile=True) as code:
        core.prepare(workload, "compiled", warmup_calls=1)
    return code


def test_the_same_kernel_compiled_twice_has_one_fingerprint_and_an_added_scale_changes_it(monkeypatch):
    first, again = compiled_code_of("matmul"), compiled_code_of("matmul")
    assert first.fingerprint is not None and first.fingerprint == again.fingerprint
    monkeypatch.setitem(
        kernels.REGISTRY,
        "scaled",
        Kernel("scaled", "matmul, then x 0.5", lambda w: Scaled(w.d_model), lambda w: 0, lambda w: 0),
    )
    scaled = compiled_code_of("scaled")
    assert scaled.fingerprint != first.fingerprint
    new = [name for name in scaled.kernels if name not in first.kernels]
    assert len(new) == 1 and new[0].startswith("cpp_fused") and "mul" in new[0], scaled.kernels


def test_breakdowns_are_on_by_default_and_the_ini_value_is_checked():
    assert parse_selection(raw_options(), cuda_available=False).breakdown is True
    assert all(case.breakdown for case in parse_selection(raw_options(), cuda_available=False).cases())
    assert parse_selection(raw_options(breakdown="False"), cuda_available=False).breakdown is False
    with pytest.raises(UsageError, match="--breakdown: unknown value 'maybe'"):
        parse_selection(raw_options(breakdown="maybe"), cuda_available=False)


def test_a_failing_profiler_leaves_a_one_line_note_and_no_breakdown(monkeypatch):
    def no_profiler(*args, **kwargs):
        raise RuntimeError("Kineto is not available\nsecond line")

    monkeypatch.setattr(torch.autograd.profiler, "profile", no_profiler)  # the CPU's profiler
    call = core.prepare(PRESETS["cpu-small"].workload("matmul", 16, "cpu"), "eager", warmup_calls=1)
    info = plugin.breakdown_info(call, breakdown.GeneratedCode(), "cpu")
    assert info[contract.BREAKDOWN] is None
    assert info[contract.BREAKDOWN_NOTE] == "no breakdown: the profiler failed (RuntimeError: Kineto is not available)"


def test_a_cpu_breakdown_has_one_call_of_each_part_and_adds_up_to_about_the_call():
    call = core.prepare(PRESETS["cpu-small"].workload("matmul", 64, "cpu"), "eager", warmup_calls=1)
    rows = breakdown.profile(call.fn, "cpu")
    by_name = {name: (calls, seconds) for name, calls, seconds in rows}
    assert by_name["aten::mm"][0] == 1.0 and by_name["aten::mm"][1] > 0
    assert [seconds for _, _, seconds in rows] == sorted((seconds for _, _, seconds in rows), reverse=True)
    assert breakdown.OUTSIDE_OPS in by_name


US = 1e-6


def timeline(*items):
    """A device timeline, in us: "H" a 100 us head start 1 us after the last thing ended; (a, b) a
    kernel from a to b us after the last head start ended."""
    out, opened, reached = [], 0.0, 0.0
    for item in items:
        if item == "H":
            out.append(((reached + 1) * US, (reached + 101) * US, True))
            opened = reached = reached + 101
        else:
            out.append(((opened + item[0]) * US, (opened + item[1]) * US, False))
            reached = max(reached, opened + item[1])
    return out


@pytest.mark.parametrize(
    ("items", "calls", "idle"),
    [
        # Two kernels a call, launched 3 us after the head start, 1 us apart; the next head start's
        # launch (1 us after the call) is not the call's.
        (["H", (3, 13), (14, 16), "H", (3, 13), (14, 16), "H"], 2, 3 + 1),
        # One kernel, launched at once: no idle time at all.
        (["H", (0, 10), "H", (0, 10), "H", (0, 10), "H"], 3, 0),
        # Overlapping kernels (two streams) count once: busy 2-14 of a window 0-14.
        (["H", (2, 12), (4, 14), "H"], 1, 14 - 12),
        # The median over the calls: one call held up by the host (starting 40 us late) does not move it.
        (["H", (2, 12), "H", (2, 12), "H", (40, 50), "H"], 3, 2),
        # Work before the first head start (the warm-up's tail) is in no call's window.
        ([(0, 50), "H", (2, 12), "H", (2, 12), "H"], 2, 2),
        (["H", (2, 12), "H", "H", (2, 12), "H"], 3, None),  # a window without a kernel: no call in it
        (["H", (2, 12), "H", (2, 12), "H", (2, 12), "H"], 2, None),  # more windows than calls
        (["H", (2, 12), "H", (2, 12), "H"], 3, None),  # fewer windows than calls
        (["H", (2, 12), (14, 16)], 1, None),  # no head start after the call
        ([(2, 12), (14, 16)], 1, None),
    ],
)
def test_the_devices_idle_time_per_call_is_its_window_after_the_head_start_less_its_busy_time(items, calls, idle):
    got = breakdown.device_idle_s(timeline(*items), calls)
    assert got == (None if idle is None else pytest.approx(idle * US))


def test_the_idle_part_is_kept_by_name_however_small():
    parts = [breakdown.Part(f"k{i}", 1.0, (i + 2) * US) for i in range(20)] + [breakdown.Part(breakdown.IDLE, 1.0, US)]
    rows = breakdown.summarize(parts, top=5)
    assert [row[0] for row in rows] == ["k19", "k18", "k17", "k16", "k15", breakdown.IDLE, breakdown.OTHER]
    assert sum(row[2] for row in rows) == pytest.approx(sum(part.seconds for part in parts))


CONFTEST = """
import torch
from perf_core.measure import kernels
from perf_core.measure.kernels import Kernel, Matmul, projection_flops, streamed_bytes

pytest_plugins = ["perf_core.measure.plugin"]

SCALE = {scale}


class Product(Matmul):
    def forward(self, x):
        y = x @ self.weight  # (B, T, D) @ (D, D)
        return y if SCALE is None else y * SCALE


kernels.register(
    Kernel(
        "product",
        "the suite's matmul, optionally scaled",
        lambda w: Product(w.d_model),
        lambda w: projection_flops(w, w.d_model, w.d_model),
        lambda w: streamed_bytes(w, w.d_model * w.d_model),
    )
)
"""
RUN = ["--benchmark-only", "--kernels", "product", "--variants", "compiled", "--tokens", "64"]
RUN += ["--benchmark-max-time", "0.05", "--benchmark-min-rounds", "3"]


def run_commit(suite: pytest.Pytester, run_suite, scale: float | None, *options: str):
    """`pytest --benchmark-only` of the suite at a "commit" whose product is scaled by `scale` (None: not)."""
    suite.makeconftest(CONFTEST.format(scale=scale))
    before = set((suite.path / ".benchmarks").glob("*/*.json"))
    result = run_suite(*RUN, *options)
    result.assert_outcomes(passed=1)
    (saved,) = set((suite.path / ".benchmarks").glob("*/*.json")) - before
    return saved


def test_explain_names_the_added_kernel_of_a_commit_and_no_code_change_for_one_that_changes_nothing(
    suite, run_suite, capsys
):
    # Interleaved, as ab runs base and head (A B A B A B), then three more runs of the unchanged
    # commit; each side three runs (explain.least, its noise their spread). A against A compares runs
    # alternating in time too: A1 A3 A5 (runs 1, 5, 8) against A2 A4 A6 (runs 3, 7, 9).
    # What is asserted is what the code decides: breakdowns saved, the added kernel found by the
    # compiled code's fingerprint and listed as added, no code change between A and A. How much of
    # the measured change the kernel takes (docs/breakdown.md: at least 80% on a quiet machine) and
    # whether A against A names a part are timings (~1 us of a ~130 us call on a shared 2-core
    # machine, whose unchanged parts move by more under load: -43% was seen beside another test
    # run): printed, not asserted; test_explain asserts the attribution itself on known parts.
    order = (None, 0.5, None, 0.5, None, 0.5, None, None, None)
    paths = [run_commit(suite, run_suite, scale) for scale in order]
    runs = {run.path: run for run in load_runs(paths)}
    (name,) = runs[paths[0]].results
    taken = [runs[path].results[name].breakdown for path in paths]
    a = [b for b, scale in zip(taken, order) if scale is None]
    b = [b for b, scale in zip(taken, order) if scale is not None]
    unchanged, changed = explain(a[0::2], a[1::2]), explain(a[:3], b)
    assert all(b.parts and b.fingerprint for b in taken)
    assert unchanged.code_changed is False and unchanged.kernels_added == ()
    assert changed.code_changed is True
    (new_kernel,) = changed.kernels_added
    assert new_kernel.startswith("cpp_fused") and "mul" in new_kernel
    (added,) = changed.added
    assert added.name == new_kernel and added.base_s is None and added.head_s > 0, changed
    with capsys.disabled():
        print(
            f"\njudging: {new_kernel} {added.head_s * 1e6:.2f} us, {added.attributed:.0%} of the measured change"
            f" ({changed.measured_change_s * 1e6:+.2f} us), {added.share:.0%} of the whole ({changed.change_s * 1e6:+.2f} us);"
            f" A/A named {[p.name for p in unchanged.named]}, unnamed {unchanged.unnamed_s * 1e6:+.2f} us;"
            f" named {[p.name for p in changed.named]}"
        )
    # The command names it too, reading one run a side through the history index.
    storage = suite.path / ".benchmarks"
    code, out, _ = perf_core(capsys, "explain", paths[0].name, paths[1].name, "--storage", storage)
    assert code == 0 and f"added   {new_kernel}" in out, out
    saved = json.loads(paths[1].read_text())
    assert saved["machine_info"][contract.BREAKDOWN] is True and saved[contract.FORMAT_KEY] == 3


def test_no_breakdown_saves_none_and_says_so_in_the_run(suite, run_suite):
    saved = run_commit(suite, run_suite, None, "--no-breakdown")
    document = json.loads(saved.read_text())
    assert document["machine_info"][contract.BREAKDOWN] is False
    (bench,) = document["benchmarks"]
    assert contract.BREAKDOWN not in bench["extra_info"] and contract.CODE_FINGERPRINT not in bench["extra_info"]
    (run,) = load_runs([saved])
    assert next(iter(run.results.values())).breakdown is None
