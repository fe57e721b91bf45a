"""One self-contained HTML page for a run folder: ``write_report(folder)`` -> ``folder/report.html``.

The page needs no network: no scripts, fonts or style sheets are fetched (a Content
Security Policy forbids it), the plots are inline SVG drawn by matplotlib.

What it shows
-------------
- A header: the study's name, seed, cells (finished / total), replicates, generations,
  package version and git commit (from ``manifest.json`` when present), when the run and
  the report were made.
- Per family and metric, one figure with one line per cell: the mean over replicates and a
  band of the 95% confidence interval of that mean (``report.plots.summarize``), the closed
  form dashed where ``theory.curve`` gives values, a note below the figure where it gives a
  reason instead, and the true distribution's value dotted where meaningful.
- Next to each figure, a summary table with one row per cell: the mean at generation 0,
  the mean at the last generation, their relative change ``(last - g0) / |g0|``, and the
  first generation at which the mean has moved 10% and 50% of ``|g0|`` away from its
  generation-0 value *in the metric's bad direction*:

  ==========  ===============================  =====================================
  direction   better is                        a crossing at fraction f is
  ==========  ===============================  =====================================
  lower       lower values                     mean >= g0 + f |g0|   (rising)
  higher      higher values                    mean <= g0 - f |g0|   (falling)
  truth       close to the true value          |mean - g0| >= f |g0| (either way)
  info        (descriptive)                    not computed
  ==========  ===============================  =====================================

  "never" means the mean did not cross within the run; "n/a" means the generation-0 mean
  is 0 (no relative threshold) or not finite. Crossings are of the mean over replicates,
  not tests of significance: the band in the figure shows the uncertainty. Where the 95%
  interval of the generation-0 mean contains 0, the change and crossings are greyed
  (relative moves from a value indistinguishable from 0 are noise).
- The cells: key, label, status and every resolved parameter.
- Text samples (for text families): when ``cells/<key>/samples/`` exists, up to
  ``SAMPLES_PER_GENERATION`` documents per generation side by side. Each entry of that
  folder, in natural order of its name, is one generation: a sub-folder whose files are the
  documents, a ``.jsonl`` file with one document per line (a JSON string, or an object with
  a ``"text"`` field), or any other file holding one document. Documents are cut at
  ``SAMPLE_CHARS`` characters.

Every text that comes from the data, the study or a file is HTML-escaped.
"""

from __future__ import annotations

import datetime as _dt
import io
import json
import re
import textwrap
from html import escape
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.colors import to_hex  # noqa: E402

from .. import theory  # noqa: E402
from ..errors import UserError  # noqa: E402
from ..safepaths import open_regular  # noqa: E402
from .truth import truth_value  # noqa: E402
from ..metrics import METRICS  # noqa: E402
from ..runs.config import CellConfig  # noqa: E402
from ..runs.store import RunStore, write_bytes  # noqa: E402
from ..runs.study import Study  # noqa: E402
from .plots import center_of, summarize  # noqa: E402
from .grids import grids_section  # noqa: E402
from .samples import samples_section  # noqa: E402

#: The relative moves from the generation-0 mean reported in the summary tables.
THRESHOLDS = (0.10, 0.50)
#: Cells beyond this many get no in-figure legend (the table's colour swatches name them).
MAX_LEGEND_CELLS = 20
LEGEND_CHARS = 34


# --------------------------------------------------------------------------- numbers


def first_crossing(generations: np.ndarray, means: np.ndarray, direction: str,
                   fraction: float) -> int | str | None:
    """The first generation whose mean moved ``fraction`` of ``|g0|`` from the generation-0
    mean in the bad ``direction``; "never" when it does not, "n/a" when the generation-0
    mean is 0 or not finite, None for descriptive ("info") metrics."""
    if direction == "info":
        return None
    if len(means) == 0 or not np.isfinite(means[0]) or means[0] == 0:
        return "n/a"
    g0 = means[0]
    step = fraction * abs(g0)
    for g, m in zip(generations[1:], means[1:]):
        if not np.isfinite(m):
            continue
        if direction == "lower" and m >= g0 + step:
            return int(g)
        if direction == "higher" and m <= g0 - step:
            return int(g)
        if direction == "truth" and abs(m - g0) >= step:
            return int(g)
    return "never"


