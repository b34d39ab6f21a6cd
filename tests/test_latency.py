"""The benchmark suite: kernel x variant x token count, e.g. `attention-compiled-128`.

`pytest --benchmark-only` times them; `pytest --benchmark-disable` runs each once, which still
compiles every compiled variant and checks it against eager.
"""

from perf_core.measure.plugin import run_case


def test_latency(benchmark, perf_case, perf_peaks):
    run_case(benchmark, perf_case, perf_peaks)
