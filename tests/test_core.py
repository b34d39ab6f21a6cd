import pytest
import torch
from helpers import small

from perf_core.measure import core, kernels
from perf_core.measure.core import CompileFailed, CompileFlags


@pytest.mark.parametrize("kernel", kernels.names())
def test_inputs_are_seeded_and_never_zero(kernel):
    (_, x1), (_, x2) = kernels.build(small(kernel), seed=3), kernels.build(small(kernel), seed=3)
    torch.testing.assert_close(x1, x2)
    assert x1.abs().min() > 0 or x1.count_nonzero() == x1.numel()
    assert not torch.equal(x1, kernels.build(small(kernel), seed=4)[1])


def test_attention_block_is_causal():
    module, x = kernels.build(small("attention"), seed=0)
    changed = x.clone()
    changed[:, -1] += 1.0  # only the last token differs
    with torch.no_grad():
        a, b = module(x), module(changed)
    torch.testing.assert_close(a[:, :-1], b[:, :-1])  # earlier tokens cannot see it
    assert not torch.allclose(a[:, -1], b[:, -1])


def test_mismatch_fails_with_the_error_size():
    w = small("matmul")
    expected = torch.ones(2, 3)
    with pytest.raises(AssertionError, match=r"compiled matmul-8 differs from eager: .*Greatest absolute difference"):
        core.check_close(expected + 0.5, expected, w)


def test_compiled_call_matches_eager_and_records_its_flags():
    flags = CompileFlags()
    call = core.prepare(small("attention"), "compiled", flags)
    assert call.flags == flags and call.compile_s > 0
    module, x = kernels.build(small("attention"))
    with torch.no_grad():
        torch.testing.assert_close(call.fn(), module(x), rtol=1e-4, atol=1e-4)


def test_eager_call_has_no_compile_time():
    call = core.prepare(small("matmul"), "eager")
    assert call.compile_s is None and call.flags is None


def test_recompile_inside_the_timed_region_raises():
    compiled = core.compile_module(kernels.Matmul(32), CompileFlags())
    with torch.no_grad():
        compiled(torch.randn(1, 8, 32))
        with core.no_recompiles(), pytest.raises(RuntimeError, match=r"[Rr]ecompil"):
            compiled(torch.randn(1, 16, 32))  # a new static shape would need a new graph


def test_same_shape_inside_the_guard_runs():
    module, x = kernels.build(small("matmul"))
    compiled = core.compile_module(module, CompileFlags())
    with torch.no_grad():
        compiled(torch.randn(1, 8, 32))
        with core.no_recompiles():
            inside = compiled(x)  # raises if the guard took the same shape for a new one
        torch.testing.assert_close(inside, module(x), rtol=1e-4, atol=1e-4)


def test_compile_failure_names_the_workload_and_the_flags():
    with pytest.raises(CompileFailed, match=r"torch.compile failed for matmul-8 .*backend='no-such-backend'"):
        core.prepare(small("matmul"), "compiled", CompileFlags(backend="no-such-backend"))


@pytest.mark.parametrize("kernel", kernels.names())
def test_every_registered_kernel_compiles_and_matches_eager(kernel):
    call = core.prepare(small(kernel, 16), "compiled")
    module, x = kernels.build(small(kernel, 16))
    with torch.no_grad():
        torch.testing.assert_close(call.fn(), module(x), rtol=1e-4, atol=1e-4)


def test_mlp_is_swiglu_down_of_silu_gate_times_up():
    module, x = kernels.build(small("mlp"))
    with torch.no_grad():
        expected = (
            torch.nn.functional.silu(x @ module.gate.weight.T) * (x @ module.up.weight.T)
        ) @ module.down.weight.T
        torch.testing.assert_close(module(x), expected)
    assert [p.shape for p in module.parameters()] == [(88, 32), (88, 32), (32, 88)]
    assert not any(name.endswith("bias") for name, _ in module.named_parameters())
