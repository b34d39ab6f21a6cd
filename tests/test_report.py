"""`perf-core report`: the static site, opened in a real headless Chromium.

The browser test needs Debian's chromium (.ci/run installs it) and Playwright's Python package (a
test extra). It fails, not skips, where either is missing: a report nobody has opened is not tested.
"""

import json
import os
import shutil
from datetime import datetime, timezone
from pathlib import Path

import pytest

from perf_core.analysis.report import chart_id
from perf_core.analysis.synthetic import (
    MACHINE,
    STRANGE_KERNELS,
    commit_sha,
    run_document,
    write_history,
    write_run,
)
from perf_core.cli import main
from perf_core.contract import VARIANTS, bench_name

# Debian's chromium (.ci/run installs it); PERF_CORE_CHROMIUM=bundled uses Playwright's own download
# (the GitHub workflow, where `playwright install chromium` can reach the internet).
CHROMIUM = os.environ.get("PERF_CORE_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
URL = "https://github.com/OWNER/REPO/commit/{sha}"


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    """Two machines: 8 commits of a CPU, 30% slower from commit 5 on, and one GPU run of matmul."""
    storage = tmp_path_factory.mktemp("history")
    write_history(storage, 8, step_at=5, step=1.3, noise=0.005)
    gpu = MACHINE | {"device_name": "NVIDIA H100 80GB HBM3", "cuda_version": "13.0"}
    names = ("matmul-compiled-16", "matmul-compiled-32")
    write_run(
        storage, 99, run_document(commit_sha(9), datetime(2026, 2, 1, tzinfo=timezone.utc), names=names, machine=gpu)
    )
    out = tmp_path_factory.mktemp("site") / "site"
    assert main(["report", "--storage", str(storage), "-o", str(out), "--commit-url", URL]) == 0
    return out


def test_the_site_is_self_contained_and_split_per_machine(site):
    assert sorted(p.name for p in site.iterdir()) == ["index.html", "machine-1.html", "machine-2.html", "vega.js"]
    for page in site.glob("*.html"):
        text = page.read_text()
        assert "http://" not in text.replace("http://www.w3.org", "") and '<script src="https:' not in text
    index = (site / "index.html").read_text()
    assert "NVIDIA H100 80GB HBM3" in index and "Test CPU 9000" in index


def test_change_points_are_listed_with_links_to_their_commits(site):
    page = (site / "machine-2.html").read_text()
    assert "Change points" in page
    assert f'href="{URL.format(sha=commit_sha(5))}"' in page and "+30." in page


def test_bad_commit_url_and_bad_ab_folder_are_one_line_errors(tmp_path, capsys):
    write_history(tmp_path / "h", 2)
    assert main(["report", "--storage", str(tmp_path / "h"), "-o", str(tmp_path / "s"), "--commit-url", "x"]) == 2
    assert main(["report", "--storage", str(tmp_path / "h"), "-o", str(tmp_path / "s"), "--ab", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert "has no {sha}" in err[0] and "not a folder of `perf-core ab --out` runs" in err[1]


def ab_folder(tmp_path: Path) -> tuple[Path, Path]:
    """A history and an `ab --out` folder of 4 runs a side, head's matmul-eager-16 1.3x slower."""
    storage, runs = tmp_path / "h", tmp_path / "ab"
    write_history(storage, 2)
    for i in range(4):
        write_run(runs, i, run_document("a" * 40, datetime(2026, 1, 1), seed=i))
        write_run(runs, 10 + i, run_document("b" * 40, datetime(2026, 1, 1), {"matmul-eager-16": 1.3}, seed=9 + i))
    folder = runs / "Linux-CPython-3.11-64bit"
    for i, path in enumerate(sorted(folder.glob("*.json"))):
        path.rename(runs / (f"base-{i + 1:02d}.json" if i < 4 else f"head-{i - 3:02d}.json"))
    return storage, runs


def test_gate_result_appears_on_its_machines_page(tmp_path):
    storage, runs = ab_folder(tmp_path)
    assert main(["report", "--storage", str(storage), "-o", str(tmp_path / "s"), "--ab", str(runs)]) == 0
    page = (tmp_path / "s" / "machine-1.html").read_text()
    assert "Latest gate result" in page and '<span class="regression">REGRESSION</span>' in page


def test_the_gate_result_is_decided_with_the_settings_ab_saved(tmp_path, capsys):
    # ab decides through its stopping rule with its own threshold; report --ab must say what ab said.
    storage, runs = ab_folder(tmp_path)
    (runs / "gate.json").write_text(json.dumps({"alpha": 0.05, "pairs": 5, "threshold": 0.5, "metric": "steady"}))
    assert main(["report", "--storage", str(storage), "-o", str(tmp_path / "s"), "--ab", str(runs)]) == 0
    page = (tmp_path / "s" / "machine-1.html").read_text()
    assert "Latest gate result" in page and "REGRESSION" not in page  # 1.3x is under ab's 50% threshold
    (runs / "gate.json").write_text('{"alpha": 0.05}')
    assert main(["report", "--storage", str(storage), "-o", str(tmp_path / "s"), "--ab", str(runs)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert "gate.json: not the settings `perf-core ab` writes" in err[-1]


def test_the_gate_result_is_decided_at_the_looks_levels_ab_saved(tmp_path, capsys):
    """A gate decides at its plan's levels, which a later perf-core may choose otherwise for the same
    alpha and pairs (the counted last level of 2026-12-02): report --ab reads the saved ones."""
    storage, runs = ab_folder(tmp_path)
    settings = {"alpha": 0.05, "pairs": 5, "threshold": 0.05, "metric": "steady"}

    def gate_said(extra: dict) -> tuple[int, str]:
        (runs / "gate.json").write_text(json.dumps(settings | extra))
        code = main(["report", "--storage", str(storage), "-o", str(tmp_path / "s"), "--ab", str(runs)])
        return code, (tmp_path / "s" / "machine-1.html").read_text() if code == 0 else ""

    code, page = gate_said({})  # no levels saved: today's plan, complete separation at 4 pairs rejects
    assert code == 0 and "REGRESSION" in page
    code, page = gate_said({"minimum": 4, "levels": [0.01, 0.04]})  # a stricter first look: 0.029 > 0.01
    assert code == 0 and "Latest gate result" in page and "REGRESSION" not in page
    capsys.readouterr()
    assert gate_said({"minimum": 4, "levels": [0.01]})[0] == 2
    assert (
        "gate.json: its looks' levels or family or paired flag are not the ones `perf-core ab` writes"
        in capsys.readouterr().err
    )


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright  # a test extra; missing means this test fails

    bundled = CHROMIUM == "bundled"
    assert bundled or Path(CHROMIUM).exists(), f"{CHROMIUM} is missing: apt-get install -y chromium (.ci/run does)"
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=None if bundled else CHROMIUM, args=["--no-sandbox"])
        yield browser
        browser.close()


def open_page(browser, path: Path):
    page = browser.new_page(viewport={"width": 1280, "height": 1000})
    errors: list[str] = []
    page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.goto(path.as_uri())
    page.wait_for_function(
        "window.views && Object.keys(window.views).length === document.querySelectorAll('.chart').length"
    )
    return page, errors


def chart_rows(path: Path, chart_id: str) -> list[dict]:
    """The data rows the page gave one chart (its spec is inline in the page)."""
    text = path.read_text()
    start = text.index(f'vegaEmbed("#{chart_id}", ') + len(f'vegaEmbed("#{chart_id}", ')
    spec, _ = json.JSONDecoder().raw_decode(text[start:].replace("<\\/", "</"))
    return spec["datasets"]["curves"]


def test_every_chart_renders_in_chromium_without_console_errors(site, browser):
    page, errors = open_page(browser, site / "machine-2.html")
    # 4 kernel/variant panels of the CPU history: a per-token chart and a trend chart each, each drawn.
    assert page.locator(".chart").count() == 8
    assert page.locator(".chart canvas").count() == 8
    assert errors == []
    page, errors = open_page(browser, site / "machine-1.html")
    assert page.locator(".chart canvas").count() == 2 and errors == []


def test_every_chart_draws_whatever_the_kernels_are_named(tmp_path, browser):
    # Names no registry accepts, from a history made elsewhere: a dot and a space (CSS selectors), markup
    # and a script's end (HTML), wide characters. Each panel's two charts draw, and nothing else shows.
    names = tuple(bench_name(k, v, n) for k in STRANGE_KERNELS for v in VARIANTS for n in (16, 32))
    write_history(tmp_path / "h", 3, names=names)
    assert main(["report", "--storage", str(tmp_path / "h"), "-o", str(tmp_path / "s")]) == 0
    page, errors = open_page(browser, tmp_path / "s" / "machine-1.html")
    panels = len(STRANGE_KERNELS) * len(VARIANTS)
    assert page.locator(".chart").count() == 2 * panels
    assert page.locator(".chart canvas").count() == 2 * panels
    assert errors == []
    assert page.locator("b").count() == 0 and "</script>" not in page.locator("body").inner_text()


def test_hovering_a_known_point_shows_its_known_value(site, browser):
    page, _ = open_page(browser, site / "machine-2.html")
    chart = chart_id("curve", "matmul-eager")
    rows = chart_rows(site / "machine-2.html", chart)
    (row,) = [r for r in rows if r["newest"] and r["tokens"] == 64]
    assert row["commit"].startswith(commit_sha(7)[:7])
    page.locator(f"#{chart}").scroll_into_view_if_needed()
    x, y = page.evaluate(
        """([id, x, y]) => { const v = window.views[id];
            const box = document.getElementById(id).querySelector('canvas').getBoundingClientRect();
            const [ox, oy] = v.origin(), pad = v.padding();
            return [box.left + pad.left + ox + v.scale('x')(x), box.top + pad.top + oy + v.scale('y')(y)]; }""",
        [chart, 64, row["per_token"]],
    )
    page.mouse.move(x - 40, y - 40)
    page.mouse.move(x, y, steps=4)
    tooltip = page.locator("#vg-tooltip-element.visible")
    tooltip.wait_for(state="visible")
    text = tooltip.text_content()
    assert "matmul-eager-64" in text and commit_sha(7)[:7] in text
    assert f"{row['per_token']:g}" in text and f"{row['per_call']:g}" in text


def test_a_commit_link_points_at_the_commit(site, browser):
    page, _ = open_page(browser, site / "machine-2.html")
    link = page.locator("a.commit", has_text=commit_sha(5)[:7]).first
    assert link.get_attribute("href") == URL.format(sha=commit_sha(5))


def test_the_breakdown_chart_renders_with_its_drop_down(tmp_path, browser):
    """The stacked bars of where each call's time goes (tests/test_explain.py checks its rows and spec)."""
    storage = tmp_path / "h"
    for i, path in enumerate(write_history(storage, 3)):
        document = json.loads(path.read_text())
        for bench in document["benchmarks"]:
            added = [["cpp_fused_mul", 1, 5e-6]] if i else []  # a kernel added from the second commit on
            bench["extra_info"]["breakdown"] = [["aten::mm", 1, 80e-6], ["(python, outside ops)", 1, 15e-6], *added]
        path.write_text(json.dumps(document))
    assert main(["report", "--storage", str(storage), "-o", str(tmp_path / "s")]) == 0
    page, errors = open_page(browser, tmp_path / "s" / "machine-1.html")
    assert page.locator("#breakdown canvas").count() == 1 and errors == []
    assert page.locator("#breakdown select option").count() == len(json.loads(path.read_text())["benchmarks"])
