"""Summaries of a tidy metrics table: per cell x generation x metric, the mean with its
confidence interval, and the median with quantiles; and a one-call plot of one metric.

Both take what ``run`` returns (or ``load`` reads), so results held in memory are
summarized and drawn exactly like a run folder's.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from .errors import UserError, closest

#: Columns that identify a cell, in the order they are kept (those present in the table).
CELL_KEYS = ("cell", "label", "family", "policy")


def _quantile_name(q: float) -> str:
    return f"q{100 * q:g}".replace(".", "_")


def summarize(df: pd.DataFrame, level: float = 0.95,
              quantiles: Sequence[float] = (0.1, 0.25, 0.5, 0.75, 0.9),
              by: Sequence[str] | None = None) -> pd.DataFrame:
    """One row per (cell, generation, metric): how the replicates are spread.

    Parameters
    ----------
    df : a tidy table (``run``, ``load``, or ``run_cell`` for one cell): columns generation,
        metric, value, and the cell columns cell / label / family / policy when present.
    level : the confidence level of the interval of the mean (t quantile x standard error).
    quantiles : quantiles of the values over replicates, each a column ``q10``, ``q50``, ...
    by : the columns that identify a cell (default: those of cell, label, family, policy
        present, plus any other column but replicate and value that is constant per cell).

    Returns
    -------
    DataFrame with the ``by`` columns, generation, metric, then n (finite values), mean,
    sd, ci_low, ci_high, median, the quantile columns, and n_nonfinite (+-inf values, left
    out of every statistic: a collapsed covariance has log-determinant -inf).
    """
    need = {"generation", "metric", "value"}
    if not need <= set(df.columns):
        raise UserError(f"summarize needs a tidy table with columns {sorted(need)}; got "
                        f"{list(df.columns)}")
    if not 0.0 < level < 1.0:
        raise UserError(f"level must be in (0, 1); got {level}")
    qs = [float(q) for q in quantiles]
    if any(not 0.0 <= q <= 1.0 for q in qs):
        raise UserError(f"quantiles must be in [0, 1]; got {list(quantiles)}")
    keys = list(by) if by is not None else [c for c in CELL_KEYS if c in df.columns]
    for key in keys:
        if key not in df.columns:
            raise UserError(f"summarize: column '{key}' is not in the table")
    group = [*keys, "generation", "metric"]
    values = df["value"].to_numpy(dtype=float)
    finite = np.isfinite(values)
    frame = df.loc[:, group].assign(value=np.where(finite, values, np.nan),
                                    nonfinite=~finite)
    g = frame.groupby(group, observed=True, sort=True)
    out = g["value"].agg(["count", "mean", "std", "median"])
    out.columns = ["n", "mean", "sd", "median"]
    n = out["n"].to_numpy()
    t = stats.t.ppf(0.5 + level / 2, np.maximum(n - 1, 1))
    half = t * np.nan_to_num(out["sd"].to_numpy()) / np.sqrt(np.maximum(n, 1))
    out["ci_low"], out["ci_high"] = out["mean"] - half, out["mean"] + half
    if qs:
        qv = g["value"].quantile(qs).unstack(level=-1)
        qv.columns = [_quantile_name(q) for q in qs]
        out = out.join(qv)
    out["n_nonfinite"] = g["nonfinite"].sum().astype(np.int64)
    cols = ["n", "mean", "sd", "ci_low", "ci_high", "median",
            *[_quantile_name(q) for q in qs], "n_nonfinite"]
    return out[cols].reset_index()


def plot(data: pd.DataFrame | str | Path | Any, metric: str, stat: str = "mean",
         band: tuple[float, float] = (0.1, 0.9), ax: Any = None, path: str | Path | None = None):
    """Draw one metric against generation, one line per cell.

    Parameters
    ----------
    data : a tidy table (``run``), a ``RunResult``, or a run folder (read with ``load``).
    metric : the metric to draw.
    stat : 'mean' (line: mean over replicates; band: its confidence interval) or 'median'
        (line: median; band: the ``band`` quantiles of the replicates, 10-90% by default),
        the robust choice for heavy-tailed metrics whose mean a few chains dominate.
    ax : a matplotlib Axes to draw on (default: a new figure).
    path : also save the figure there (PNG, SVG, PDF by the suffix).

    Returns
    -------
    The matplotlib Figure.
    """
    import matplotlib.pyplot as plt

    if isinstance(data, (str, Path)):
        from .api import load
        data = load(data)
    elif not isinstance(data, pd.DataFrame) and hasattr(data, "metrics"):
        data = data.metrics   # a RunResult
    if not isinstance(data, pd.DataFrame):
        raise UserError("plot takes a tidy DataFrame, a RunResult or a run folder")
    if stat not in ("mean", "median"):
        raise UserError(f"stat must be 'mean' or 'median'; got '{stat}'")
    sub = data[data["metric"] == metric]
    if sub.empty:
        known = sorted({str(m) for m in data["metric"].unique()})
        raise UserError(f"metric '{metric}' has no rows in this table{closest(metric, known)}")
    lo_q, hi_q = band
    s = summarize(sub, quantiles=(lo_q, hi_q))
    name = "label" if "label" in s.columns else ("cell" if "cell" in s.columns else None)
    if ax is None:
        fig, ax = plt.subplots(figsize=(6.4, 4.0))
    else:
        fig = ax.figure
    groups = s.groupby(name, observed=True, sort=False) if name else [(metric, s)]
    for i, (label, line) in enumerate(groups):
        color = f"C{i % 10}"
        x = line["generation"].to_numpy()
        if stat == "mean":
            y, lo, hi = line["mean"], line["ci_low"], line["ci_high"]
        else:
            y, lo, hi = line["median"], line[_quantile_name(lo_q)], line[_quantile_name(hi_q)]
        ax.plot(x, y, color=color, label=str(label), lw=1.6)
        ax.fill_between(x, lo, hi, color=color, alpha=0.18, lw=0)
    what = ("mean, 95% CI of the mean" if stat == "mean"
            else f"median, {100 * lo_q:g}-{100 * hi_q:g}% of replicates")
    ax.set_xlabel("generation")
    ax.set_ylabel(metric)
    ax.set_title(f"{metric} ({what})", fontsize=10)
    if name:
        ax.legend(fontsize=8, frameon=False)
    if path is not None:
        fig.savefig(path, dpi=120, bbox_inches="tight")
    return fig
