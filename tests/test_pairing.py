"""A pair's two runs timed together on one core (perf_core/measure/pairing.py) and read as pairs: the
barrier, ab's together mode, and the paired statistics (stats.paired_*, sequential's paired plan)."""

import itertools
import threading
import time
from contextlib import contextmanager
from datetime import datetime

import numpy as np
import pytest
import scipy.stats
from test_ab import IdleServer

from perf_core import contract
from perf_core.analysis import ab, lanes, sequential, stats
from perf_core.analysis.synthetic import run_document, write_run
from perf_core.errors import HistoryError, UsageError
from perf_core.measure import pairing


@pytest.mark.parametrize("n", [2, 5, 6, 8, 11])
def test_paired_p_is_the_exact_wilcoxon_signed_rank_p(n):
    rng = np.random.default_rng(n)
    for shift in (0.0, 0.02, -0.05):
        base = rng.lognormal(0, 0.1, n)
        head = base * rng.lognormal(shift, 0.02, n)
        expected = scipy.stats.wilcoxon(np.log(head) - np.log(base), method="exact").pvalue
        assert stats.paired_p(base, head) == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize("n", [5, 6, 8])
def test_every_pair_one_way_gives_the_smallest_p(n):
    base = np.ones(n)
    assert stats.paired_p(base, base * np.linspace(1.01, 1.1, n)) == stats.paired_smallest_p(n) == 2 / 2**n
    assert stats.paired_p(base, base / np.linspace(1.01, 1.1, n)) == 2 / 2**n


def test_a_pair_whose_runs_agree_never_makes_a_rejection_easier():
    base = np.ones(6)
    head = np.array([1.0, 1.02, 1.03, 1.04, 1.05, 1.06])  # pair 0 tied: counted against the head
    assert stats.paired_p(base, head) >= stats.paired_p(base, np.array([0.99, 1.02, 1.03, 1.04, 1.05, 1.06]))
    assert stats.paired_p(base, np.ones(6)) == 1.0
    assert stats.paired_p([1.0], [2.0]) == 1.0  # one pair: nothing can be significant


def test_paired_bounds_invert_the_test():
    """A ratio inside the interval is not rejected at the level; one outside it is."""
    rng = np.random.default_rng(3)
    base = rng.lognormal(0, 0.1, 8)
    head = base * rng.lognormal(0.03, 0.02, 8)
    level = 0.05
    low, high = stats.paired_bounds(base, head, level)
    assert low < np.exp(np.median(np.log(head / base))) < high
    for ratio, rejected in ((low * 0.999, True), (low * 1.001, False), (high * 0.999, False), (high * 1.001, True)):
        assert stats.significant(stats.paired_p(base, head / ratio), level) is rejected
    assert stats.paired_bounds(base[:5], head[:5], level) == (0.0, np.inf)  # 5 pairs: no 95% interval exists


def test_paired_family_p_is_exact_and_finds_the_changed_benchmark():
    rng = np.random.default_rng(0)
    base = rng.lognormal(0, 0.1, (6, 5))  # the runs spread 10%: the pairs share it
    head = base * rng.lognormal(0, 0.01, (6, 5))
    head[:, 2] *= 1.08
    p = stats.paired_family_p(base, head, 0.02)
    assert p[2] == stats.paired_family_smallest_p(6) == 2 / 2**6
    assert np.all(np.delete(p, 2) > 0.05)
    assert np.all(p >= stats.paired_p(base[:, 2], head[:, 2]) - 1e-12)  # never below its own test here
    with pytest.raises(ValueError):
        stats.paired_family_p(base, head[:5], 0.0)
    with pytest.raises(ValueError):
        stats.paired_family_p(base, -head, 0.0)


def test_paired_family_p_keeps_the_family_rate_with_no_change():
    """400 simulated A/A gates of 6 pairs and 18 benchmarks, pairs sharing a 10% offset, heavy-tailed
    noise inside a pair: the share with any family p at most 0.05 stays near or below 0.05."""
    rng = np.random.default_rng(1)
    flagged = 0
    for _ in range(400):
        offset = rng.lognormal(0, 0.1, (6, 1))
        base = offset * np.exp(0.02 * rng.standard_t(3, (6, 18)))
        head = offset * np.exp(0.02 * rng.standard_t(3, (6, 18)))
        flagged += bool(np.any(stats.paired_family_p(base, head, 0.024) <= 0.05))
    assert flagged / 400 <= 0.05 + 2 * np.sqrt(0.05 * 0.95 / 400)


def test_a_paired_plan_starts_where_the_signed_rank_test_can_reach_alpha():
    assert sequential.plan(0.05, 6, paired=True).looks == {6: 0.05}
    eight = sequential.plan(0.05, 8, paired=True)
    assert eight.looks == {6: 2 / 64, 7: 0.0, 8: pytest.approx(0.05 - 2 / 64)}
    assert eight.family_level(8) == pytest.approx(0.05 - 2 / 64)
    with pytest.raises(UsageError, match="with 5 pairs timed together no difference can be significant"):
        sequential.plan(0.05, 5, paired=True)


