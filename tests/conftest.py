from pathlib import Path

import pytest

pytest_plugins = ["pytester"]

SUITE_FILE = Path(__file__).with_name("test_latency.py")


@pytest.fixture
def suite(pytester: pytest.Pytester) -> pytest.Pytester:
    """A scratch project holding the real benchmark file and the suite's plugin."""
    pytester.makeconftest('pytest_plugins = ["perf_core.plugin"]\n')
    pytester.makepyfile(test_latency=SUITE_FILE.read_text())
    return pytester
