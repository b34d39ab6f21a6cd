"""explain: which parts of a call were added, removed, got slower or faster, on hand-made breakdowns;
and how a saved breakdown is read back."""

import json

import pytest
from helpers import perf_core

from perf_core import contract
from perf_core.analysis import ab, charts, gate, report
from perf_core.analysis.explain import MIN_SHARE, coverage, coverage_line, describe, explain, missing, why
from perf_core.analysis.records import Breakdown, Result, load_runs, parse_breakdown, parse_run
from perf_core.analysis.synthetic import commit_sha, write_history
from perf_core.contract import BREAKDOWN_IDLE as IDLE
from perf_core.contract import BREAKDOWN_IDLE_UNKNOWN as UNKNOWN

US = 1e-6
BASE = Breakdown(
    parts=(("aten::mm", 1.0, 80 * US), ("(python, outside ops)", 1.0, 15 * US), ("aten::view", 1.0, 5 * US)),
    fingerprint="aaaa",
    kernels=(),
)


def test_an_added_kernel_is_named_with_its_time_and_share_of_the_change():
    head = Breakdown((*BASE.parts, ("cpp_fused_mul", 1.0, 4 * US)), fingerprint="bbbb", kernels=("cpp_fused_mul",))
    found = explain(BASE, head)
    (added,) = found.added
    assert (added.name, added.base_s, added.head_s, added.head_calls) == ("cpp_fused_mul", None, 4 * US, 1.0)
    assert added.share == pytest.approx(1.0)
    assert found.change_s == pytest.approx(4 * US)
    assert not found.removed and not found.slower and not found.faster
    assert found.code_changed is True and found.kernels_added == ("cpp_fused_mul",) and found.kernels_removed == ()


def test_slower_faster_and_removed_parts_each_carry_their_share_of_the_whole_change():
    head = Breakdown((("aten::mm", 1.0, 100 * US), ("(python, outside ops)", 1.0, 9 * US)), "aaaa")
    found = explain(BASE, head)  # +20 us on mm, -6 us outside ops, view (5 us) gone: +9 us in all
    assert found.change_s == pytest.approx(9 * US)
    assert [(p.name, p.share) for p in found.slower] == [("aten::mm", pytest.approx(20 / 9))]
    assert [(p.name, p.share) for p in found.faster] == [("(python, outside ops)", pytest.approx(-6 / 9))]
    assert [(p.name, p.base_s, p.head_s) for p in found.removed] == [("aten::view", 5 * US, None)]
    assert [p.name for p in found.named] == ["aten::mm", "(python, outside ops)", "aten::view"]
    assert found.code_changed is False


def test_the_measured_change_leaves_out_the_parts_that_moved_within_their_noise():
    mm, python, view = BASE.parts
    head = Breakdown(((mm[0], 1.0, mm[2] + 1.5 * US), python, view, ("cpp_fused_mul", 1.0, 4 * US)), "bbbb")
    found = explain(BASE, head)  # mm +1.5 us: under 2% of the 100 us call, not named
    (added,) = found.named
    assert found.change_s == pytest.approx(5.5 * US) and found.measured_change_s == pytest.approx(4 * US)
    assert added.share == pytest.approx(4 / 5.5) and added.attributed == pytest.approx(1.0)
    assert found.unnamed_s == pytest.approx(1.5 * US)


def test_changes_under_the_threshold_are_not_named_but_summed():
    wiggle = MIN_SHARE * 100 * US * 0.9  # just under MIN_SHARE of the 100 us call
    head = Breakdown(
        (("aten::mm", 1.0, 80 * US + wiggle), ("(python, outside ops)", 1.0, 15 * US), ("aten::view", 1.0, 5 * US))
    )
    found = explain(BASE, head)
    assert found.named == () and found.unnamed_s == pytest.approx(wiggle)
    assert found.threshold_s == pytest.approx(MIN_SHARE * 100 * US)
    assert found.code_changed is None  # the head has no fingerprint: unknown, not "unchanged"
    assert [p.name for p in explain(BASE, head, min_share=0.0).slower] == ["aten::mm"]
    assert explain(BASE, head, min_share=0.0, noise_s=wiggle * 2).named == ()  # the caller's noise wins when larger


