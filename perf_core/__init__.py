"""perf_core: per-token latency benchmarks of a compiled attention/matmul core.

The package reads as the data flow in the README: ``workload`` (what to run and its cost
model) -> ``kernels`` (eager reference) -> ``core`` (torch.compile, warmed and checked) ->
``clock`` (timing that is right for the device) -> ``plugin`` (pytest-benchmark integration)
-> ``history`` (loading the saved JSON) -> ``changes``/``gate``/``plots``/``ab`` -> ``cli``.
"""

__version__ = "0.1.0"
