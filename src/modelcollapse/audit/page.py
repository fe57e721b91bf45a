"""The audit as one self-contained HTML page: ``render(result) -> str``.

Same approach as the sweep report (:mod:`modelcollapse.report.html`, whose style sheet and
SVG helper it reuses): no network (a Content Security Policy allows only inline styles and
``data:`` images, so not a single script runs), plots as inline SVG, and every text that
comes from the corpus, a file name or the settings is HTML-escaped.

Sections: a header (reference, settings, overall verdict), how to read the verdicts (the
thresholds table), a trend table and plot across candidates (when there are several), one
table per candidate with its signals coloured by verdict, its caveats and a few of its
documents, and the reference's provenance.
"""

from __future__ import annotations

import datetime as _dt
import json
import math
from html import escape

from .result import EXAMPLE_CHARS, AuditResult, CandidateAudit, Signal
from .verdicts import RULES

_CSS = """
.v-ok { background: #e7f5ea; color: #1d6b31; } .v-watch { background: #fff3d6; color: #8a5a00; }
.v-alert { background: #fde4e1; color: #a1231a; font-weight: 600; }
span.v { padding: 1px 7px; border-radius: 9px; font-size: 12px; }
table.audit { border-collapse: collapse; font-size: 12.5px; margin: 6px 0 14px; }
table.audit th, table.audit td { padding: 3px 8px; border-bottom: 1px solid #e8eaee;
  text-align: right; vertical-align: top; }
table.audit th:first-child, table.audit td:first-child, table.audit td.def { text-align: left; }
table.audit td.def { color: #5a6273; max-width: 520px; }
table.audit thead th { background: #f5f7fa; }
pre.doc { white-space: pre-wrap; word-break: break-word; background: #f8f9fb;
  border: 1px solid #e3e6eb; padding: 6px; max-height: 10em; overflow: auto; font-size: 12px; }
.trendfig svg { width: 100%; max-width: 1100px; height: auto; display: block; }
"""


def _f(x: float | None, digits: int = 4) -> str:
    if x is None or not math.isfinite(x):
        return "n/a"
    return f"{x:.{digits}g}"


def _badge(verdict: str) -> str:
    return f"<span class=\"v v-{escape(verdict)}\">{escape(verdict)}</span>"


def _signal_row(name: str, s: Signal) -> str:
    rule = RULES[name]
    return (f"<tr><td><code>{escape(name)}</code></td><td>{_f(s.estimate)}</td>"
            f"<td>[{_f(s.ci_low)}, {_f(s.ci_high)}]</td><td>{_f(s.baseline)}</td>"
            f"<td>{int(s.n):,} {escape(s.n_unit)}</td><td class=\"v-{escape(s.verdict)}\">"
            f"{escape(s.verdict)}</td><td>{escape(rule.direction)} is worse</td>"
            f"<td class=def>{escape(s.definition)}<br><span class=key>interval: "
            f"{escape(s.ci_method)}</span></td></tr>")


def _candidate_section(i: int, cand: CandidateAudit) -> str:
    head = ("<tr><th>signal</th><th>estimate</th><th>95% interval</th><th>baseline</th>"
            "<th>n</th><th>verdict</th><th>direction</th><th>definition</th></tr>")
    rows = "".join(_signal_row(k, s) for k, s in cand.all_signals().items())
    caveats = "".join(f"<p class=note>{escape(c['message'])}</p>" for c in cand.caveats)
    buckets = ""
    shift = cand.signals.get("perplexity_shift")
    if shift is not None:
        cells = "".join(f"<td>{escape(b)}: {_f(v['share'], 3)} [{_f(v['ci_low'], 3)}, "
                        f"{_f(v['ci_high'], 3)}]</td>" for b, v in shift.extra["buckets"].items())
        buckets = (f"<p class=desc>Perplexity buckets (shares of documents; a third each when "
                   f"nothing moved):</p><table class=audit><tr>{cells}</tr></table>")
    domain = "".join(f"<dt>{escape(str(k))}</dt>"
                     f"<dd>{escape(_f(v) if isinstance(v, float) else str(v))}</dd>"
                     for k, v in cand.domain.items())
    examples = "".join(f"<pre class=doc>{escape(t)}"
                       f"{'&hellip;' if len(t) == EXAMPLE_CHARS else ''}</pre>"
                       for t in cand.examples)
    return (f"<section id=cand-{i}><h2>{i}. {escape(cand.name)} {_badge(cand.verdict)}</h2>"
            f"<p class=desc>{cand.n_docs:,} documents, {cand.n_tokens:,} word tokens; "
            f"severity {cand.severity} (watch = 1, alert = 2, summed over signals)</p>"
            f"{caveats}<table class=audit><thead>{head}</thead><tbody>{rows}</tbody></table>"
            f"{buckets}<details><summary>domain check</summary><dl class=meta>{domain}</dl>"
            f"</details><details><summary>sample documents</summary>{examples}</details>"
            f"{_machine_section(cand)}</section>")


