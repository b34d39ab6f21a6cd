"""The kernel registry: a kernel defined in this file alone runs through the suite, plot and compare."""

import json
from pathlib import Path

import pytest
import torch
from torch import nn

from perf_core.cli import main
from perf_core.errors import UsageError
from perf_core.measure import kernels
from perf_core.measure.workload import Workload


class Scale(nn.Module):
    """A toy kernel: every channel times its own weight."""

    def __init__(self, d_model: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.empty(d_model))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.weight


TOY = kernels.Kernel(
    name="toy",
    description="activations times a per-channel weight",
    build=lambda w: Scale(w.d_model),
    flops=lambda w: w.batch * w.n_tokens * w.d_model,
    bytes=lambda w: kernels.streamed_bytes(w, w.d_model),
)


@pytest.fixture
def toy_kernel():
    kernels.register(TOY)
    yield TOY
    del kernels.REGISTRY["toy"]


def test_cost_model_and_builder_dispatch_through_the_registry(toy_kernel):
    w = Workload("toy", n_tokens=8, d_model=32, n_heads=4)
    assert (w.flops, w.bytes) == (8 * 32, (32 + 2 * 8 * 32) * 4)
    module, x = kernels.build(w)
    assert isinstance(module, Scale) and x.shape == (1, 8, 32)


def test_unknown_kernel_is_a_one_line_error():
    with pytest.raises(UsageError, match=r"^unknown kernel 'conv'; choose from attention, matmul"):
        Workload("conv", n_tokens=8, d_model=32, n_heads=4)
    with pytest.raises(UsageError, match=r"^kernel name 'my-kernel': use ASCII letters"):
        kernels.register(kernels.Kernel("my-kernel", "", TOY.build, TOY.flops, TOY.bytes))


@pytest.mark.parametrize("name", ["my-kernel", "moe<top2>", "flash attn", "注意力", "attn.", "2attn", "", "a,b", "a$b"])
def test_a_kernel_name_an_output_cannot_carry_is_refused_naming_the_rule(name):
    with pytest.raises(UsageError, match=r"^kernel name .*: use ASCII letters, digits, '_' and '\.', starting with"):
        kernels.register(kernels.Kernel(name, "", TOY.build, TOY.flops, TOY.bytes))
    assert name not in kernels.REGISTRY


@pytest.mark.parametrize("name", ["attn.v2", "moe_top2", "A1"])
def test_a_kernel_name_every_output_carries_is_accepted(name):
    try:
        assert kernels.register(kernels.Kernel(name, "", TOY.build, TOY.flops, TOY.bytes)).name == name
        assert kernels.REGISTRY[name].name == name
    finally:
        kernels.REGISTRY.pop(name, None)


def test_a_kernel_registered_in_a_test_runs_through_the_suite_plot_and_compare(
    toy_kernel, suite, tmp_path, capsys, monkeypatch, run_suite
):
    # The scratch suite's conftest registers TOY from this file: nothing in the package names it.
    suite.makeconftest(
        f"import sys; sys.path.insert(0, {str(Path(__file__).parent)!r})\n"
        "from perf_core.measure import kernels\nfrom test_registry import TOY\nkernels.register(TOY)\n"
        'pytest_plugins = ["perf_core.measure.plugin"]\n'
    )
    tiny = ["--kernels", "toy", "--tokens", "16,32", "-p", "no:cacheprovider"]
    untimed = run_suite("--benchmark-disable", *tiny)
    untimed.assert_outcomes(passed=4)  # eager and compiled, checked against eager, at 2 token counts
    timing = ["--benchmark-only", "--benchmark-max-time=0.001", "--benchmark-min-rounds=3", *tiny]
    for commit, hour in (("aaaaaaa", 10), ("bbbbbbb", 11)):
        monkeypatch.setenv("PERF_CORE_COMMIT", commit)
        monkeypatch.setenv("PERF_CORE_COMMIT_TIME", f"2026-11-26T{hour}:00:00+00:00")
        run_suite(*timing).assert_outcomes(passed=4)
    capsys.readouterr()
    storage = suite.path / ".benchmarks"
    code = main(["plot", "--storage", str(storage), "--json", "-o", str(tmp_path / "toy.png")])
    plotted = json.loads(capsys.readouterr().out)
    assert code == 0 and {row["benchmark"] for row in plotted} == {
        f"toy-{v}-{n}" for v in ("eager", "compiled") for n in (16, 32)
    }
    assert (tmp_path / "toy.png").stat().st_size > 0
    code = main(["compare", "aaaaaaa", "bbbbbbb", "--storage", str(storage), "--json"])
    compared = json.loads(capsys.readouterr().out)
    assert code in (0, 1) and [row["name"] for row in compared] == [
        "toy-compiled-16",
        "toy-compiled-32",
        "toy-eager-16",
        "toy-eager-32",
    ]
