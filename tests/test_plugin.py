"""The suite as a user runs it: ids, options, saved JSON, and failures that stay local."""

import json
import platform
import subprocess
import sys
import time

import pytest
from helpers import floor_held, git, raw_options

from perf_core import contract
from perf_core.analysis import records
from perf_core.errors import HistoryError, UsageError
from perf_core.measure import kernels
from perf_core.measure.selection import parse_selection
from perf_core.measure.storage import file_safe, name_problem

FAST = ["--tokens", "16,32", "--kernels", "matmul", "--benchmark-max-time", "0.01", "--benchmark-min-rounds", "2"]


def test_default_selection_is_the_full_cpu_suite():
    selection = parse_selection(raw_options(), cuda_available=False)
    assert selection.device == "cpu" and selection.preset == "cpu-small" and selection.threads == 1
    cases = selection.cases()
    assert {case.workload.kernel for case in cases} == set(kernels.defaults("cpu"))  # every CPU-default kernel
    assert {"attention", "matmul", "mlp"} <= set(kernels.defaults("cpu"))
    assert len(cases) == len(kernels.defaults("cpu")) * 2 * 6  # each kernel x eager, compiled x 6 token counts
    assert {"attention-compiled-128", "mlp-eager-16", "mlp-compiled-512"} <= {case.id for case in cases}


def test_gpu_is_chosen_automatically_with_its_preset():
    selection = parse_selection(raw_options(), cuda_available=True)
    assert (selection.device, selection.preset, selection.dtype) == ("cuda", "llama-7b", "bfloat16")


BAD_OPTIONS = [
    ("tokens", "16,0", "--tokens: '0' is not a positive integer"),
    ("tokens", "16,abc", "--tokens: 'abc' is not a positive integer"),
    ("tokens", "-4", "--tokens: '-4' is not a positive integer"),
    ("tokens", "16,,32", "--tokens: '16,,32' has an empty item"),
    ("kernels", "matmul,conv", "--kernels: unknown value 'conv'"),
    ("variants", "jit", "--variants: unknown value 'jit'"),
    ("dtype", "int8", "--dtype: unknown value 'int8'"),
    ("device", "tpu", "--device: unknown value 'tpu'"),
    ("device", "cuda", "--device: 'cuda' was asked for but CUDA is not available"),
    ("preset", "gpt-5", "--preset: unknown value 'gpt-5'"),
    ("device", "cpu,cuda", "--device: unknown value 'cpu,cuda'"),  # single-valued options take one value
    ("preset", "cpu-small,llama-7b", "--preset: unknown value 'cpu-small,llama-7b'"),
    ("threads", "0", "--threads: '0' is not a positive integer"),
    # Device time and isolated latency are CUDA's figures: asked for on the CPU, refused, not left empty.
    ("figures", "device", "--figures: 'device' is measured on CUDA only; this run is on the cpu"),
    ("figures", "steady,latency", "--figures: 'latency' is measured on CUDA only"),
    ("figures", "wall", "--figures: unknown value 'wall'"),
]


@pytest.mark.parametrize(("option", "value", "message"), BAD_OPTIONS)
def test_bad_option_is_a_one_line_usage_error(option, value, message):
    with pytest.raises(UsageError) as error:
        parse_selection(raw_options(**{option: value}), cuda_available=False)
    assert "\n" not in str(error.value) and message in str(error.value)


def test_figures_all_is_every_figure_of_the_device_and_device_time_alone_rests_nothing():
    assert parse_selection(raw_options(), cuda_available=False).figures == ("steady",)
    assert parse_selection(raw_options(), cuda_available=True).figures == ("steady", "latency", "device")
    device_only = parse_selection(raw_options(figures="device"), cuda_available=True)
    assert device_only.figures == ("device",) and device_only.rest == 0  # rests fall between steady rounds
    assert parse_selection(raw_options(figures="device,steady"), cuda_available=True).figures == ("steady", "device")
    with pytest.raises(UsageError, match="--rest: '1' rests the GPU between steady rounds; --figures has none"):
        parse_selection(raw_options(figures="device", rest="1"), cuda_available=True)


