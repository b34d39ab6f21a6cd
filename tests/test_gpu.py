"""GPU-only behaviour; skipped with the reason shown by `pytest -rs` on machines without CUDA."""

import pytest
import torch
from helpers import small

from perf_core.measure import clock, core, kernels
from perf_core.measure.core import CompileFlags

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU (CI has none)")


# Large enough for real kernels on the card; bfloat16 as the GPU preset runs.
ON_GPU = {"d_model": 256, "n_heads": 4, "dtype": "bfloat16", "device": "cuda", "d_ff": 688}


@pytest.mark.parametrize("kernel", kernels.names())
def test_graph_replay_matches_eager(kernel):
    call = core.prepare(small(kernel, 16, **ON_GPU), "compiled", CompileFlags(cuda_graph=True))
    module, x = kernels.build(small(kernel, 16, **ON_GPU))
    with torch.no_grad():
        expected = module(x)
    torch.testing.assert_close(call.fn(), expected, rtol=3e-2, atol=3e-2)


def test_graph_replay_survives_the_next_benchmarks_compile():
    first = core.prepare(small("attention", 16, **ON_GPU), "compiled", CompileFlags(cuda_graph=True))
    core.prepare(small("attention", 32, **ON_GPU), "compiled", CompileFlags(cuda_graph=True))  # resets the compiler
    replayed = first.fn()
    torch.cuda.synchronize()  # an illegal address would surface here
    module, x = kernels.build(small("attention", 16, **ON_GPU))
    with torch.no_grad():
        torch.testing.assert_close(replayed, module(x), rtol=3e-2, atol=3e-2)  # and the replay is still right


def test_synchronized_timer_waits_for_the_gpu():
    a = torch.randn(4096, 4096, device="cuda")
    timer = clock.timer_for("cuda")
    start = timer()
    for _ in range(20):
        a @ a
    assert timer() - start > 20 * 2 * 4096**3 / 2e15  # at least the time at 2 PFLOP/s: the work was waited for


def test_resting_timer_keeps_its_rests_out_of_the_rounds_on_a_gpu():
    spin = clock.head_start(3e-3)  # a 3 ms spin kernel: known device work, past the 2 ms burst each round
    spin()
    torch.cuda.synchronize()
    rested = clock.timer_for("cuda", rest=3.0)
    rounds = []
    for _ in range(10):
        start = rested()
        spin()
        rounds.append(rested() - start)
    assert rested.rested_s > 0.8 * 10 * 3 * 3e-3  # the card rested about 3x each round's 3 ms
    assert max(rounds) < 2 * 3e-3  # and no round holds a 9 ms rest


def test_a_gpu_breakdown_holds_the_calls_kernels_not_its_profiler_range():
    """On an H200 the call's record_function range came back as a device 'kernel' as long as the call."""
    from perf_core.measure import breakdown

    a = torch.randn(512, 512, device="cuda")
    rows = breakdown.profile(lambda: a @ a, "cuda")
    names = [row[0] for row in rows]
    assert names and not any("perf_core" in name for name in names)
    # The head start's spin kernel is not the call's; the device's idle time between calls is a part.
    assert not any("spin_kernel" in name for name in names)
    (idle,) = [row for row in rows if row[0] == breakdown.IDLE]
    # A 512 x 512 product's launch and gaps: microseconds, never the 1 ms head start before the call.
    assert idle[1] == 1.0 and 0 <= idle[2] < clock.HEAD_START_S / 10


def test_a_compiled_calls_parts_add_up_to_its_device_time():
    """The cross-check of issue 22 on the call that missed it (matmul, one GEMM in a CUDA graph: its
    parts read 0.90-0.95 of device_s while the profiled calls had no CUDA events around them)."""
    from perf_core import contract
    from perf_core.analysis.explain import COVERAGE_TOLERANCE
    from perf_core.measure import breakdown
    from perf_core.measure.workload import PRESETS

    w = PRESETS["llama-7b"].workload("matmul", 16, "cuda")
    call = core.prepare(w, "compiled", cache=contract.COLD, l2_bytes=clock.l2_bytes("cuda"))
    parts_s = sum(seconds for _, _, seconds in breakdown.profile(call.fn, "cuda"))
    assert abs(parts_s / clock.device_time_s(call.fn) - 1) <= COVERAGE_TOLERANCE


@pytest.mark.parametrize("on_device", [False, True])
def test_a_kernel_is_built_on_the_gpu_only_when_it_says_it_may(monkeypatch, on_device):
    seen = []

    def build(w):
        seen.append(torch.get_default_device().type)  # where a tensor made without a device would land
        return kernels.Matmul(w.d_model)

    base = kernels.get("matmul")
    monkeypatch.setitem(
        kernels.REGISTRY,
        "matmul",
        kernels.Kernel("matmul", base.description, build, base.flops, base.bytes, build_on_device=on_device),
    )
    module, x = kernels.build(small("matmul", 16, **ON_GPU))
    assert seen == ["cuda" if on_device else "cpu"]
    assert next(module.parameters()).device.type == "cuda" and x.device.type == "cuda"
