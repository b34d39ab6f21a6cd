"""`perf-core export`: the shapes Bencher and github-action-benchmark document, with units."""

import json
from datetime import datetime, timezone
from numbers import Real

import pytest

from perf_core.analysis import export as formats
from perf_core.analysis.export import series_name
from perf_core.analysis.select import Point
from perf_core.analysis.synthetic import MACHINE, NAMES, commit_sha, run_document, write_history, write_run
from perf_core.cli import main

CPU = f"{MACHINE['device_name']} | torch {MACHINE['torch_version']} | Python 3.11 | 1 thread"  # its label


def export(capsys, storage, *argv) -> tuple[int, object]:
    code = main(["export", "--storage", str(storage), *map(str, argv)])
    out = capsys.readouterr().out
    return code, json.loads(out) if code == 0 else out


def test_bencher_metric_format_matches_its_schema_with_latency_in_nanoseconds(tmp_path, capsys):
    write_history(tmp_path, 3)
    code, document = export(capsys, tmp_path, "--format", "bencher")
    assert code == 0 and len(document) == 24
    # BMF's JSON schema: {benchmark: {measure: {"value": number, "lower_value"?: number, "upper_value"?: number}}}
    for benchmark, measures in document.items():
        assert isinstance(benchmark, str) and benchmark and isinstance(measures, dict)
        for measure, metric in measures.items():
            assert measure in ("latency", "latency-per-token") and set(metric) <= {
                "value",
                "lower_value",
                "upper_value",
            }
            assert all(isinstance(v, Real) and not isinstance(v, bool) for v in metric.values())
            assert metric["lower_value"] <= metric["value"] <= metric["upper_value"]
    # synthetic matmul at 16 tokens: 20 us + 16 x 1.2 us per call, about 2.45 us per token (commit 2's level)
    matmul = document[series_name("matmul-eager-16", "steady", CPU)]
    assert matmul["latency"]["value"] == pytest.approx(16 * matmul["latency-per-token"]["value"])
    assert 30_000 < matmul["latency"]["value"] < 50_000  # nanoseconds, not seconds


def test_github_action_benchmark_custom_smaller_is_better_entries(tmp_path, capsys):
    write_history(tmp_path, 3)
    code, entries = export(capsys, tmp_path, "--format", "github-action-benchmark", "--commit", commit_sha(1)[:7])
    assert code == 0 and isinstance(entries, list) and len(entries) == 48  # per call and per token, 24 benchmarks
    for entry in entries:
        assert {"name", "unit", "value"} <= entry.keys() <= {"name", "unit", "value", "range", "extra"}
        assert isinstance(entry["value"], Real) and entry["unit"] in ("ns", "ns/token")
    by_name = {e["name"]: e for e in entries}
    name = series_name("attention-compiled-64", "steady", CPU)
    per_call, per_token = by_name[f"{name} (per call)"], by_name[f"{name} (per token)"]
    assert per_call["value"] == pytest.approx(64 * per_token["value"])
    assert commit_sha(1)[:7] in per_call["extra"] and "Test CPU 9000" in per_call["extra"]


def test_export_writes_a_file_atomically_and_refuses_an_unknown_commit(tmp_path, capsys):
    write_history(tmp_path / "h", 2)
    code = main(["export", "--storage", str(tmp_path / "h"), "--format", "bencher", "-o", str(tmp_path / "bmf.json")])
    assert code == 0 and len(json.loads((tmp_path / "bmf.json").read_text())) == 24
    code = main(["export", "--storage", str(tmp_path / "h"), "--format", "bencher", "--commit", "fffffff"])
    assert code == 2 and "unknown commit or run 'fffffff'" in capsys.readouterr().err


H200 = MACHINE | {"device_name": "NVIDIA H200", "cuda_version": "13.0"}


def machine_history(storage, machine: dict, commits: range, factors: dict[str, float] | None = None) -> None:
    """One run per commit on `machine`; the H200 3.08x faster than the CPU, as in the reported upload."""
    speed = 1 / 3.08 if machine is H200 else 1.0
    for i in commits:
        factor = {name: speed * (factors or {}).get(name, 1.0) for name in NAMES}
        write_run(
            storage,
            i,
            run_document(commit_sha(i), datetime(2026, 1, 1, i, tzinfo=timezone.utc), factor, seed=i, machine=machine),
        )