# End to end, once per kind of message (a count, a name from a list, what this machine lacks): the
# plugin turns the error into pytest's usage error, exit 4, before it collects anything.
@pytest.mark.parametrize(
    ("option", "value", "message"), [BAD_OPTIONS[0], BAD_OPTIONS[4], BAD_OPTIONS[8]], ids=["count", "name", "machine"]
)
def test_bad_option_is_a_one_line_usage_error_before_any_work(suite, option, value, message, run_suite):
    result = run_suite(f"--{option}={value}", "--benchmark-disable")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    error_lines = [line for line in result.stderr.lines if line.strip()]
    assert len(error_lines) == 1 and message in error_lines[0], result.stderr.str()
    assert "collected" not in result.stdout.str()


def test_ini_file_sets_defaults_and_the_command_line_wins(suite):
    suite.makeini("[pytest]\nperf_kernels = attention\nperf_tokens = 16\n")
    result = suite.runpytest_inprocess("--collect-only", "-q")
    assert "test_latency.py::test_latency[attention-eager-16]" in result.stdout.str()
    assert "perf_core: benchmark files test_latency.py" in result.stdout.lines  # what perf-core ab collects
    assert "matmul" not in result.stdout.str()
    result = suite.runpytest_inprocess("--collect-only", "-q", "--kernels", "matmul", "--variants", "compiled")
    assert [line for line in result.stdout.lines if "::" in line] == [
        "test_latency.py::test_latency[matmul-compiled-16]"
    ]


def test_timed_run_is_saved_with_the_contract_fields(suite, run_suite):
    result = run_suite("--benchmark-only", *FAST)
    result.assert_outcomes(passed=4)
    assert "per-token latency" in result.stdout.str()
    (saved,) = (suite.path / ".benchmarks").glob("*/*.json")
    run = json.loads(saved.read_text())
    machine = run["machine_info"]
    assert {"torch_version", "device_name", "num_threads", "cuda_version"} <= machine.keys()
    assert machine["num_threads"] == 1 and machine["cuda_version"] is None
    assert machine["python_version"] == platform.python_version()
    assert machine["peak_flops_per_s"] > 0 and machine["copy_bytes_per_s"] > 0
    by_name = {bench["param"]: bench for bench in run["benchmarks"]}
    assert set(by_name) == {"matmul-eager-16", "matmul-eager-32", "matmul-compiled-16", "matmul-compiled-32"}
    compiled = by_name["matmul-compiled-32"]
    info = compiled["extra_info"]
    assert {"kernel", "variant", "n_tokens", "per_token_s", "flops", "bytes", "floor_s", "compile_s"} <= info.keys()
    assert info["per_token_s"] == pytest.approx(compiled["stats"]["median"] / 32)
    assert info["compile_flags"] == {
        "backend": "inductor",
        "mode": None,
        "fullgraph": True,
        "dynamic": False,
        "cuda_graph": False,
    }
    assert len(compiled["stats"]["data"]) == compiled["stats"]["rounds"]  # raw rounds are kept
    assert "compile_s" not in by_name["matmul-eager-16"]["extra_info"]
    # The floor is physical: nothing measured beats it (helpers.floor_held: a run beside other work
    # is taken once more).
    assert floor_held(run_suite, suite.path / ".benchmarks", run, "--benchmark-only", *FAST) == {}
    # In pytest-benchmark's own conventions: each parameter a plain value, one group per kernel and
    # variant, so that its compare groups by any parameter (a Case object made that a KeyError).
    assert compiled["params"] == {"kernel": "matmul", "variant": "compiled", "n_tokens": 32}
    assert {bench["group"] for bench in run["benchmarks"]} == {"matmul-eager", "matmul-compiled"}
    # The history stays pytest-benchmark's own: its compare command, run in the project, reads it and
    # groups it by a parameter (one such process: it parses the project's pytest configuration, conftest
    # plugins and so torch included, 4.5 s on the 2-core machine).
    storage = str(suite.path / ".benchmarks")
    grouped = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest_benchmark",
            "--storage",
            storage,
            "compare",
            "--group-by",
            "param:kernel",
            "0001",
        ],
        capture_output=True,
        text=True,
    )
    assert "test_latency[matmul-compiled-32]" in grouped.stdout, grouped.stderr
    assert grouped.returncode == 0 and "benchmark 'kernel=matmul': 4 tests" in grouped.stdout, grouped.stderr