def test_a_part_only_one_side_has_is_named_however_small_and_the_spread_of_a_side_is_noise():
    tiny = Breakdown((*BASE.parts, ("cpp_fused_mul", 1.0, 0.1 * US)), "bbbb", ("cpp_fused_mul",))
    assert [p.name for p in explain(BASE, tiny).added] == ["cpp_fused_mul"]
    assert [p.name for p in explain(tiny, BASE).removed] == ["cpp_fused_mul"]
    moved = Breakdown((("aten::mm", 1.0, 90 * US), *BASE.parts[1:]), "aaaa")  # +10 us, 10% of the call
    assert [p.name for p in explain([BASE], [moved]).slower] == ["aten::mm"]
    spread = Breakdown((("aten::mm", 1.0, 92 * US), *BASE.parts[1:]), "aaaa")  # the base side's runs: 80-92 us
    found = explain([spread, BASE], [moved, moved])
    assert found.named == () and found.unnamed_s == pytest.approx(10 * US)


def test_a_small_part_missing_where_the_other_part_could_hold_it_is_not_named_added_or_removed():
    """Two runs of one commit (a newcomer's, 2026-12-01): a tiny part moved in and out of the named top
    parts, folded into `other` on one side; only a side without room in `other` makes it a fact."""
    folded = Breakdown((*BASE.parts, (contract.BREAKDOWN_OTHER, 3.0, 1.5 * US)), "aaaa")
    kept = Breakdown(
        (*BASE.parts, ("aten::empty_like", 1.0, 0.4 * US), (contract.BREAKDOWN_OTHER, 2.0, 1.1 * US)), "aaaa"
    )
    assert explain(folded, kept).named == () and explain(kept, folded).named == ()
    small_other = Breakdown((*BASE.parts, (contract.BREAKDOWN_OTHER, 3.0, 0.2 * US)), "aaaa")
    assert [p.name for p in explain(small_other, kept).added] == ["aten::empty_like"]
    roomy = Breakdown((*BASE.parts, (contract.BREAKDOWN_OTHER, 3.0, 8 * US)), "aaaa")
    big = Breakdown((*BASE.parts, ("cpp_fused_mul", 1.0, 5 * US), (contract.BREAKDOWN_OTHER, 2.0, 8 * US)), "aaaa")
    assert [p.name for p in explain(roomy, big).added] == ["cpp_fused_mul"]  # beyond the 2 us threshold: named


def test_a_kernel_with_more_calls_per_call_is_slower_and_says_so():
    head = Breakdown((("aten::mm", 2.0, 160 * US), *BASE.parts[1:]), "aaaa")
    (slower,) = explain(BASE, head).slower
    assert (slower.base_calls, slower.head_calls, slower.change_s) == (1.0, 2.0, pytest.approx(80 * US))


def test_several_runs_a_side_give_each_part_its_least_time_so_one_slowed_run_names_nothing():
    slowed = Breakdown(tuple((name, calls, seconds * 1.6) for name, calls, seconds in BASE.parts), "aaaa")
    assert explain(BASE, slowed).slower  # one run against one: the slowed run looks slower throughout
    found = explain([BASE, BASE], [slowed, BASE])
    assert found.named == () and found.change_s == 0 and found.code_changed is False
    head = Breakdown((*BASE.parts, ("cpp_fused_mul", 1.0, 4 * US)), "bbbb", ("cpp_fused_mul",))
    slowed_head = Breakdown(tuple((n, c, s * 1.6) for n, c, s in head.parts), "bbbb", ("cpp_fused_mul",))
    found = explain([BASE, slowed], [slowed_head, head])
    assert [(p.name, p.head_s, p.share) for p in found.named] == [("cpp_fused_mul", 4 * US, pytest.approx(1.0))]
    assert explain([BASE], [head, BASE]).code_changed is None  # the head side's runs disagree: unknown


