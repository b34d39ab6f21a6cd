"""`perf-core export`: the shapes Bencher and github-action-benchmark document, with units."""

import json
from numbers import Real

import pytest

from perf_core.analysis.synthetic import commit_sha, write_history
from perf_core.cli import main


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
    matmul = document["matmul-eager-16"]
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
    per_call, per_token = by_name["attention-compiled-64 (per call)"], by_name["attention-compiled-64 (per token)"]
    assert per_call["value"] == pytest.approx(64 * per_token["value"])
    assert commit_sha(1)[:7] in per_call["extra"] and "Test CPU 9000" in per_call["extra"]


def test_export_writes_a_file_atomically_and_refuses_an_unknown_commit(tmp_path, capsys):
    write_history(tmp_path / "h", 2)
    code = main(["export", "--storage", str(tmp_path / "h"), "--format", "bencher", "-o", str(tmp_path / "bmf.json")])
    assert code == 0 and len(json.loads((tmp_path / "bmf.json").read_text())) == 24
    code = main(["export", "--storage", str(tmp_path / "h"), "--format", "bencher", "--commit", "fffffff"])
    assert code == 2 and "unknown commit or run 'fffffff'" in capsys.readouterr().err