@pytest.mark.parametrize(
    ("option", "listed"),
    [("device", "auto, cpu, cuda"), ("cache", "auto, cold, warm"), ("figures", "all, steady, latency, device")],
)
def test_a_refused_value_lists_every_value_the_option_takes(option, listed):
    """A newcomer's `--cache bad` listed cold and warm, not the default auto, which it also takes."""
    with pytest.raises(UsageError, match=rf"^--{option}: unknown value 'bad'; choose from {listed}$"):
        parse_selection(raw_options(**{option: "bad"}), cuda_available=False)
    assert parse_selection(raw_options(**{option: "auto" if option != "figures" else "all"}), cuda_available=False)


@pytest.mark.parametrize("figures", ["steady,all", "all,latency"])
def test_all_figures_stands_alone(figures):
    with pytest.raises(UsageError, match=rf"^--figures: 'all' stands alone; got '{figures}'$"):
        parse_selection(raw_options(figures=figures), cuda_available=False)


def test_disabled_run_checks_every_case_once_and_saves_nothing(suite, run_suite):
    result = run_suite("--benchmark-disable", *FAST)
    result.assert_outcomes(passed=4)
    assert not list(suite.path.glob(".benchmarks/**/*.json"))


def test_compile_failure_fails_only_that_benchmark_and_the_run_is_still_saved(suite, run_suite):
    suite.makeconftest(
        """
import pytest, torch

pytest_plugins = ["perf_core.measure.plugin"]

real_compile = torch.compile

def compile_that_breaks_at_32_tokens(module, **flags):
    compiled = real_compile(module, **flags)
    def call(x):
        if x.shape[1] == 32:
            raise RuntimeError("inductor exploded")
        return compiled(x)
    return call

torch.compile = compile_that_breaks_at_32_tokens
"""
    )
    result = run_suite("--benchmark-only", *FAST)
    result.assert_outcomes(passed=3, failed=1)
    result.stdout.fnmatch_lines(
        ["*_ test_latency?matmul-compiled-32? _*", "torch.compile failed for matmul-32 *inductor exploded"]
    )
    assert "Traceback" not in result.stdout.str()
    (saved,) = (suite.path / ".benchmarks").glob("*/*.json")
    names = {bench["param"] for bench in json.loads(saved.read_text())["benchmarks"]}
    assert names == {"matmul-eager-16", "matmul-eager-32", "matmul-compiled-16"}


def test_out_of_memory_fails_only_that_size_naming_it(suite, run_suite):
    suite.makeconftest(
        """
import torch

pytest_plugins = ["perf_core.measure.plugin"]

real_build = __import__("perf_core.measure.kernels", fromlist=["build"]).build

def build_that_runs_out_at_32_tokens(workload, seed=0):
    if workload.n_tokens == 32:
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
    return real_build(workload, seed)

import perf_core.measure.kernels
perf_core.measure.kernels.build = build_that_runs_out_at_32_tokens
"""
    )
    result = run_suite("--benchmark-only", *FAST)
    result.assert_outcomes(passed=2, failed=2)
    result.stdout.fnmatch_lines(["out of memory in matmul-eager-32: 32 tokens, batch 1, d_model 256, float32"])
    (saved,) = (suite.path / ".benchmarks").glob("*/*.json")
    assert {bench["param"] for bench in json.loads(saved.read_text())["benchmarks"]} == {
        "matmul-eager-16",
        "matmul-compiled-16",
    }


def test_perf_core_commit_names_the_commit_even_where_git_says_otherwise(suite, monkeypatch):
    for command in (["init", "-q"], ["add", "-A"], ["commit", "-qm", "x"]):
        git(suite.path, *command)
    monkeypatch.setenv("PERF_CORE_COMMIT", "c0ffee")
    monkeypatch.setenv("PERF_CORE_COMMIT_TIME", "2026-11-26T10:00:00+00:00")
    result = suite.runpytest_inprocess("--benchmark-only", *FAST, "--tokens=16", "--variants=eager")
    result.assert_outcomes(passed=1)
    (saved,) = (suite.path / ".benchmarks").glob("*/*.json")
    assert "c0ffee" in saved.name
    commit = json.loads(saved.read_text())["commit_info"]
    assert (commit["id"], commit["time"]) == ("c0ffee", "2026-11-26T10:00:00+00:00")