def action_upload(data: dict, suite: str, commit: str, benches: list[dict], threshold: float = 2.0) -> list[str]:
    """github-action-benchmark v1's own keying (src/addBenchmarkEntry.ts, src/write/findAlerts.ts): the
    action's `name:` picks the suite; the previous upload is the suite's last one of another commit;
    an entry is compared with the one of the same `name` there, and alerts past `alert-threshold`
    (default 200%). Returns the alerting names."""
    entries = data.setdefault(suite, [])
    previous = next((e for e in reversed(entries) if e["commit"] != commit), None)
    entries.append({"commit": commit, "benches": benches})
    if previous is None:
        return []
    before = {b["name"]: b["value"] for b in previous["benches"]}
    return [b["name"] for b in benches if b["name"] in before and b["value"] / before[b["name"]] > threshold]


def test_github_action_benchmark_keeps_machines_apart_by_its_own_keying(tmp_path, capsys):
    machine_history(tmp_path / "h200", H200, range(1, 2))
    machine_history(tmp_path / "cpu", MACHINE, range(2, 3))
    machine_history(tmp_path / "cpu", MACHINE, range(3, 4), {"matmul-eager-16": 2.5})  # a real regression
    upload = {}
    for storage, commit in ((tmp_path / "h200", 1), (tmp_path / "cpu", 2), (tmp_path / "cpu", 3)):
        code, benches = export(capsys, storage, "--format", "github-action-benchmark", "--commit", commit_sha(commit))
        assert code == 0
        upload[storage.name, commit] = benches
    # The reported upload: the H200's export, then the CPU's, under one action `name:` (48 alerts, 3.08x).
    shared: dict = {}
    assert action_upload(shared, "perf-core", commit_sha(1), upload["h200", 1]) == []
    assert action_upload(shared, "perf-core", commit_sha(2), upload["cpu", 2]) == []
    # The README's way, one `name:` per machine and metric: the CPU's own regression of commit 3 alerts,
    # per call and per token, and nothing else does.
    own: dict = {}
    action_upload(own, "perf-core H200 steady", commit_sha(1), upload["h200", 1])
    assert action_upload(own, "perf-core CPU steady", commit_sha(2), upload["cpu", 2]) == []
    alerts = action_upload(own, "perf-core CPU steady", commit_sha(3), upload["cpu", 3])
    name = series_name("matmul-eager-16", "steady", CPU)
    assert sorted(alerts) == [f"{name} (per call)", f"{name} (per token)"]


def test_bencher_series_never_mix_machines_or_metrics_even_on_one_testbed(tmp_path, capsys):
    # Bencher keys a series on testbed, benchmark name and measure slug; BMF cannot name the testbed,
    # so both machines uploaded without --testbed land on `localhost`.
    machine_history(tmp_path / "h200", H200, range(1, 2))
    machine_history(tmp_path / "cpu", MACHINE, range(2, 3))
    series: dict[tuple[str, str, str], set[str]] = {}
    for storage in (tmp_path / "h200", tmp_path / "cpu"):
        code, document = export(capsys, storage, "--format", "bencher")
        assert code == 0 and len(document) == 24
        for benchmark, measures in document.items():
            for measure in measures:
                series.setdefault(("localhost", benchmark, measure), set()).add(storage.name)
    assert len(series) == 2 * 24 * 2 and all(len(machines) == 1 for machines in series.values())
    # the metric too: one commit's points under two metrics share no benchmark name in either format
    point = Point("c", None, 1e-6, 0.9e-6, 1.1e-6, 1, (16e-6,))
    for metric_a, metric_b in (("steady", "device"), ("steady", "latency")):
        a = formats.bencher([("matmul-eager-16", point)], CPU, metric_a)
        b = formats.bencher([("matmul-eager-16", point)], CPU, metric_b)
        assert a.keys().isdisjoint(b.keys())
        a = formats.github_action_benchmark([("matmul-eager-16", point)], CPU, metric_a)
        b = formats.github_action_benchmark([("matmul-eager-16", point)], CPU, metric_b)
        assert {e["name"] for e in a}.isdisjoint(e["name"] for e in b)


def test_no_nan_or_infinity_is_ever_written_and_the_rest_still_go(tmp_path, capsys):
    # Finite in the history (records refuses NaN and infinity there), infinite in nanoseconds per call.
    huge = {"matmul-eager-16": 1e305}
    write_run(tmp_path, 1, run_document(commit_sha(0), datetime(2026, 1, 1, tzinfo=timezone.utc), huge))
    capsys.readouterr()  # numpy's overflow warning from the file's own stddev, not the export's

    def refuse(constant: str) -> None:
        raise AssertionError(f"{constant} in the export: not JSON")

    for fmt, count in (("bencher", 23), ("github-action-benchmark", 46)):
        assert main(["export", "--storage", str(tmp_path), "--format", fmt]) == 0
        captured = capsys.readouterr()
        document = json.loads(captured.out, parse_constant=refuse)
        assert len(document) == count
        assert captured.err.strip() == (
            "perf-core: left out 1 benchmark(s) whose figure is not finite: matmul-eager-16"
        )