def test_missing_breakdowns_give_a_one_line_reason():
    assert missing([BASE], [BASE]) is None
    assert "a base run has no breakdown (saved before format 3" in missing([None], [BASE])
    assert missing([BASE], []) == "the head side has no run of this benchmark"
    failed = Breakdown(None, note="no breakdown: the profiler failed (RuntimeError: boom)")
    reason = missing([BASE], [BASE, failed])
    assert reason == "a head run has no breakdown: no breakdown: the profiler failed (RuntimeError: boom)"
    with pytest.raises(ValueError, match="profiler failed"):
        explain(BASE, failed)


def test_saved_breakdowns_are_read_back_and_older_runs_have_none(tmp_path):
    (path,) = write_history(tmp_path, commits=1, rounds=5)
    document = json.loads(path.read_text())
    rows = [["aten::mm", 1, 8e-5], ["cpp_fused_mul", 1, 4e-6]]
    first, second = document["benchmarks"][:2]
    first["extra_info"] |= {
        contract.BREAKDOWN: rows,
        contract.CODE_FINGERPRINT: "0123456789abcdef",
        contract.CODE_KERNELS: ["cpp_fused_mul"],
    }
    run = parse_run(path, json.dumps(document))
    by_name = {r.name: r for r in run.results.values()}
    saved = by_name[first["param"]].breakdown
    assert saved == Breakdown(
        (("aten::mm", 1.0, 8e-5), ("cpp_fused_mul", 1.0, 4e-6)), "0123456789abcdef", ("cpp_fused_mul",)
    )
    assert by_name[second["param"]].breakdown is None  # as a format 2 run's


@pytest.mark.parametrize(
    ("saved", "note"),
    [
        (
            {contract.BREAKDOWN: None, contract.BREAKDOWN_NOTE: "no breakdown: the profiler failed (X: y)"},
            "profiler failed",
        ),
        ({contract.BREAKDOWN: [["aten::mm", 1, -3.0]]}, "the saved one is malformed"),
        ({contract.BREAKDOWN: "aten::mm"}, "the saved one is malformed"),
        ({contract.BREAKDOWN: None}, "no reason saved"),
    ],
)
def test_a_failed_or_damaged_breakdown_reads_as_none_with_a_note(saved, note):
    breakdown = parse_breakdown(saved)
    assert breakdown.parts is None and note in breakdown.note


# ---------------------------------------------------------------------------------------------
# the explain command, and the lines compare, ab's Markdown and the report carry

EXPLAINED = "matmul-compiled-64"
HEAD_PARTS = [["aten::mm", 1, 80e-6], ["(python, outside ops)", 1, 15e-6], ["cpp_fused_mul", 1, 10e-6]]


def with_breakdowns(paths, parts_of):
    """Give benchmark EXPLAINED of each run file `parts_of(i)`'s breakdown (None: leave it without)."""
    for i, path in enumerate(paths):
        parts = parts_of(i)
        if parts is None:
            continue
        document = json.loads(path.read_text())
        for bench in document["benchmarks"]:
            if bench["param"] == EXPLAINED:
                kernels = [name for name, _, _ in parts if name.startswith("cpp_")]
                bench["extra_info"] |= {
                    contract.BREAKDOWN: parts,
                    contract.CODE_FINGERPRINT: "bbbb" if kernels else "aaaa",
                    contract.CODE_KERNELS: kernels,
                }
        path.write_text(json.dumps(document))


