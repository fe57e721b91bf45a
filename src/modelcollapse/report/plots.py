"""PNG plots of every metric against generation, with 95% bands and theory overlays.

One figure per (family, metric) with one line per cell: the mean over replicates and a
band of the 95% confidence interval of that mean (t quantile times the standard error), or,
for metrics registered with ``center="median"`` (heavy-tailed ones such as ``tail_mass``,
whose mean a few chains dominate), the median and the band from the 10% to the 90% quantile
of the chains; the panel's title says which.
Where the literature gives a closed form, it is drawn dashed in the cell's colour; where a
closed form exists but is undefined for the setting, the figure says so and why. Metrics
compared with the truth get a dotted grey line at the true distribution's value.
"""

from __future__ import annotations

import os
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from scipy import stats  # noqa: E402

from .. import theory  # noqa: E402
from ..catalog import FAMILIES  # noqa: E402
from .truth import truth_value  # noqa: E402
from ..metrics import METRICS  # noqa: E402
from ..runs.study import Study  # noqa: E402

PANELS_PER_FAMILY = 3


def summarize(df: pd.DataFrame) -> pd.DataFrame:
    """Per generation: mean, lo, hi (95% CI of the mean over finite values), n, n_nonfinite,
    and the median, q10 and q90 of the finite values (the chains' spread)."""
    finite = np.isfinite(df["value"].to_numpy())
    g = df[finite].groupby("generation")["value"]
    out = pd.DataFrame({"mean": g.mean(), "sd": g.std(ddof=1), "n": g.count(),
                        "median": g.median(), "q10": g.quantile(0.1), "q90": g.quantile(0.9)})
    half = stats.t.ppf(0.975, np.maximum(out["n"] - 1, 1)) * out["sd"].fillna(0.0) / np.sqrt(out["n"])
    out["lo"], out["hi"] = out["mean"] - half, out["mean"] + half
    out["n_nonfinite"] = int((~finite).sum())
    return out


CENTERS = {"mean": ("mean", "lo", "hi", "mean, 95% CI"),
           "median": ("median", "q10", "q90", "median, 10-90% of chains")}


def center_of(metric: str, override: str | None = None) -> tuple[str, str, str, str]:
    """(line column, band low, band high, caption) for ``metric``: its registered default
    (``center="median"`` for heavy-tailed metrics) unless ``override`` names one."""
    choice = override or getattr(METRICS.get(metric), "center", "mean")
    return CENTERS[choice]


def _draw(ax, study: Study, data: pd.DataFrame, family: str, metric: str, legend: bool = True,
          center: str | None = None) -> None:
    cells = [c for c in study.cells if c.family == family and metric in c.metrics]
    line, band_lo, band_hi, caption = center_of(metric, center)
    notes, truth = [], None
    for i, cell in enumerate(cells):
        color = f"C{i % 10}"
        sub = data[(data["cell"] == cell.key) & (data["metric"] == metric)]
        if sub.empty:
            continue
        s = summarize(sub)
        label = study.label(cell, within_family=True)
        if s["n_nonfinite"].iloc[0] if len(s) else 0:
            label += f" ({int(s['n_nonfinite'].iloc[0])} non-finite omitted)"
        ax.plot(s.index, s[line], color=color, lw=1.6, label=label)
        ax.fill_between(s.index, s[band_lo], s[band_hi], color=color, alpha=0.2, lw=0)
        gens = np.arange(cell.generations)
        curve = theory.curve(cell.family, cell.policy, cell.params, cell.n_samples, metric, gens)
        if curve is not None and curve.values is not None:
            ax.plot(gens, curve.values, color=color, ls="--", lw=1.2,
                    label=f"theory: {curve.label}" if legend else None)
        elif curve is not None:
            notes.append(f"theory overlay absent for {label}: {curve.reason}")
        truth = truth if truth is not None else truth_value(cell, metric)
    if truth is not None and np.isfinite(truth):
        lo, hi = ax.get_ylim()
        if lo - 0.5 * (hi - lo) <= truth <= hi + 0.5 * (hi - lo):
            ax.axhline(truth, color="0.5", ls=":", lw=1.2, label="truth")
        else:  # far off the data's scale: say it rather than squash the curves
            ax.text(0.98, 0.98, f"truth = {truth:.4g} (off scale)", transform=ax.transAxes,
                    ha="right", va="top", fontsize=7, color="0.4")
    ax.set_xlabel("generation")
    ax.set_ylabel(metric)
    ax.set_title(f"{family}: {metric}" + ("" if line == "mean" else f" ({caption})"), fontsize=10)
    if notes:
        ax.text(0.02, 0.02, "\n".join(notes), transform=ax.transAxes, fontsize=7, va="bottom",
                color="0.3", wrap=True)
    if legend:
        ax.legend(fontsize=7, loc="best")


def _save(fig, path: Path, dpi: int) -> None:
    """Write a PNG under a temporary name, then rename: a crash never leaves half a plot."""
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}.png")
    fig.savefig(tmp, dpi=dpi)
    os.replace(tmp, path)


def plot_study(study: Study, data: pd.DataFrame, folder: str | Path,
               center: str | None = None) -> list[Path]:
    """Write plots/<family>__<metric>.png for every metric and plots/overview.png. Each
    metric is drawn as its registered ``center`` (mean with 95% CI, or median with the
    10-90% band for heavy-tailed metrics) unless ``center`` ('mean' or 'median') overrides."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    families = list(dict.fromkeys(c.family for c in study.cells))
    for family in families:
        metrics = [m for m in METRICS.names()
                   if any(m in c.metrics for c in study.cells if c.family == family)]
        for metric in metrics:
            fig, ax = plt.subplots(figsize=(6.4, 4.2))
            _draw(ax, study, data, family, metric, center=center)
            fig.tight_layout()
            path = folder / f"{family}__{metric}.png"
            _save(fig, path, dpi=110)
            plt.close(fig)
            written.append(path)
    panels = []
    for f in families:
        measured = [m for m in METRICS.names()
                    if any(m in c.metrics for c in study.cells if c.family == f)]
        preferred = FAMILIES.get(f).overview if f in FAMILIES else ()
        present = [m for m in preferred if m in measured] or measured
        if "variance" in present and "cov_trace" in present:
            present.remove("cov_trace")  # the same number in 1-D
        panels += [(f, m) for m in present[:PANELS_PER_FAMILY]]
    if panels:
        cols = min(3, len(panels))
        rows = -(-len(panels) // cols)
        fig, axes = plt.subplots(rows, cols, figsize=(5.0 * cols, 3.6 * rows), squeeze=False)
        for ax, (f, m) in zip(axes.ravel(), panels):
            _draw(ax, study, data, f, m, center=center)
        for ax in axes.ravel()[len(panels):]:
            ax.axis("off")
        fig.suptitle(f"{study.name}: mean over replicates with 95% CI (median with 10-90% band where "
                     f"the panel says so), theory dashed, truth dotted",
                     fontsize=11)
        fig.tight_layout()
        path = folder / "overview.png"
        _save(fig, path, dpi=100)
        plt.close(fig)
        written.append(path)
    return written
