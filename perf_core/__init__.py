"""perf_core: per-token latency benchmarks of a compiled attention/matmul core.

Two halves that meet in one contract (README, "Layout"): ``perf_core.measure`` (needs torch:
workload and cost model, kernel registry, compiled core, clocks, the pytest plugin) writes runs;
``perf_core.analysis`` (no torch: records, selection, statistics, gate, change points, figures, the
view model) reads them; ``perf_core.commands`` (one module a command) sits between the analysis and ``cli``. Both share only ``contract`` (the JSON), ``errors`` (exit codes, validation) and ``units``;
``cli`` is the entry point and nothing imports it.
"""

__version__ = "0.1.0"
