"""The HTML report: one self-contained page per run folder (figures, summary tables,
escaping, text samples), checked as text and rendered by headless Chromium."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest

import chromium
from modelcollapse.api import make_study, run_study
from modelcollapse.cli import main
from modelcollapse.errors import UserError
from modelcollapse.report.html import first_crossing, write_report
from modelcollapse.runs.store import RunStore

EVIL = "<script>alert(1)<script>"   # a study name holds no "/" (one safe folder name)


def panels(study) -> set[tuple[str, str]]:
    return {(c.family, m) for c in study.cells for m in c.metrics}


@pytest.fixture(scope="module")
def gauss_run(tmp_path_factory):
    """Two Gaussian cells, 6 generations, with a study name that tries to inject a script."""
    study = make_study({"name": f"report {EVIL} & co", "family": "gaussian",
                        "policy": ["replace", "accumulate"], "generations": 6, "replicates": 8})
    out = tmp_path_factory.mktemp("report") / "run"
    run_study(study, out=out, plots=False)
    path = write_report(out)
    return study, out, path, path.read_text("utf-8")


@pytest.fixture(scope="module")
def regression_run(tmp_path_factory):
    """A regression cell whose closed form is undefined (T <= d + 1): the page says why."""
    study = make_study({"family": "linear_regression", "policy": ["replace", "accumulate"],
                        "generations": 4, "replicates": 6,
                        "params": {"dim": 4, "n_train": 5}})
    out = tmp_path_factory.mktemp("report") / "reg"
    run_study(study, out=out, plots=False)
    return study, out, write_report(out).read_text("utf-8")


# --------------------------------------------------------------------------- the page


def test_one_svg_per_family_and_metric(gauss_run):
    study, out, path, page = gauss_run
    assert path == out / "report.html"
    assert page.count("<svg") == len(panels(study)) > 3
    assert "<?xml" not in page and "<!DOCTYPE svg" not in page
    assert not [p for p in out.iterdir() if p.name.startswith(".report.html.tmp")]


def test_summary_table(gauss_run):
    study, _, _, page = gauss_run
    n_rows = sum(len(c.metrics) for c in study.cells)
    assert page.count('<table class=summary') == len(panels(study))
    body = re.findall(r"<table class=summary.*?</table>", page, re.S)
    assert sum(b.count("<tr>") - 1 for b in body) == n_rows   # minus the header row
    assert "10% at<br>gen." in page and "50% at<br>gen." in page
    assert "How to read this" in page and "bad" in page and "direction" in page
    # the Gaussian under replace loses variance: its mean_error crosses, a threshold is hit
    assert "class=hit" in page
    assert "theory: E[s2]" in page   # the closed-form overlay's legend entry


def test_header(gauss_run):
    study, out, _, page = gauss_run
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["version"] in page
    if manifest.get("git_commit"):
        assert manifest["git_commit"] in page
    assert "2 finished of 2" in page
    assert "report written" in page and "run created" in page


def test_escaping(gauss_run):
    _, _, _, page = gauss_run
    assert "<script" not in page
    assert "&lt;script&gt;alert(1)&lt;script&gt;" in page
    assert "&amp; co" in page


def test_self_contained(gauss_run):
    _, _, _, page = gauss_run
    # nothing is fetched: no scripts, links, external images, imports or remote urls in CSS
    for needle in ("<script", "<link", "<img", "<iframe", "@import", "src="):
        assert needle not in page, needle
    assert not re.findall(r"url\((?!#)", page)                  # only in-page references
    assert all(h.startswith("#") for h in re.findall(r'href="([^"]*)"', page))
    ids = re.findall(r' id="([^"]+)"', page)                   # several inline SVGs, one
    assert len(ids) == len(set(ids))                            # namespace of ids
    assert "Content-Security-Policy" in page


def test_theory_reason_shown(regression_run):
    study, _, page = regression_run
    assert page.count("<svg") == len(panels(study))
    assert "theory overlay absent" in page and "closed form undefined" in page


def test_crossing_rules():
    g = np.arange(5)
    rising = np.array([1.0, 1.05, 1.2, 1.6, 2.0])
    assert first_crossing(g, rising, "lower", 0.1) == 2
    assert first_crossing(g, rising, "lower", 0.5) == 3
    assert first_crossing(g, rising, "higher", 0.1) == "never"
    assert first_crossing(g, rising, "truth", 0.5) == 3
    falling = np.array([-2.0, -2.1, -2.5, -3.5, -3.9])     # negative g0: |g0| sets the step
    assert first_crossing(g, falling, "higher", 0.1) == 2
    assert first_crossing(g, falling, "higher", 0.5) == 3
    assert first_crossing(g, falling, "truth", 0.1) == 2
    assert first_crossing(g, falling, "lower", 0.1) == "never"
    assert first_crossing(g, np.array([0.0, 1, 2, 3, 4]), "lower", 0.1) == "n/a"
    assert first_crossing(g, rising, "info", 0.1) is None
    assert first_crossing(g, np.array([1.0, np.nan, 0.5, 1, 1]), "higher", 0.1) == 2


# --------------------------------------------------------------------------- errors, CLI


def test_not_a_run_folder(tmp_path):
    with pytest.raises(UserError, match="study.toml"):
        write_report(tmp_path)
    with pytest.raises(UserError, match="not a folder"):
        write_report(tmp_path / "missing")


def test_no_finished_cells(tmp_path):
    study = make_study({"family": "gaussian", "generations": 3, "replicates": 2})
    RunStore(tmp_path / "run").open(study)
    with pytest.raises(UserError, match="no finished cells"):
        write_report(tmp_path / "run")
    assert not (tmp_path / "run" / "report.html").exists()


def test_cli_report(gauss_run, tmp_path, capsys):
    _, out, _, _ = gauss_run
    assert main(["report", str(out)]) == 0
    assert "report.html" in capsys.readouterr().out
    assert main(["report", str(tmp_path)]) == 2


# --------------------------------------------------------------------------- text samples


def test_samples_section(tmp_path):
    study = make_study({"family": "gaussian", "generations": 3, "replicates": 2})
    out = tmp_path / "run"
    run_study(study, out=out, plots=False)
    assert "id=samples" not in write_report(out).read_text("utf-8")
    samples = out / "cells" / study.cells[0].key / "samples"
    (samples / "0").mkdir(parents=True)
    for i in range(5):
        (samples / "0" / f"doc{i}.txt").write_text(f"doc {i} <b>bold</b>")
    (samples / "1.jsonl").write_text('"first <i>"\n{"text": "second & more"}\n"third"\n"fourth"\n')
    page = write_report(out).read_text("utf-8")
    assert "id=samples" in page
    section = page[page.index("id=samples"):page.index("id=cells")]
    assert "doc 2 &lt;b&gt;bold&lt;/b&gt;" in section and "doc 3" not in section
    assert "first &lt;i&gt;" in section and "second &amp; more" in section
    assert "third" in section and "fourth" not in section
    assert "<b>bold" not in section


# --------------------------------------------------------------------------- Chromium


def test_chromium_screenshot(gauss_run, chromium_bin, tmp_path):
    import matplotlib.image as mpimg

    _, _, path, _ = gauss_run
    png = tmp_path / "report.png"
    res = chromium.run(chromium_bin, [f"--screenshot={png}", "--window-size=1400,2000",
                                      path.resolve().as_uri()], tmp_path)
    assert png.is_file() and png.stat().st_size > 10_000, res.stderr[-2000:]
    img = mpimg.imread(png)
    assert img.shape[:2] == (2000, 1400)
    rgb = img[..., :3]
    assert rgb.std() > 0.05                      # not one flat colour
    assert (rgb.mean(axis=2) < 0.9).mean() > 0.01  # some ink on the page


def test_chromium_dom(gauss_run, chromium_bin, tmp_path):
    study, _, path, _ = gauss_run
    res = chromium.run(chromium_bin, ["--dump-dom", path.resolve().as_uri()], tmp_path)
    dom = res.stdout
    assert "</html>" in dom, res.stderr[-2000:]
    assert dom.count("<svg") == len(panels(study))
    assert dom.count('class="summary"') == len(panels(study))
    assert "<script" not in dom and "&lt;script&gt;alert(1)" in dom
