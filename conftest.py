# Registers the suite's pytest plugin (options, parametrization, timing, JSON fields).
# Kept here rather than as a pytest11 entry point so that `perf-core ab` runs each side's own
# plugin from its own worktree.
pytest_plugins = ["perf_core.measure.plugin"]
