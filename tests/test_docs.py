"""What the README tells a newcomer holds in this checkout."""

import pytest

from perf_core import contract
from perf_core.measure.plugin import SELECTION_KEY


def test_the_default_token_list_is_contract_token_counts(pytestconfig):
    """The README's one place to change the token list: nothing in this checkout's ini overrides it."""
    if pytestconfig.getoption("perf_tokens"):
        pytest.skip("--tokens given on the command line")
    assert pytestconfig.stash[SELECTION_KEY].tokens == contract.TOKEN_COUNTS
