"""The `perf-core` commands, one module each (asv's commands/ pattern).

Each module has `add_arguments(subparsers)`, which declares its subcommand with the shared option
groups of `options` and sets `run`, and `run(**values)`, one keyword per option, returning the exit
code. perf_core.cli assembles the parser from them; errors are PerfCoreErrors, which cli turns into
exits. Nothing here imports the CLI.
"""