def _fmt(x: float) -> str:
    if x is None or not np.isfinite(x):
        return "n/a"
    return f"{x:.4g}"


def _fmt_rel(first: float, last: float) -> str:
    if not (np.isfinite(first) and np.isfinite(last)) or first == 0:
        return "n/a"
    return f"{(last - first) / abs(first):+.1%}"


def _colors(n: int) -> list[str]:
    """Distinct colours: matplotlib's C0..C9 (as in the PNG plots) up to 10, tab20 up to
    20, then evenly spaced on viridis."""
    if n <= 10:
        return [to_hex(f"C{i}") for i in range(n)]
    if n <= 20:
        cmap = plt.get_cmap("tab20")
        return [to_hex(cmap(i)) for i in range(n)]
    cmap = plt.get_cmap("viridis")
    return [to_hex(cmap(i / max(n - 1, 1))) for i in range(n)]


# --------------------------------------------------------------------------- figures


_TAG = re.compile(r"<[^<>]+>")   # text content is escaped by matplotlib: '<' starts a tag
_REF = re.compile(r'(\bid="|url\(#|href="#)')


def _svg(fig, prefix: str) -> str:
    """The figure as an inline <svg> element: no XML header, text as text (the page's
    fonts), and every id (and reference to one) prefixed so that several figures share
    one page without clashing ids."""
    buf = io.StringIO()
    with matplotlib.rc_context({"svg.fonttype": "none", "svg.hashsalt": prefix}):
        fig.savefig(buf, format="svg", metadata={"Date": None})
    text = buf.getvalue()
    text = text[text.index("<svg"):].strip()
    return _TAG.sub(lambda m: _REF.sub(lambda r: r.group(1) + prefix + "-", m.group(0)), text)


def _panel(study: Study, cells: list[CellConfig], colors: dict[str, str],
           series: dict[str, pd.DataFrame], family: str, metric: str, prefix: str
           ) -> tuple[str, list[str]]:
    """One (family, metric) figure as SVG, and the notes to show below it."""
    fig, ax = plt.subplots(figsize=(7.6, 4.1))
    notes: list[str] = []
    theory_labels: dict[str, None] = {}
    truth = None
    legend = len(cells) <= MAX_LEGEND_CELLS
    line, band_lo, band_hi, caption = center_of(metric)
    for cell in cells:
        s = series.get(cell.key)
        if s is None or s.empty:
            continue
        color = colors[cell.key]
        label = study.label(cell, within_family=True)
        ax.plot(s.index, s[line], color=color, lw=1.6, label=label if legend else None)
        ax.fill_between(s.index, s[band_lo], s[band_hi], color=color, alpha=0.2, lw=0)
        gens = np.arange(cell.generations)
        curve = theory.curve(cell.family, cell.policy, cell.params, cell.n_samples, metric, gens)
        if curve is not None and curve.values is not None:
            ax.plot(gens, curve.values, color=color, ls="--", lw=1.1)
            theory_labels[curve.label] = None
        elif curve is not None:
            notes.append(f"theory overlay absent for {label}: {curve.reason}")
        if truth is None:
            truth = truth_value(cell, metric)
    handles, labels = ax.get_legend_handles_labels()
    for tl in theory_labels:
        handles.append(plt.Line2D([], [], color="0.35", ls="--", lw=1.1))
        labels.append(f"theory: {tl}")
    if truth is not None and np.isfinite(truth):
        lo, hi = ax.get_ylim()
        if lo - 0.5 * (hi - lo) <= truth <= hi + 0.5 * (hi - lo):
            ax.axhline(truth, color="0.5", ls=":", lw=1.3)
            handles.append(plt.Line2D([], [], color="0.5", ls=":", lw=1.3))
            labels.append("truth")
        else:
            notes.append(f"the truth's value {truth:.4g} is far off this scale and not drawn")
    ax.set_xlabel("generation")
    ax.set_ylabel(metric)
    ax.set_title(f"{family}: {metric}" + ("" if line == "mean" else f" ({caption})"), fontsize=10)
    ax.grid(True, color="0.92", lw=0.8)
    ax.set_axisbelow(True)
    right = 1.0
    if handles:  # outside the axes, in a fixed right margin, so every figure's axes align
        labels = [textwrap.fill(textwrap.shorten(lb, 3 * LEGEND_CHARS, placeholder="…"),
                                LEGEND_CHARS, subsequent_indent="  ") for lb in labels]
        leg = ax.legend(handles, labels, fontsize=7, loc="upper left", bbox_to_anchor=(1.02, 1.0),
                        borderaxespad=0.0, frameon=False)
        leg.set_in_layout(False)
        right = 0.72
    fig.tight_layout(rect=(0.0, 0.0, right, 1.0))
    svg = _svg(fig, prefix)
    plt.close(fig)
    return svg, notes


