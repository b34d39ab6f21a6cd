"""The decoder and model kernels: a Llama layer (RoPE, grouped-query heads) and a stack of them, compiled
once per layer function, registered through the `perf_core.kernels` entry point."""

import importlib.metadata
import json

import pytest
import torch
from helpers import raw_options

from perf_core import contract
from perf_core.analysis import ab
from perf_core.errors import UsageError
from perf_core.measure import clock, core, kernels, llama
from perf_core.measure.plugin import rates
from perf_core.measure.selection import parse_selection
from perf_core.measure.workload import PRESETS, Workload


def small(kernel: str, n_tokens: int = 8, **fields) -> Workload:
    shape = {"d_model": 32, "n_heads": 4, "n_kv_heads": 2, "d_ff": 88, "n_layers": 3} | fields
    return Workload(kernel, n_tokens=n_tokens, **shape)


def test_decoder_and_model_come_in_through_the_public_entry_point():
    (entry,) = [e for e in importlib.metadata.entry_points(group=kernels.ENTRY_POINTS) if e.name == "llama"]
    assert entry.value == "perf_core.measure.llama:register_kernels"
    assert {"decoder", "model"} <= set(kernels.names())
    assert kernels.get("model").compile is llama.compile_model


def only_entry_point(monkeypatch, entry: importlib.metadata.EntryPoint) -> None:
    """The registry sees `entry` as the one entry point of its group, and loads entry points again."""
    monkeypatch.setattr(kernels, "_entry_points_loaded", False)
    monkeypatch.setattr(
        importlib.metadata, "entry_points", lambda group: [entry] if group == kernels.ENTRY_POINTS else []
    )


def test_an_entry_point_that_fails_is_a_one_line_error_naming_it(monkeypatch):
    broken = importlib.metadata.EntryPoint("broken", "no_such_module_xyz:register", kernels.ENTRY_POINTS)
    only_entry_point(monkeypatch, broken)
    with pytest.raises(UsageError, match=r"^entry point broken = no_such_module_xyz:register \(perf_core.kernels\)"):
        kernels.names()


def test_an_own_entry_point_this_checkout_lacks_is_skipped_with_a_warning(monkeypatch):
    # perf-core ab runs a base commit's worktree against the metadata installed from the head's.
    ahead = importlib.metadata.EntryPoint("llama", "perf_core.measure.not_yet:register", kernels.ENTRY_POINTS)
    only_entry_point(monkeypatch, ahead)
    with pytest.warns(UserWarning, match=r"skipped entry point perf_core.measure.not_yet:register"):
        assert "matmul" in kernels.names()


# Warm (one copy) is test_core's every-registered-kernel test; here the cold rotation's copies.
@pytest.mark.parametrize("kernel", ["decoder", "model"])
def test_compiled_matches_eager_on_every_cold_copy_without_recompiling(kernel):
    w = small(kernel, 16)
    call = core.prepare(w, "compiled", cache="cold", l2_bytes=1)  # rotates over 2 copies
    module, x = kernels.build(w)
    with torch.no_grad():
        expected = module(x)
    with core.no_recompiles():  # the copies' weights reuse the compiled code
        for _ in range(call.copies):
            torch.testing.assert_close(call.fn(), expected, rtol=1e-4, atol=1e-4)


def test_the_model_compiles_its_layer_function_once_for_every_layer():
    model, x = kernels.build(small("model", n_layers=4))
    compiled = llama.compile_model(model, core.CompileFlags().compile_kwargs())
    torch._dynamo.reset()
    torch._dynamo.utils.counters.clear()
    with torch.no_grad():
        compiled(x)
    assert torch._dynamo.utils.counters["stats"]["unique_graphs"] == 1


def test_the_model_is_its_layers_in_turn_each_with_its_own_weights():
    model, x = kernels.build(small("model", n_layers=3))
    with torch.no_grad():
        y = x
        for layer in model.layers:
            y = layer(y)
        torch.testing.assert_close(model(x), y)
    first, second = model.layers[0].wq, model.layers[1].wq
    assert first.data_ptr() != second.data_ptr() and not torch.equal(first, second)


