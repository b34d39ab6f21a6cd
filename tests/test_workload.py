from dataclasses import fields

import pytest

from perf_core import contract
from perf_core.measure.shape import Shape
from perf_core.measure.workload import PRESETS, Workload


def test_matmul_cost_model_counts_one_weight_read_and_two_flops_per_multiply_add():
    w = Workload("matmul", n_tokens=16, d_model=64, n_heads=4, dtype="bfloat16")
    assert w.flops == 2 * 16 * 64 * 64
    assert w.bytes == (64 * 64 + 2 * 16 * 64) * 2


def test_attention_cost_model_adds_causal_attention_to_four_projections():
    w = Workload("attention", n_tokens=4, d_model=8, n_heads=2)
    projections = 4 * 2 * 4 * 8 * 8
    causal = 2 * 2 * (4 * 5 // 2) * 8  # QK^T and PV over the 10 (query, key) pairs a causal mask keeps
    assert w.flops == projections + causal
    assert w.bytes == (4 * 8 * 8 + 2 * 4 * 8) * 4


def test_mlp_cost_model_counts_three_projections_through_d_ff():
    w = Workload("mlp", n_tokens=4, d_model=8, n_heads=2, d_ff=24)
    assert w.flops == 3 * 2 * 4 * 8 * 24
    assert w.bytes == (3 * 8 * 24 + 2 * 4 * 8) * 4


@pytest.mark.parametrize("kernel", ["attention", "matmul", "mlp"])
def test_the_products_a_kernel_declares_for_the_peak_are_its_projections(kernel):
    w = Workload(kernel, n_tokens=4, d_model=8, n_heads=2, batch=3, d_ff=24)
    causal = 2 * 2 * 3 * (4 * 5 // 2) * 8 if kernel == "attention" else 0  # attention's own, not a product
    assert sum(2 * m * k * n for m, k, n in w.gemms) == w.flops - causal
    assert all(m == 3 * 4 for m, _, _ in w.gemms)  # batch x tokens rows


def test_mlp_without_d_ff_is_a_one_line_error():
    with pytest.raises(ValueError, match="kernel 'mlp' needs d_ff"):
        _ = Workload("mlp", n_tokens=4, d_model=8, n_heads=2).flops


def test_floor_is_the_slower_of_compute_and_memory():
    w = Workload("matmul", n_tokens=16, d_model=64, n_heads=4)
    assert w.floor_s(peak_flops=w.flops, bandwidth=1e30) == pytest.approx(1.0)
    assert w.floor_s(peak_flops=1e30, bandwidth=w.bytes / 2) == pytest.approx(2.0)


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("kernel", "conv", "unknown kernel 'conv'"),
        ("dtype", "int8", "unknown dtype 'int8'"),
        ("device", "tpu", "unknown device 'tpu'"),
        ("n_tokens", 0, "n_tokens must be a positive integer, got 0"),
        ("n_tokens", 1.5, "n_tokens must be a positive integer, got 1.5"),
        ("n_heads", 3, "not divisible by n_heads 3"),
    ],
)
def test_bad_workload_is_refused_with_the_bad_value_named(field, value, message):
    fields = {"kernel": "matmul", "n_tokens": 16, "d_model": 64, "n_heads": 4} | {field: value}
    with pytest.raises(ValueError, match=message):
        Workload(**fields)


def test_gpu_preset_is_a_llama_7b_attention_layer_in_bf16():
    w = PRESETS["llama-7b"].workload("attention", 128, "cuda")
    assert (w.d_model, w.n_heads, w.head_dim, w.dtype, w.batch) == (4096, 32, 128, "bfloat16", 1)
    assert w.d_ff == 11008 and PRESETS["cpu-small"].workload("mlp", 16, "cpu").d_ff == 688


def test_the_recorded_shape_is_every_field_that_sizes_the_work():
    """contract.SHAPE names the extra_info keys of the size: every Shape field but kernel and n_tokens."""
    assert set(contract.SHAPE) == {f.name for f in fields(Shape)} - {contract.KERNEL, contract.N_TOKENS}
    w = Workload("mlp", n_tokens=4, d_model=8, n_heads=2, d_ff=24)
    assert w.sizes() == {
        **{"d_model": 8, "n_heads": 2, "batch": 1, "dtype": "float32", "device": "cpu", "d_ff": 24},
        **{"n_layers": 1, "n_kv_heads": None, "rope_theta": 10000.0},
    }