# --------------------------------------------------------------------------- page

CSS = """
:root { color-scheme: light; }
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "DejaVu Sans", sans-serif;
       margin: 0; padding: 0 28px 40px; color: #1d2330; background: #fff; }
header { border-bottom: 1px solid #d8dce3; padding: 18px 0 10px; margin-bottom: 8px; }
h1 { font-size: 24px; margin: 0 0 8px; }
h2 { font-size: 19px; margin: 30px 0 8px; border-bottom: 1px solid #e3e6eb; padding-bottom: 4px; }
h3 { font-size: 15px; margin: 0 0 4px; }
dl.meta { display: grid; grid-template-columns: max-content auto; gap: 2px 16px; margin: 0; }
dl.meta dt { color: #5a6273; } dl.meta dd { margin: 0; }
code, .key { font-family: ui-monospace, "DejaVu Sans Mono", monospace; font-size: 12px; }
.key { color: #6b7385; }
.howto { background: #f5f7fa; border: 1px solid #e3e6eb; border-radius: 6px; padding: 6px 16px; max-width: 1100px; }
.howto table { border-collapse: collapse; margin: 6px 0; }
.howto td, .howto th { padding: 2px 10px; border-bottom: 1px solid #e3e6eb; text-align: left; }
.panel { display: flex; flex-wrap: wrap; gap: 8px 22px; align-items: flex-start;
         padding: 14px 0; border-bottom: 1px solid #eef0f3; }
.fig { flex: 1 1 700px; max-width: 820px; min-width: 420px; }
.fig svg { width: 100%; height: auto; display: block; }
.side { flex: 1 1 520px; min-width: 360px; }
.desc { color: #5a6273; margin: 0 0 6px; }
.note { color: #8a4b00; background: #fff6e8; border-left: 3px solid #e0a040; padding: 3px 8px;
        margin: 4px 0; font-size: 13px; }
table.summary, table.cells, table.samples { border-collapse: collapse; font-size: 12.5px; }
table.summary th, table.summary td, table.cells th, table.cells td
  { padding: 3px 8px; border-bottom: 1px solid #e8eaee; text-align: right; vertical-align: top; }
table.summary td { white-space: nowrap; }
table.summary td:first-child { white-space: normal; min-width: 9em; }
.lab { display: flex; align-items: baseline; } .lab .sw { flex: none; }
table.summary th:first-child, table.summary td:first-child,
table.cells td, table.cells th { text-align: left; }
table.summary thead th, table.cells thead th { background: #f5f7fa; position: sticky; top: 0; }
td.never { color: #2b7a3d; } td.hit { color: #b3261e; font-weight: 600; }
td.weak { color: #8a8f99; font-style: italic; }
.sw { display: inline-block; width: 11px; height: 11px; border-radius: 2px; margin-right: 6px;
      vertical-align: -1px; }
table.samples td, table.samples th { border: 1px solid #e3e6eb; padding: 4px; vertical-align: top; }
table.samples td { width: 32%; }
table.samples pre { white-space: pre-wrap; word-break: break-word; margin: 0; max-height: 14em;
                    overflow: auto; font-size: 12px; }
nav { font-size: 13px; } nav a { margin-right: 12px; }
details { margin: 6px 0; }
"""