def _machine_section(cand: CandidateAudit) -> str:
    """Score distributions (candidate, human reference, AI reference) of each zero-shot
    detector and the most machine-like documents, escaped; empty without a language model."""
    m = cand.machine
    if not m:
        return ""
    hists = m.get("histograms", {})
    fig_html = _hist_svg(hists) if hists else ""
    top = "".join(f"<tr><td>{int(d['index'])}</td><td>{_f(d['score'], 3)}</td>"
                  f"<td class=def><pre class=doc>{escape(d['text'])}</pre></td></tr>"
                  for d in m.get("most_machine_like", []))
    return (f"<h3>Language-model detectors ({escape(str(m.get('scorer')))}; best: "
            f"{escape(str(m.get('best_detector')))})</h3>"
            f"<p class=desc>Score distributions of the candidate, the held-out human reference "
            f"and the AI reference (higher = more machine-like; the dashed line is the "
            f"calibrated threshold).</p><div class=trendfig>{fig_html}</div>"
            f"<details open><summary>The {len(m.get('most_machine_like', []))} most "
            f"machine-like documents (best detector; 0-based index in the candidate)</summary>"
            f"<table class=audit><thead><tr><th>index</th><th>score</th><th>text</th></tr>"
            f"</thead><tbody>{top}</tbody></table></details>")


def _hist_svg(hists: dict) -> str:
    import matplotlib.pyplot as plt
    import numpy as np

    from ..report.html import _svg

    fig, axes = plt.subplots(1, len(hists), figsize=(3.7 * len(hists), 2.6), squeeze=False)
    for ax, (name, h) in zip(axes.flat, hists.items()):
        edges = np.asarray(h["edges"])
        for key, colour in (("human_reference", "C0"), ("ai_reference", "C3"),
                            ("candidate", "k")):
            counts = np.asarray(h[key], float)
            if counts.sum():
                ax.stairs(counts / counts.sum(), edges, color=colour, lw=1.4,
                          label=key.replace("_", " "))
        ax.axvline(h["threshold"], color="0.4", ls="--", lw=1)
        ax.set_title(name, fontsize=9)   # our own detector names, never corpus text
        ax.tick_params(labelsize=7)
    axes.flat[0].legend(fontsize=7)
    fig.tight_layout()
    svg = _svg(fig, "machine")
    plt.close(fig)
    return svg


def _trend(result: AuditResult) -> str:
    """A table signal x candidate and a plot of each signal's estimate and interval."""
    cands = result.candidates
    names = [n for n in RULES if any(n in c.all_signals() for c in cands)]
    head = "".join(f"<th>{i + 1}</th>" for i in range(len(cands)))
    rows = []
    for name in names:
        cells = []
        for c in cands:
            s = c.all_signals().get(name)
            cells.append("<td>&ndash;</td>" if s is None else
                         f"<td class=\"v-{escape(s.verdict)}\">{_f(s.estimate, 3)}<br>"
                         f"<span class=key>[{_f(s.ci_low, 3)}, {_f(s.ci_high, 3)}]</span></td>")
        rows.append(f"<tr><td><code>{escape(name)}</code></td>{''.join(cells)}</tr>")
    legend = "".join(f"<li>{i + 1}: {escape(c.name)} {_badge(c.verdict)}</li>"
                     for i, c in enumerate(cands))
    return (f"<section id=trend><h2>Trend across candidates</h2><ol class=desc "
            f"style=\"list-style:none;padding:0\">{legend}</ol>"
            f"<div class=trendfig>{_trend_svg(cands, names)}</div>"
            f"<table class=audit><thead><tr><th>signal</th>{head}</tr></thead>"
            f"<tbody>{''.join(rows)}</tbody></table></section>")