# A value that cannot become a file name: the commit is made safe, a name given on the command line
# is refused before any work, and a run that fails to save anyway is written aside, never lost.
UNSAFE_COMMITS = ["feature/fast-attn", "fix attn: v2*?", "back\\slash|pipe<>", "new\nline", "注意力", "x" * 300]


@pytest.mark.parametrize("commit", UNSAFE_COMMITS)
def test_any_commit_becomes_a_file_name_every_file_system_keeps(commit):
    safe = file_safe(commit)
    assert set(safe) <= set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._+-")
    assert name_problem(f"{safe}_20261130_120000") is None


@pytest.mark.parametrize(
    ("name", "problem"),
    [("a/b", "'/'"), ("a\nb", "'\\n'"), ("x" * 300, "over the 255 a file system allows"), ("plain_name", None)],
)
def test_a_name_no_file_system_keeps_is_named_as_the_problem(name, problem):
    found = name_problem(name)
    assert found is None if problem is None else problem in found


def test_a_commit_with_a_slash_and_spaces_is_saved_under_a_safe_name_and_kept_whole(suite, monkeypatch, run_suite):
    monkeypatch.setenv("PERF_CORE_COMMIT", "feature/fast attn")
    result = run_suite("--benchmark-only", *FAST, "--tokens=16", "--variants=eager")
    result.assert_outcomes(passed=1)
    assert "Traceback" not in result.stdout.str() + result.stderr.str()
    (saved,) = (suite.path / ".benchmarks").glob("*/*.json")
    assert saved.name.startswith("0001_feature_fast_attn_")
    assert json.loads(saved.read_text())["commit_info"]["id"] == "feature/fast attn"


@pytest.mark.parametrize(
    ("option", "message"),
    [
        ("--benchmark-save=" + "x" * 300, "ERROR: cannot save the run as 'xxx*...': the file name would be 310 bytes*"),
        (
            "--benchmark-storage=a_file",
            "ERROR: --benchmark-storage: runs cannot be saved there: *a_file is not a folder",
        ),
    ],
)
def test_a_run_that_could_not_be_saved_is_refused_before_any_work(suite, option, message, run_suite):
    (suite.path / "a_file").write_text("")
    result = run_suite("--benchmark-only", *FAST, option)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([message])
    assert "passed" not in result.stdout.str() and "Traceback" not in result.stderr.str()


def test_a_run_whose_storage_breaks_after_timing_is_written_aside_and_the_line_says_where(suite, run_suite):
    suite.makeconftest(
        """
import shutil

pytest_plugins = ["perf_core.measure.plugin"]

def pytest_benchmark_update_json(config, benchmarks, output_json):
    # Just before pytest-benchmark saves: its storage folder becomes a file (a lost mount, say).
    folder = config.rootpath / ".benchmarks"
    shutil.rmtree(folder)
    folder.write_text("")
"""
    )
    result = run_suite("--benchmark-only", *FAST, "--tokens=16")
    result.assert_outcomes(passed=2)
    assert result.ret == pytest.ExitCode.OK and "Traceback" not in result.stdout.str() + result.stderr.str()
    (line,) = [line for line in result.stdout.lines if "could not be saved" in line]
    (aside,) = suite.path.glob("perf_core_unsaved_*.json")
    assert line.endswith(f"it is saved in {aside}")
    assert {bench["param"] for bench in json.loads(aside.read_text())["benchmarks"]} == {
        "matmul-eager-16",
        "matmul-compiled-16",
    }
    assert "per-token latency" in result.stdout.str()


def test_a_fresh_cpu_run_is_at_or_above_its_floor_where_the_suite_does_the_most_work(suite, run_suite):
    # 512 tokens: where the compute rate sets the floor, and where a peak measured on one large matmul
    # was beaten (mlp-eager-512 at 0.96x its floor on a 2-core machine).
    args = ("--benchmark-only", "--kernels", "matmul,mlp", "--tokens", "512", "--benchmark-max-time", "0.01")
    args += ("--benchmark-min-rounds", "3")
    run_suite(*args).assert_outcomes(passed=4)
    (saved,) = (suite.path / ".benchmarks").glob("*/*.json")
    run = json.loads(saved.read_text())
    assert floor_held(run_suite, suite.path / ".benchmarks", run, *args) == {}
    # The peak names the product that set it: one of the suite's own, or the square.
    assert tuple(run["machine_info"]["peak_gemm"]) in {
        (512, 256, 256),
        (512, 256, 688),
        (512, 688, 256),
        (512, 512, 512),
    }