def _howto() -> str:
    t10, t50 = (f"{t:.0%}" for t in THRESHOLDS)
    return f"""<section class=howto id=howto><h2 style="border:0;margin-top:8px">How to read this</h2>
<p>Each figure shows one metric against generation (0 = the model fitted on real data).
Solid line: the mean over replicates; band: the 95% confidence interval of that mean
(t quantile times the standard error). Heavy-tailed metrics (registered with
<code>center = "median"</code>: <code>tail_mass</code>, <code>tail_mass_centered</code>) are
drawn instead as the median over replicates with the band from the 10% to the 90% quantile
of the chains, and their figure's title says so: their mean is dominated by a few chains
(a drifted mean puts a whole bulk beyond the truth's 3-sigma quantiles) and would say the
opposite of what most chains do. Dashed: the closed form from the literature, where
one exists (a note below the figure says why it is absent when it is undefined); dotted
grey: the metric evaluated on the true distribution.</p>
<p>The table beside each figure gives, per cell, the mean at generation 0 (g0), the mean at
the last generation, the relative change (last &minus; g0) / |g0|, and the first generation
at which the mean moved {t10} and {t50} of |g0| away from g0 <em>in the metric's bad
direction</em>:</p>
<table><tr><th>direction</th><th>better is</th><th>crossing at fraction f</th></tr>
<tr><td>lower</td><td>lower values</td><td>mean &ge; g0 + f&middot;|g0| (rising)</td></tr>
<tr><td>higher</td><td>higher values</td><td>mean &le; g0 &minus; f&middot;|g0| (falling)</td></tr>
<tr><td>truth</td><td>close to the truth's value</td><td>|mean &minus; g0| &ge; f&middot;|g0| (either way)</td></tr>
<tr><td>info</td><td>(descriptive)</td><td>not computed (&ndash;)</td></tr></table>
<p>&ldquo;never&rdquo;: the mean did not cross within the run. &ldquo;n/a&rdquo;: the
generation-0 mean is 0 or not finite, so there is no relative threshold. A crossing is a
property of the mean over replicates, not a significance test: read it with the band.
<span style="color:#8a8f99;font-style:italic">Grey italics</span>: the 95% interval of the
generation-0 mean contains 0 (typical of signed metrics such as <code>mean</code>), so
relative changes and crossings are dominated by noise. Non-finite values are left out of
means and counted in the table.</p></section>"""


def _header(store: RunStore, study: Study, done: list[CellConfig]) -> str:
    manifest: dict[str, Any] = {}
    try:   # the run folder passed check_tree: a regular file here, or none
        with open_regular(store.root / "manifest.json", "manifest") as fh:
            manifest = json.loads(fh.read(1 << 24).decode("utf-8"))
        if not isinstance(manifest, dict):
            manifest = {}
    except (OSError, ValueError, RecursionError, UserError):
        manifest = {}
    gens = sorted({c.generations for c in study.cells})
    reps = sorted({c.replicates for c in study.cells})
    now = _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")

    def val(x: Any) -> str:
        return escape(str(x)) if x not in (None, "") else "unknown"

    rows = [
        ("study", escape(study.name)),
        ("seed", escape(str(study.seed))),
        ("cells", f"{len(done)} finished of {len(study.cells)}"),
        ("swept", escape(", ".join(study.axes)) or "nothing"),
        ("replicates", escape(", ".join(map(str, reps)))),
        ("generations", escape(", ".join(map(str, gens))) + " (0 &hellip; G&minus;1)"),
        ("package", f"{val(manifest.get('package', 'modelcollapse'))} {val(manifest.get('version'))}"),
        ("git commit", f"<code>{val(manifest.get('git_commit'))}</code>"),
        ("run created", val(manifest.get("created"))),
        ("report written", escape(now)),
        ("folder", f"<code>{escape(str(store.root.resolve()))}</code>"),
    ]
    dl = "".join(f"<dt>{k}</dt><dd>{v}</dd>" for k, v in rows)
    return (f"<header><h1>{escape(study.name)} &mdash; model collapse report</h1>"
            f"<dl class=meta>{dl}</dl></header>")


