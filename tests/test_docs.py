"""What the README tells a newcomer holds in this checkout."""

from pathlib import Path

import pytest

from perf_core import contract
from perf_core.measure import kernels
from perf_core.measure.plugin import SELECTION_KEY
from perf_core.measure.workload import PRESETS

README = (Path(__file__).resolve().parent.parent / "README.md").read_text(encoding="utf-8")


def table_rows(text: str) -> dict[str, list[str]]:
    """Markdown table rows keyed by their first cell with its backticks taken off."""
    rows = {}
    for line in text.splitlines():
        if line.startswith("| `"):
            cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
            rows[cells[0].strip("`")] = cells[1:]
    return rows


def test_the_default_token_list_is_contract_token_counts(pytestconfig):
    """The README's one place to change the token list: nothing in this checkout's ini overrides it."""
    if pytestconfig.getoption("perf_tokens"):
        pytest.skip("--tokens given on the command line")
    assert pytestconfig.stash[SELECTION_KEY].tokens == contract.TOKEN_COUNTS


def test_the_readme_describes_every_kernel_of_the_package_as_its_registry_does():
    built_in = {name: k for name, k in kernels.REGISTRY.items() if k.build.__module__.startswith("perf_core.")}
    assert built_in, "no kernel registered by the package"
    rows = table_rows(README)
    for name, kernel in built_in.items():
        assert rows.get(name) == [kernel.description], f"README's row of kernel {name!r}"


def test_the_readme_lists_every_preset_with_its_sizes():
    rows = table_rows(README)
    for name, preset in PRESETS.items():
        shape = rows[name][0]
        assert f"d_model {preset.d_model}," in shape and f"d_ff {preset.d_ff}," in shape, name
        assert f"{preset.n_heads} heads" in shape and f"{preset.dtype}, batch {preset.batch}" in shape, name
