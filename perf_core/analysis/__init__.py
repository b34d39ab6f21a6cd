"""The analysing half (no torch): records read from saved runs -> selection and pooling ->
statistics (gate), change points, figures, output -> the commands behind `perf-core`."""