@pytest.fixture
def history(tmp_path):
    """24 commits, one run each, the last 15% slower throughout; the last two have a breakdown of
    EXPLAINED, the newest with an added 10 us kernel."""
    paths = write_history(tmp_path / "h", commits=24, step_at=23, step=1.15, noise=0.005)
    base_parts = [part for part in HEAD_PARTS if part[0] != "cpp_fused_mul"]
    with_breakdowns(paths, lambda i: {22: base_parts, 23: HEAD_PARTS}.get(i))
    return tmp_path / "h"


BASE_C, HEAD_C = commit_sha(22)[:7], commit_sha(23)[:7]


def test_explain_names_the_added_kernel_and_says_which_benchmarks_have_no_breakdown(history, capsys):
    code, out, err = perf_core(capsys, "explain", BASE_C, HEAD_C, "--storage", history, "--no-index")
    assert code == 0 and err == ""
    block = out.split(f"{EXPLAINED} (REGRESSION")[1].split("\n-", 1)[0]
    assert "added   cpp_fused_mul" in block and "100% of measured" in block and "generated code changed" in block
    # Every other benchmark regressed too (the default: each changed one), and has no breakdown.
    assert out.count("a base run has no breakdown (saved before format 3") == 23


def test_explain_reads_breakdowns_through_the_index_too_and_json_has_every_figure(history, capsys):
    code, out, _ = perf_core(
        capsys, "explain", BASE_C, HEAD_C, "--storage", history, "--benchmark", EXPLAINED, "--json"
    )
    assert code == 0
    (found,) = json.loads(out)
    assert found["benchmark"] == EXPLAINED and found["verdict"] == "regression" and found["note"] is None
    (added,) = found["explanation"]["added"]
    assert (added["name"], added["head_s"], added["attributed"]) == ("cpp_fused_mul", 10e-6, 1.0)
    assert found["explanation"]["measured_change_s"] == pytest.approx(10e-6)


def test_explain_bad_input_is_a_one_line_error_or_note(history, tmp_path, capsys):
    code, _, err = perf_core(capsys, "explain", BASE_C, HEAD_C, "--storage", history, "--benchmark", "nope-eager-1")
    assert code == 2 and err.count("\n") == 1 and "--benchmark nope-eager-1: not a benchmark" in err
    older = commit_sha(21)[:7]  # a run without breakdowns on one side: nothing to explain
    code, _, err = perf_core(capsys, "explain", older, HEAD_C, "--storage", history, "--benchmark", EXPLAINED)
    assert code == 2 and err.count("\n") == 1 and "nothing to explain" in err and "a base run has no breakdown" in err
    write_history(tmp_path / "plain", commits=2)  # a history without any breakdown
    code, _, err = perf_core(capsys, "explain", commit_sha(0)[:7], commit_sha(1)[:7], "--storage", tmp_path / "plain")
    assert code == 2 and err.count("\n") == 1 and "nothing to explain" in err


def test_a_benchmark_only_one_side_has_gets_a_note(history, capsys):
    path = sorted(history.rglob("*.json"))[-1]  # the head's run
    document = json.loads(path.read_text())
    document["benchmarks"] = [b for b in document["benchmarks"] if b["param"] != "matmul-eager-64"]
    path.write_text(json.dumps(document))
    argv = ["explain", BASE_C, HEAD_C, "--storage", history, "--benchmark", EXPLAINED, "--benchmark", "matmul-eager-64"]
    code, out, _ = perf_core(capsys, *argv)
    assert code == 0 and "matmul-eager-64:\n  the head side has no run of this benchmark" in out
    assert "added   cpp_fused_mul" in out


def test_compare_prints_why_each_regression_changed(history, capsys):
    code, out, _ = perf_core(capsys, "compare", BASE_C, HEAD_C, "--storage", history)
    assert code == 1
    why = out.split(f"why {EXPLAINED}:\n")[1].splitlines()
    assert why[0].startswith("  profiled 95.000 us -> 105.000 us per call (+10.000 us)")
    assert " ".join(why[1].split()) == "added cpp_fused_mul - -> 10.000 us +10.000 us 100% of measured, 100% of whole"
    # The 23 other regressions have no breakdown: one line says so for all of them.
    (note,) = [line for line in out.splitlines() if line.startswith("why ") and "no breakdown" in line]
    names, reason = note.removeprefix("why ").split(": ", 1)
    assert len(names.split(", ")) == 23 and EXPLAINED not in names
    assert reason == "a base run has no breakdown (saved before format 3, or run with --no-breakdown)"


