"""The analysing half (no torch): records read from saved runs -> selection and pooling ->
statistics (stats, gate), change points, figures, view model, output; perf_core.commands builds
the `perf-core` commands on it."""