def _summary_table(study: Study, cells: list[CellConfig], colors: dict[str, str],
                   series: dict[str, pd.DataFrame], metric: str, direction: str) -> str:
    lasts = {int(series[c.key].index[-1]) for c in cells
             if c.key in series and not series[c.key].empty}
    common_last = lasts.pop() if len(lasts) == 1 else None
    heads = ["cell", "g0<br>mean", "last<br>mean" if common_last is None else f"g{common_last}<br>mean",
             "change"] + [f"{t:.0%} at<br>gen." for t in THRESHOLDS] + ["n"]
    body = []
    for cell in cells:
        label = escape(study.label(cell, within_family=True))
        s = series.get(cell.key)
        sw = f"<span class=sw style=\"background:{colors[cell.key]}\"></span>"
        if s is None or s.empty:
            body.append(f"<tr><td><div class=lab>{sw}<span>{label}</span></div></td><td colspan={len(heads) - 1}>no finite values"
                        f"</td></tr>")
            continue
        gens, means = s.index.to_numpy(), s["mean"].to_numpy()
        first = means[0] if gens[0] == 0 else np.nan
        # a generation-0 interval that holds 0: relative moves are mostly noise
        weak = gens[0] == 0 and s["lo"].iloc[0] <= 0.0 <= s["hi"].iloc[0] and first != 0
        wk = (" class=weak title=\"the generation-0 mean's 95% interval contains 0: relative "
              "changes are noise-dominated\"") if weak else ""
        tds = [f"<td>{_fmt(first)}</td>",
               f"<td>{_fmt(means[-1])}" + ("" if common_last is not None else
                                           f" <span class=key>(g{int(gens[-1])})</span>") + "</td>",
               f"<td{wk}>{_fmt_rel(first, means[-1])}</td>"]
        cross = []
        for t in THRESHOLDS:
            c = first_crossing(gens, means, direction, t) if gens[0] == 0 else "n/a"
            if c is None:
                cross.append("<td>&ndash;</td>")
            elif c == "n/a":
                cross.append("<td>n/a</td>")
            elif weak:
                cross.append(f"<td{wk}>{c}</td>")
            elif c == "never":
                cross.append("<td class=never>never</td>")
            else:
                cross.append(f"<td class=hit>{c}</td>")
        n = int(s["n"].iloc[0])
        nonfinite = int(s["n_nonfinite"].iloc[0])
        ncell = f"{n}" + (f" <span class=note>{nonfinite} non-finite omitted</span>" if nonfinite else "")
        body.append(f"<tr><td><div class=lab>{sw}<span>{label}</span></div></td>" + "".join(tds) + "".join(cross) + f"<td>{ncell}</td></tr>")
    head = "".join(f"<th>{h}</th>" for h in heads)
    return (f"<table class=summary data-metric=\"{escape(metric)}\"><thead><tr>{head}</tr></thead>"
            f"<tbody>{''.join(body)}</tbody></table>")


def _cells_section(study: Study, done_keys: set[str]) -> str:
    rows = []
    for cell in study.cells:
        params = ", ".join(f"{k}={v}" for k, v in sorted(cell.params.items()))
        status = "finished" if cell.key in done_keys else "<b>not finished</b>"
        rows.append(
            f"<tr><td class=key>{escape(cell.key)}</td><td>{escape(study.label(cell))}</td>"
            f"<td>{status}</td><td>{escape(str(cell.n_samples))}</td>"
            f"<td>{escape(str(cell.generations))}</td><td>{escape(str(cell.replicates))}</td>"
            f"<td><code>{escape(params)}</code></td></tr>")
    return ("<section id=cells><h2>Cells</h2><table class=cells><thead><tr><th>key</th>"
            "<th>label</th><th>status</th><th>n_samples</th><th>generations</th>"
            "<th>replicates</th><th>parameters</th></tr></thead><tbody>"
            + "".join(rows) + "</tbody></table></section>")