def test_the_pull_request_comment_folds_each_explanation(history):
    runs = load_runs(sorted(history.rglob("*.json")))
    base, head = [runs[22]], [runs[23]]
    decided = gate.decide_all(base, head, [EXPLAINED], "steady", 0.05, 0.05, history=runs)
    text = ab.markdown(decided, "t", 0.05, None, why([EXPLAINED], base, head))
    folded = text.split(f"<details><summary>why {EXPLAINED} changed</summary>")[1].split("</details>")[0]
    assert "```text" in folded and "added   cpp_fused_mul" in folded


def test_the_report_draws_each_commits_kernel_time_as_stacked_bars(history):
    runs = load_runs(sorted(history.rglob("*.json")))
    rows, unit = charts.breakdown_rows(runs[-2:], [EXPLAINED, "matmul-eager-64"])
    assert unit == "us"
    assert {(r["commit"], r["part"], r["per_call"]) for r in rows} == {
        (runs[22].short, "aten::mm", 80.0),
        (runs[22].short, "(python, outside ops)", 15.0),
        (runs[23].short, "aten::mm", 80.0),
        (runs[23].short, "(python, outside ops)", 15.0),
        (runs[23].short, "cpp_fused_mul", 10.0),
    }
    spec = charts.breakdown_spec(rows, unit)
    layer = spec if "mark" in spec else spec["layer"][0]
    assert layer["mark"]["type"] == "bar" and layer["encoding"]["color"]["field"] == "part"
    assert layer["encoding"]["y"]["stack"] == "zero" and spec["datasets"]["breakdown"] == rows
    (param,) = spec["params"]
    assert param["name"] == "benchmark" and param["bind"]["options"] == [EXPLAINED]
    page = report.machine_page(1, runs, [EXPLAINED], "steady", None, 0.05, breakdown_runs=runs[-2:])
    assert 'id="breakdown"' in page.body
    bare = report.machine_page(1, runs, [EXPLAINED], "steady", None, 0.05, breakdown_runs=runs[:2])
    assert 'id="breakdown"' not in bare.body and "no breakdown in these commits" in bare.body


def gpu_result(device_s, parts):
    return Result(
        "matmul-compiled-16",
        "matmul",
        "compiled",
        16,
        2e-5,
        1.9e-5,
        2.1e-5,
        device_s=device_s,
        breakdown=Breakdown(tuple(parts)) if parts is not None else None,
    )


@pytest.mark.parametrize(
    ("device_s", "parts", "share", "marked"),
    [
        # The H200's compiled matmul at 16 tokens (results/h200/gate21): two kernels, 12.2 of 16.4 us.
        (16.448e-6, [("nvjet_splitK", 1.0, 10.16e-6), ("splitKreduce_kernel", 1.0, 2.006e-6)], 0.740, True),
        (200.5e-6, [("gemm_a", 2.0, 121.2e-6), ("gemm_b", 1.0, 61.12e-6), ("silu", 1.0, 10.9e-6)], 0.963, False),
        (10e-6, [("k", 1.0, 11e-6)], 1.1, True),  # parts past the call: marked too
        # The same matmul since the idle part: the kernels and the device's 4.1 us between them.
        (
            16.448e-6,
            [("nvjet_splitK", 1.0, 10.16e-6), ("splitKreduce_kernel", 1.0, 2.006e-6), (IDLE, 1.0, 4.1e-6)],
            0.989,
            False,
        ),
        (16.448e-6, [("nvjet_splitK", 1.0, 10.16e-6), (IDLE, 1.0, 2.0e-6)], 0.739, True),  # the timeline saw less
        (None, [("aten::mm", 1.0, 5e-5)], None, False),  # a CPU run has no device time
        (16e-6, None, None, False),  # no breakdown
    ],
)
def test_a_call_whose_parts_do_not_add_up_to_its_device_time_is_marked(device_s, parts, share, marked):
    result = gpu_result(device_s, parts)
    assert coverage(result) == (None if share is None else pytest.approx(share, abs=0.001))
    line = coverage_line(result)
    assert (line is not None) == marked
    if marked:
        assert f"add up to {share:.0%} of the call's device time" in line
        has_idle = any(name == IDLE for name, _, _ in parts)
        short = "the profiler's timeline did not see" if has_idle else "gaps between kernels"
        assert (short if share < 1 else "overlapping parts") in line and "-" not in line.split("(")[1]


