"""The measuring half (needs torch): workload and cost model -> kernel registry -> compiled core ->
clocks -> the pytest plugin, which writes runs in the form perf_core.contract describes."""