def test_a_paired_look_reads_each_pairs_own_ratio():
    """Runs that spread 30% between pairs but agree within each: 8% slower, every pair."""
    rule = sequential.plan(0.05, 8, paired=True)
    base = [1.0, 1.3, 0.8, 1.1, 0.9, 1.25]
    head = [b * f for b, f in zip(base, (1.08, 1.09, 1.07, 1.08, 1.085, 1.075))]
    seen = sequential.look(base, head, rule, 0.05, family_p=2 / 64)
    assert seen.verdict == sequential.REGRESSION and seen.ratio == pytest.approx(1.08, abs=0.002)
    assert sequential.look(base, head, sequential.plan(0.05, 5), 0.05).verdict == sequential.OPEN  # unpaired: lost
    same = [b * f for b, f in zip(base, (1.01, 0.99, 1.0, 1.005, 0.995, 1.0))]
    assert sequential.look(base, same, rule, 0.05, family_p=1.0).verdict == sequential.UNCHANGED


def test_the_barrier_waits_for_the_other_run_or_its_end(tmp_path):
    base, head = pairing.Barrier(tmp_path, "base"), pairing.parse(f"{tmp_path}:head")
    assert head == pairing.Barrier(tmp_path, "head") and head.other == "base"
    met = []
    waiter = threading.Thread(target=lambda: (base.meet("matmul-compiled-16"), met.append(time.monotonic())))
    waiter.start()
    time.sleep(0.2)
    assert not met  # base waits while head has not reached the benchmark
    reached = time.monotonic()
    head.meet("matmul-compiled-16")
    waiter.join(5)
    assert met and met[0] >= reached
    head.finish()  # head has ended: base waits for nothing more
    started = time.monotonic()
    assert base.meet("mlp-compiled-512") is False
    assert time.monotonic() - started < 1 and contract.pair_done(tmp_path, "head").exists()


def test_the_barrier_waits_only_at_shared_benchmarks_and_never_past_its_limit(tmp_path, monkeypatch):
    (tmp_path / contract.PAIR_SHARED).write_text("matmul-compiled-16\n")
    base = pairing.parse(f"{tmp_path}:base")
    assert base.shared == {"matmul-compiled-16"}
    started = time.monotonic()
    assert base.meet("attention-compiled-16") is False  # head has no such benchmark: no wait
    monkeypatch.setattr(pairing, "WAIT_LIMIT_S", 0.2)
    assert base.meet("matmul-compiled-16") is False  # head never came: timed alone after the limit
    assert 0.2 <= time.monotonic() - started < 2
    pairing.Barrier(tmp_path, "head").arrive("matmul-compiled-16.timed")  # e.g. head's compile failed
    assert base.meet("matmul-compiled-16", ".timed") is True


@pytest.mark.parametrize("value", ["/nowhere:base", "x", ":head", "{}:middle"])
def test_a_bad_pair_barrier_is_one_line(tmp_path, value):
    with pytest.raises(ValueError, match="--pair-barrier"):
        pairing.parse(value.format(tmp_path))


def fake_gate(tmp_path, monkeypatch, together=(True, True), device="cpu", benchmarks=((), ())):
    """ab.run_pairs with its worktrees, servers, collection and runs stood in for; returns the runs seen
    as (side, pair, server, args, start time)."""
    ran, servers = [], []

    class Server(IdleServer):
        def __init__(self):
            servers.append(self)

    @contextmanager
    def trees(top, shas):
        yield {side: tmp_path / side for side in shas}

    def fake_run(server, tree, out, args, side, lane):
        pair = int(out.stem.split("-")[1])
        ran.append((side, pair, servers.index(server), args, lane, time.monotonic()))
        time.sleep(0.05)
        write_run(out.parent / side, pair, run_document("a" * 40, datetime(2026, 1, 1), seed=pair)).rename(out)

    checked = dict(zip(("base", "head"), zip(together, benchmarks)))
    monkeypatch.setattr(ab, "worktrees", trees)
    monkeypatch.setattr(ab.launch, "ForkServer", Server)
    monkeypatch.setattr(ab, "check_side", lambda server, tree, args, side: ab.Checked(device, 1, (), *checked[side]))
    monkeypatch.setattr(ab, "run_side", fake_run)
    return ran