def test_the_kernels_share_leaves_the_idle_part_out():
    parts = [("nvjet_splitK", 1.0, 10.16e-6), ("splitKreduce_kernel", 1.0, 2.006e-6), (IDLE, 1.0, 4.1e-6)]
    result = gpu_result(16.448e-6, parts)
    assert coverage(result, kernels_only=True) == pytest.approx(0.740, abs=0.001)
    assert coverage(result) == pytest.approx(0.989, abs=0.001)


@pytest.mark.parametrize("older", ["base", "head"])
def test_an_idle_part_only_one_side_has_is_left_out_of_both_and_said(older):
    """A base saved before the idle part was measured: the part must not be named `added`."""
    kernels = [("gemm", 1.0, 10e-6), ("reduce", 1.0, 2e-6)]
    with_idle = Breakdown((*kernels, (IDLE, 1.0, 4e-6)))
    without = Breakdown(tuple(kernels))
    base, head = (without, with_idle) if older == "base" else (with_idle, without)
    e = explain(base, head)
    assert e.named == () and e.change_s == 0
    expected = f"the {older} run has none (saved before it was measured)"
    assert e.notes == (f"the device's time outside kernels is left out of both sides: {expected}",)
    assert f"  note: {e.notes[0]}" in describe(e)


@pytest.mark.parametrize(
    ("base_idle", "head_idle"), [(UNKNOWN, IDLE), (IDLE, UNKNOWN), (UNKNOWN, UNKNOWN), ((UNKNOWN, IDLE), IDLE)]
)
def test_an_idle_part_saved_under_the_old_name_is_compared_with_nothing(base_idle, head_idle):
    """Runs saved before the rename carry the old name whether or not their calls sat between CUDA
    events (the start event's ~1.3 us): a change of method must not be named a slowdown. A side
    whose runs mix both names is as unknown."""

    def side(idle):
        names = idle if isinstance(idle, tuple) else (idle,)
        return Breakdown(
            (("gemm", 1.0, 10e-6), ("reduce", 1.0, 2e-6), *((n, 1.0, 2.3e-6 + i * 1.6e-6) for i, n in enumerate(names)))
        )

    e = explain(side(base_idle), side(head_idle))
    assert e.named == () and e.change_s == 0
    assert len(e.notes) == 1 and UNKNOWN in e.notes[0] and "with or without the CUDA events" in e.notes[0]
    same = explain(side(IDLE), Breakdown((("gemm", 1.0, 10e-6), ("reduce", 1.0, 2e-6), (IDLE, 1.0, 9.9e-6))))
    assert same.notes == () and [p.name for p in same.named] == [IDLE]  # the new name on both sides: compared


def test_the_kernels_share_leaves_an_idle_part_of_either_method_out():
    parts = [("nvjet_splitK", 1.0, 10.16e-6), ("splitKreduce_kernel", 1.0, 2.006e-6), (UNKNOWN, 1.0, 4.1e-6)]
    assert coverage(gpu_result(16.448e-6, parts), kernels_only=True) == pytest.approx(0.740, abs=0.001)