ONE_COMPILED = ["--kernels", "matmul", "--variants", "compiled", "--tokens", "16", "--benchmark-max-time", "0.01"]


def test_a_steady_only_run_loads_and_says_it_holds_steady_only(suite, tmp_path, run_suite):
    result = run_suite("--benchmark-only", "--figures", "steady", *ONE_COMPILED)
    result.assert_outcomes(passed=1)
    (saved,) = (suite.path / ".benchmarks").glob("*/*.json")
    assert json.loads(saved.read_text())["machine_info"]["figures"] == ["steady"]
    (run,) = records.load_runs([saved])
    bench = run.results["matmul-compiled-16"]
    assert bench.figures == ("steady",) and bench.seconds("steady") == bench.median_s
    # A figure the run did not measure reads as absent, whatever number sits in its field.
    document = json.loads(saved.read_text())
    document["machine_info"]["figures"] = ["device"]
    document["benchmarks"][0]["extra_info"]["device_s"] = 1e-6
    device_only = tmp_path / "device_only.json"
    device_only.write_text(json.dumps(document))
    (run,) = records.load_runs([device_only])
    assert run.results["matmul-compiled-16"].seconds("steady") is None
    assert run.results["matmul-compiled-16"].seconds("device") == 1e-6
    document["machine_info"]["figures"] = ["wall"]
    device_only.write_text(json.dumps(document))
    with pytest.raises(HistoryError, match="invalid figures"):
        records.load_runs([device_only])


def test_a_run_records_its_phases_non_negative_and_within_its_wall_time(suite, run_suite):
    started = time.perf_counter()
    result = run_suite("--benchmark-only", *ONE_COMPILED)
    wall_s = time.perf_counter() - started
    result.assert_outcomes(passed=1)
    (saved,) = (suite.path / ".benchmarks").glob("*/*.json")
    run = json.loads(saved.read_text())
    phases = run["phases_s"]
    assert set(phases) == {"startup_s", "compile_s", "timing_s"}
    assert all(seconds >= 0 for seconds in phases.values())
    assert sum(phases.values()) <= wall_s
    (bench,) = run["benchmarks"]
    assert phases["compile_s"] >= bench["extra_info"]["compile_s"]  # the compile phase holds the compile
    assert bench["extra_info"]["compile_cache"] in ("hit", "miss")


def test_a_run_with_a_pair_barrier_meets_the_other_run_and_times_thread_cpu_time(suite, run_suite):
    barrier = suite.path / "barrier"
    barrier.mkdir()
    (barrier / "base-matmul-compiled-16").touch()  # the other run is ready to time it too,
    (barrier / "base-matmul-compiled-16.timed").touch()  # and has timed it
    result = run_suite("--benchmark-only", f"--pair-barrier={barrier}:head", *ONE_COMPILED)
    result.assert_outcomes(passed=1)
    assert contract.PAIRS_TOGETHER_LINE in result.stdout.lines  # what perf-core ab looks for
    assert (barrier / "head-matmul-compiled-16").exists() and (barrier / "head-matmul-compiled-16.timed").exists()
    assert contract.pair_done(barrier, "head").exists()
    (saved,) = (suite.path / ".benchmarks").glob("*/*.json")
    (bench,) = json.loads(saved.read_text())["benchmarks"]
    assert bench["options"]["timer"] == "thread_time"  # pytest-benchmark records the function's name
    assert bench["extra_info"]["timed_together"] is True
    result = run_suite("--benchmark-only", f"--pair-barrier={barrier}:middle", *ONE_COMPILED)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert "--pair-barrier" in result.stderr.str() and "expected FOLDER:base or FOLDER:head" in result.stderr.str()
    result = run_suite("--benchmark-only", f"--pair-barrier={barrier}:head", "--threads", "2", *ONE_COMPILED)
    assert result.ret == pytest.ExitCode.USAGE_ERROR and "one torch thread only" in result.stderr.str()