def test_together_a_pairs_runs_start_at_once_pinned_with_the_barrier_and_swap_servers(tmp_path, monkeypatch):
    ran = fake_gate(tmp_path, monkeypatch)
    monkeypatch.setattr(lanes.os, "sched_getaffinity", lambda pid: {0, 1})  # two cores: two lanes
    asked = []
    files = ab.run_pairs(
        tmp_path, {"base": "b", "head": "h"}, 0, [], "steady", tmp_path / "out", start=lambda p: asked.append(p) or 4
    )
    assert asked == [True] and len(files["base"]) == len(files["head"]) == 4
    for pair in (1, 2, 3, 4):
        runs = [r for r in ran if r[1] == pair]
        assert abs(runs[0][5] - runs[1][5]) < 0.04  # started together, not one after the other
        assert {side: args[-1].rsplit(":", 1)[1] for side, _, _, args, _, _ in runs} == {"base": "base", "head": "head"}
        assert len({args[-1].split("=", 1)[1].rsplit(":", 1)[0] for *_, args, _, _ in runs}) == 1  # one folder
        assert {lane.cores for *_, lane, _ in runs} == {((pair - 1) % 2,)}  # both on one core, a lane a core
        assert len({server for _, _, server, *_ in runs}) == 2  # each run from a server of its own
    # Which side starts first (on the lane's first server) is drawn for each pair.
    monkeypatch.setattr(ab.ORIENTATION, "sample", lambda sides, k: ["head", "base"])
    ran.clear()
    ab.run_pairs(tmp_path, {"base": "b", "head": "h"}, 0, [], "steady", tmp_path / "again", start=lambda p: 2)
    assert {(side, pair): server % 2 for side, pair, server, *_ in ran} == {
        ("head", 1): 0,
        ("base", 1): 1,
        ("head", 2): 0,
        ("base", 2): 1,
    }


@pytest.mark.parametrize(("together", "device"), [((True, False), "cpu"), ((True, True), "cuda")])
def test_apart_when_a_side_cannot_or_on_cuda(tmp_path, monkeypatch, together, device):
    ran = fake_gate(tmp_path, monkeypatch, together, device)
    asked = []
    metric = "device" if device == "cuda" else "steady"
    monkeypatch.setattr(lanes, "visible_gpus", lambda: ["0"])
    ab.run_pairs(
        tmp_path, {"base": "b", "head": "h"}, 0, [], metric, tmp_path / "out", start=lambda p: asked.append(p) or 2
    )
    assert asked == [False]
    assert not any(arg.startswith("--pair-barrier") for *_, args, _, _ in ran for arg in args)
    order = [(side, pair) for side, pair, *_ in sorted(ran, key=lambda r: r[5])]
    assert order == [("base", 1), ("head", 1), ("head", 2), ("base", 2)]  # one after the other, A B B A


def test_a_paired_gate_folder_is_read_back_paired(tmp_path):
    rule = sequential.plan(0.05, 8, paired=True)
    ab.save_settings(tmp_path, rule, 0.05, "steady")
    import json

    settings = json.loads((tmp_path / ab.SETTINGS_FILE).read_text())
    assert settings["paired"] is True
    assert ab.saved_rule(tmp_path / ab.SETTINGS_FILE, settings) == rule
    with pytest.raises(HistoryError):
        ab.saved_rule(tmp_path / ab.SETTINGS_FILE, settings | {"paired": "yes"})


def test_paired_verdicts_come_from_the_looks(tmp_path):
    """Eight pairs: attention 8% slower in every pair, the pairs' own levels 30% apart."""
    paths = {"base": [], "head": []}
    levels = [1.0, 1.3, 0.8, 1.1, 0.9, 1.25, 1.05, 0.95]
    for i, level in enumerate(levels):
        for side, factor in (("base", 1.0), ("head", 1.08)):
            factors = {"attention-compiled-16": level * factor, "matmul-compiled-16": level}
            document = run_document("a" * 40, datetime(2026, 1, 1), factors, seed=i, noise=0.0)
            paths[side].append(write_run(tmp_path / side, i, document))
    runs = ab.collect(paths)
    rule = sequential.plan(0.05, 8, paired=True)
    looks = sequential.looks_upto(ab.samples(runs, "steady"), rule, 0.05)
    decided = {d.verdict.name: d for d in ab.sequential_verdicts(runs, looks, rule, 0.05, "steady")}
    attention = decided["attention-compiled-16"].verdict
    assert attention.verdict == "regression" and attention.ratio == pytest.approx(1.08, rel=1e-3)
    assert decided["matmul-compiled-16"].verdict.verdict == "unchanged"
    assert decided["attention-compiled-16"].unit == "pairs"
    assert list(itertools.islice(decided, 1))  # every benchmark of the runs decided


def test_benchmarks_only_one_side_has_are_refused_before_any_run_and_another_order_times_apart(tmp_path, monkeypatch):
    ran = fake_gate(tmp_path, monkeypatch, benchmarks=(("a-compiled-16", "b-compiled-16"), ("a-compiled-16",)))
    with pytest.raises(ab.SideError, match="head: the suite lacks benchmarks the base has: b-compiled-16"):
        ab.run_pairs(tmp_path, {"base": "b", "head": "h"}, 0, [], "steady", tmp_path / "out", start=lambda p: 6)
    assert ran == []
    ran = fake_gate(
        tmp_path, monkeypatch, benchmarks=(("a-compiled-16", "b-compiled-16"), ("b-compiled-16", "a-compiled-16"))
    )
    asked = []
    ab.run_pairs(
        tmp_path, {"base": "b", "head": "h"}, 0, [], "steady", tmp_path / "out2", start=lambda p: asked.append(p) or 2
    )
    assert asked == [False]  # each run would wait at a benchmark the other reaches later: apart