def render(store: RunStore, study: Study, data: pd.DataFrame) -> str:
    """The report page for ``study`` with its tidy metrics ``data`` (finished cells)."""
    done_keys = set(data["cell"].unique()) if len(data) else set()
    done = [c for c in study.cells if c.key in done_keys]
    families = list(dict.fromkeys(c.family for c in done))
    by_metric = {str(m): d for m, d in data.groupby("metric", sort=False)}
    sections, nav = [], []
    for fi, family in enumerate(families):
        fam_cells = [c for c in study.cells if c.family == family and c.key in done_keys]
        colors = dict(zip((c.key for c in fam_cells), _colors(len(fam_cells))))
        metrics = [m for m in METRICS.names() if any(m in c.metrics for c in fam_cells)]
        fam_id = f"family-{fi}"
        nav.append(f"<a href=\"#{fam_id}\">{escape(family)}</a>")
        panels = []
        for mi, metric in enumerate(metrics):
            cells = [c for c in fam_cells if metric in c.metrics]
            mdata = by_metric.get(metric)
            series: dict[str, pd.DataFrame] = {}
            if mdata is not None:
                for key, sub in mdata[mdata["family"] == family].groupby("cell", sort=False):
                    series[str(key)] = summarize(sub)
            m = METRICS.get(metric)
            svg, notes = _panel(study, cells, colors, series, family, metric, f"f{fi}m{mi}")
            note_html = "".join(f"<p class=note>{escape(n)}</p>" for n in notes)
            table = _summary_table(study, cells, colors, series, metric, m.direction)
            panels.append(
                f"<div class=panel id=\"{fam_id}-{escape(metric)}\"><div class=fig>{svg}{note_html}</div>"
                f"<div class=side><h3>{escape(metric)} <span class=key>[{escape(m.direction)}]</span></h3>"
                f"<p class=desc>{escape(m.description)}</p>{table}</div></div>")
        sections.append(f"<section id={fam_id}><h2>{escape(family)}</h2>{''.join(panels)}</section>")
    not_done = len(study.cells) - len(done)
    warn = (f"<p class=note>{not_done} cell(s) have not finished and are left out; rerun the "
            f"study to complete them.</p>") if not_done else ""
    title = escape(f"{study.name}: model collapse report")
    return (
        "<!DOCTYPE html>\n<html lang=en><head><meta charset=utf-8>"
        "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; "
        "style-src 'unsafe-inline'; img-src data:\">"
        "<meta name=viewport content=\"width=device-width, initial-scale=1\">"
        f"<title>{title}</title><style>{CSS}</style></head><body>"
        + _header(store, study, done) + warn
        + f"<nav>{''.join(nav)}<a href=\"#cells\">cells</a><a href=\"#howto\">how to read</a></nav>"
        + _howto() + "".join(sections) + samples_section(store, study) + grids_section(store, study)
        + _cells_section(study, done_keys) + "</body></html>\n")


def write_report(folder: str | Path) -> Path:
    """Write ``folder/report.html`` (atomically) for the run folder ``folder``; return its path."""
    from ..api import load

    store = RunStore(folder)
    if not store.root.is_dir():
        raise UserError(f"{store.root} is not a folder; give a modelcollapse run folder")
    study = store.read_study()
    if not any(store.is_done(c) for c in study.cells):
        raise UserError(f"{store.root} has no finished cells yet; run the study first")
    data = load(store.root)
    page = render(store, study, data)
    path = store.root / "report.html"
    write_bytes(path, page.encode("utf-8"))
    return path


__all__ = ["write_report", "render", "first_crossing", "THRESHOLDS"]