def _trend_svg(cands: list[CandidateAudit], names: list[str]) -> str:
    import matplotlib.pyplot as plt

    from ..report.html import _svg

    cols = 4
    rows = math.ceil(len(names) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(11, 2.3 * rows), squeeze=False)
    x = range(1, len(cands) + 1)
    for ax, name in zip(axes.flat, names):
        est, lo, hi = ([getattr(c.all_signals()[name], f) if name in c.all_signals()
                        else float("nan") for c in cands]
                       for f in ("estimate", "ci_low", "ci_high"))
        ax.fill_between(x, lo, hi, color="C0", alpha=0.2, lw=0)
        ax.plot(x, est, "o-", color="C0", lw=1.4, ms=4)
        ax.set_title(name, fontsize=9)   # our own signal names, never corpus text
        ax.set_xticks(list(x))
        ax.tick_params(labelsize=7)
        ax.grid(True, color="0.92", lw=0.8)
    for ax in list(axes.flat)[len(names):]:
        ax.set_visible(False)
    fig.tight_layout()
    svg = _svg(fig, "trend")
    plt.close(fig)
    return svg


def _howto() -> str:
    rows = "".join(
        f"<tr><td><code>{escape(n)}</code></td><td>{escape(r.direction)}</td>"
        f"<td>{r.watch:g}</td><td>{r.alert:g}</td><td>{escape(r.scale)}</td>"
        f"<td class=def>{escape(r.baseline)}</td></tr>" for n, r in RULES.items())
    return ("<section class=howto id=howto><h2 style=\"border:0;margin-top:8px\">How to read "
            "this</h2><p>Every signal has an estimate, a 95% interval, the sample size it "
            "rests on and a verdict. The verdict looks at the <em>conservative</em> end of the "
            "interval (the end nearest to &ldquo;no change&rdquo;): <b>alert</b> when even "
            "that end has moved past the alert threshold in the signal's bad direction, "
            "<b>watch</b> past the watch threshold, <b>ok</b> otherwise. A relative threshold "
            "is a share of the reference's own value. Caveats (yellow) say when a comparison "
            "is not trustworthy: another domain, a small sample, copies of the reference.</p>"
            "<table class=audit><thead><tr><th>signal</th><th>worse when</th><th>watch</th>"
            "<th>alert</th><th>scale</th><th>baseline</th></tr></thead><tbody>"
            f"{rows}</tbody></table></section>")


def render(result: AuditResult) -> str:
    """The page for ``result`` (module docstring)."""
    from ..report.html import CSS

    ref, st = result.reference, result.settings
    now = _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
    meta = [("verdict", _badge(result.verdict)),
            ("reference", f"<code>{escape(str(ref['spec']))}</code>"),
            ("reference size", f"{ref['n_docs']:,} documents, {ref['n_tokens']:,} tokens "
                               f"({ref['model_docs']:,} model / {ref['heldout_docs']:,} held out)"),
            ("AI reference", escape(str(ref["ai_reference"]))),
            ("candidates", str(len(result.candidates))),
            ("settings", f"<code>{escape(json.dumps(st, sort_keys=True))}</code>"),
            ("report written", escape(now))]
    dl = "".join(f"<dt>{k}</dt><dd>{v}</dd>" for k, v in meta)
    ref_caveats = "".join(f"<p class=note>{escape(c['message'])}</p>"
                          for c in ref.get("caveats", []))
    trend = _trend(result) if len(result.candidates) > 1 else ""
    sections = "".join(_candidate_section(i + 1, c) for i, c in enumerate(result.candidates))
    provenance = escape(json.dumps(ref, indent=2, default=str))
    return (
        "<!DOCTYPE html>\n<html lang=en><head><meta charset=utf-8>"
        "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; "
        "style-src 'unsafe-inline'; img-src data:\">"
        "<meta name=viewport content=\"width=device-width, initial-scale=1\">"
        f"<title>modelcollapse audit</title><style>{CSS}{_CSS}</style></head><body>"
        f"<header><h1>Collapse-risk audit</h1><dl class=meta>{dl}</dl></header>{ref_caveats}"
        f"<nav><a href=\"#howto\">how to read</a>"
        + ("<a href=\"#trend\">trend</a>" if trend else "")
        + "".join(f"<a href=\"#cand-{i + 1}\">candidate {i + 1}</a>"
                  for i in range(len(result.candidates)))
        + f"<a href=\"#reference\">reference</a></nav>{_howto()}{trend}{sections}"
        f"<section id=reference><h2>Reference</h2><details><summary>provenance, splits and "
        f"models</summary><pre class=doc style=\"max-height:40em\">{provenance}</pre></details>"
        f"</section></body></html>\n")