def test_decoder_is_causal():
    layer, x = kernels.build(small("decoder"))
    changed = x.clone()
    changed[:, -1] += 1.0  # only the last token differs
    with torch.no_grad():
        a, b = layer(x), layer(changed)
    torch.testing.assert_close(a[:, :-1], b[:, :-1])
    assert not torch.allclose(a[:, -1], b[:, -1])


def test_rope_scores_depend_on_the_distance_between_positions_only():
    head_dim, theta = 8, 10000.0
    cos, sin = llama.rope_tables(12, head_dim, theta, torch.device("cpu"))  # (T, hd/2)
    q, k = torch.randn(2, head_dim, generator=torch.Generator().manual_seed(0))
    rotated_q = llama.apply_rope(q.expand(1, 1, 12, head_dim), cos, sin)[0, 0]  # (T, hd)
    rotated_k = llama.apply_rope(k.expand(1, 1, 12, head_dim), cos, sin)[0, 0]
    scores = rotated_q @ rotated_k.T  # (T, T): query position x key position
    torch.testing.assert_close(scores[5, 2], scores[9, 6])  # both 3 apart
    torch.testing.assert_close(rotated_q.norm(dim=-1), q.norm().expand(12))  # a rotation keeps the norm
    assert not torch.allclose(scores[5, 2], scores[5, 4])


def test_grouped_query_heads_equal_full_heads_with_each_key_value_head_repeated():
    grouped, x = kernels.build(small("decoder", n_kv_heads=2))
    full, _ = kernels.build(small("decoder", n_kv_heads=4))
    head_dim = 32 // 4
    with torch.no_grad():
        for name, weight in grouped.named_parameters():
            if name in ("wk", "wv"):  # (Hkv * hd, D) -> each head's rows twice: query heads 0, 1 share head 0
                weight = weight.view(2, head_dim, 32).repeat_interleave(2, dim=0).reshape(4 * head_dim, 32)
            getattr(full, name).copy_(weight)
        torch.testing.assert_close(grouped(x), full(x))


def test_cost_model_counts_each_layer_s_projections_attention_and_weights():
    w = small("decoder", 4, n_layers=2)  # D 32, 4 heads of 8, 2 key/value heads (K = 16), F 88
    projections = 2 * 4 * (32 * 32 * 2 + 32 * 16 * 2 + 32 * 88 * 3)
    causal = 2 * 2 * (4 * 5 // 2) * 32
    weights = 2 * 32 * 32 + 2 * 32 * 16 + 3 * 32 * 88 + 2 * 32
    assert (w.flops, w.bytes) == (projections + causal, (weights + 2 * 4 * 32) * 4)
    m = small("model", 4, n_layers=2)
    assert (m.flops, m.bytes) == (2 * w.flops, (2 * weights + 2 * 4 * 32) * 4)


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"n_kv_heads": 3}, "n_heads 4 is not divisible by n_kv_heads 3"),
        ({"n_layers": 0}, "n_layers must be a positive integer, got 0"),
        ({"rope_theta": 0.0}, "rope_theta must be positive"),
    ],
)
def test_bad_model_shape_is_refused_with_the_bad_value_named(fields, message):
    with pytest.raises(UsageError, match=message):
        small("model", **fields)


def test_rotary_embeddings_need_an_even_head_dim():
    with pytest.raises(UsageError, match="rotary embeddings need an even head_dim, got 9"):
        kernels.build(small("decoder", d_model=36, n_heads=4, n_kv_heads=4))


def test_presets_carry_the_published_llama_shapes():
    llama_2 = PRESETS["llama-7b"].workload("model", 16, "cuda")
    assert (llama_2.n_layers, llama_2.kv_heads, llama_2.d_ff, llama_2.rope_theta) == (32, 32, 11008, 10000.0)
    llama_3 = PRESETS["llama-3-8b"].workload("model", 16, "cuda")
    assert (llama_3.d_model, llama_3.n_heads, llama_3.n_layers, llama_3.kv_heads) == (4096, 32, 32, 8)
    assert (llama_3.d_ff, llama_3.rope_theta, llama_3.dtype) == (14336, 500000.0, "bfloat16")
    # 32 layers of 4096 x (2 x 4096 + 2 x 1024 + 3 x 14336) + 2 x 4096 weights: Llama 3 8B without
    # its embeddings and output head (0.5 B each), 6.98 B parameters.
    assert llama_3.bytes // 2 - 2 * 16 * 4096 == 32 * (4096 * (2 * 4096 + 2 * 1024 + 3 * 14336) + 2 * 4096)


def test_rates_are_tokens_and_bytes_over_the_median_call():
    w = small("model", 16)
    peaks = clock.Peaks(flops_per_s=1e12, bytes_per_s=4 * w.bytes, dtype="float32")
    assert rates(w, 0.5, peaks) == {
        contract.TOKENS_PER_S: 32.0,
        contract.BYTES_PER_S: 2 * w.bytes,
        contract.BANDWIDTH_SHARE: 0.5,
    }
    assert rates(w, 0.5, None)[contract.BANDWIDTH_SHARE] is None
    assert set(rates(w, None, peaks).values()) == {None}


def test_decoder_and_model_run_through_the_suite_and_are_saved_with_the_contract_fields(suite, run_suite):
    # One token count: each compiled case is a cold C++ build of a whole layer on a fresh machine
    # (~10 s on the 2-core machine); what is checked here is the same at every count. Breakdowns on,
    # as a user's run: the only test whose decoder and model are built with the CPU's kernel-profiling
    # hook (which names each kernel by its graph, so the model's layer cannot reuse the decoder's build).
    result = run_suite(
        "--benchmark-only", "--kernels", "decoder,model", "--tokens", "16",
        "--benchmark-max-time", "0.001", "--benchmark-min-rounds", "1", "-p", "no:cacheprovider",
    )  # fmt: skip
    result.assert_outcomes(passed=4)
    assert "tokens/s" in result.stdout.str()
    (saved,) = (suite.path / ".benchmarks").glob("*/*.json")
    run = json.loads(saved.read_text())
    by_name = {bench["param"]: bench for bench in run["benchmarks"]}
    assert set(by_name) == {contract.bench_name(k, v, 16) for k in ("decoder", "model") for v in contract.VARIANTS}
    copy_rate = run["machine_info"]["copy_bytes_per_s"]
    assert run["machine_info"][contract.BREAKDOWN] is True
    for name, bench in by_name.items():
        info, median = bench["extra_info"], bench["stats"]["median"]
        assert info[contract.FLOOR_S] > 0 and info[contract.FLOPS] > 0, name
        assert info[contract.TOKENS_PER_S] == pytest.approx(info[contract.N_TOKENS] / median)
        assert info[contract.BYTES_PER_S] == pytest.approx(info[contract.BYTES] / median)
        assert info[contract.BANDWIDTH_SHARE] == pytest.approx(info[contract.BYTES] / median / copy_rate)
        assert (info["n_layers"], info["n_kv_heads"]) == (2, 2)  # the CPU preset's
        assert (contract.COMPILE_S in info) == (info[contract.VARIANT] == "compiled")
        assert info[contract.BREAKDOWN], (name, info.get(contract.BREAKDOWN_NOTE))  # its parts, no note
        assert (contract.CODE_KERNELS in info) == (info[contract.VARIANT] == "compiled"), name


def test_decoder_and_model_run_by_default_on_cuda_and_on_the_cpu_when_asked():
    on_cuda = parse_selection(raw_options(), cuda_available=True)
    on_cpu = parse_selection(raw_options(), cuda_available=False)
    assert on_cuda.kernels == kernels.names() and {"decoder", "model"} <= set(on_cuda.kernels)
    assert not {"decoder", "model"} & set(on_cpu.kernels) and {"attention", "matmul", "mlp"} <= set(on_cpu.kernels)
    assert parse_selection(raw_options(kernels="decoder,model"), cuda_available=False).kernels == ("decoder", "model")


def test_the_gates_selection_leaves_the_model_scale_kernels_out_unless_named():
    gate = parse_selection(raw_options(gate="true"), cuda_available=True)
    assert not {"decoder", "model"} & set(gate.kernels) and {"attention", "matmul", "mlp"} <= set(gate.kernels)
    named = parse_selection(raw_options(gate="true", kernels="model"), cuda_available=True)
    assert named.kernels == ("model",)
    assert ab.selection_args(None, "compiled", None) == ["--variants=compiled", "-o", "perf_gate=true"]
    assert "perf_gate=true" not in ab.selection_args("model", None, None)
    with pytest.raises(UsageError, match="--gate"):
        parse_selection(raw_options(gate="maybe"), cuda_available=True)
