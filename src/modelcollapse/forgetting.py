"""Per-outcome time to forget for the categorical family.

``forget_times(cell)`` runs a categorical cell and returns, for every replicate and every
outcome, the first generation whose model gives that outcome probability 0 (-1 when it is
still alive at the last generation). Under replace an outcome never comes back once lost, so
this is the Wright-Fisher absorption time at 0 of its count
(``closed_forms.categorical.loss_time``); under mix with real data it is the first loss.

The numbers are those of the cell's own run (same seed, same streams), so they agree with
its ``support_size`` rows: at generation g, support_size = outcomes with forgotten_at either
-1 or > g (under replace).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from .errors import UserError
from .loop import build, simulate
from .capabilities import HasProbabilities
from .metrics.base import Implementation, Metric, MetricContext
from .randomness import SeedTree
from .runs.config import CellConfig


def forget_times(cell: CellConfig) -> pd.DataFrame:
    """A table with columns replicate (int32), outcome (int32, 0 = the most likely in truth),
    p_truth (float), count0 (generation 0's count of the outcome; 0 means lost at once) and
    forgotten_at (int32: the first generation with probability 0, -1 if never)."""
    family, policy, sampling, _ = build(cell)
    if not isinstance(family, HasProbabilities):
        raise UserError(f"forget_times needs a family with outcome probabilities (categorical); "
                        f"got family {cell.family}")
    k = family.params.n_outcomes
    first = np.full((cell.replicates, k), -1, dtype=np.int32)
    count0 = np.zeros((cell.replicates, k), dtype=np.int64)
    state = {"lo": 0}

    def record(ctx: MetricContext) -> np.ndarray:
        probs = ctx.model.probs_
        lo = state["lo"]
        block = first[lo:lo + len(probs)]
        block[(probs == 0) & (block < 0)] = ctx.generation
        if ctx.generation == 0:
            count0[lo:lo + len(probs)] = np.rint(probs * ctx.n_samples).astype(np.int64)
        return np.zeros(len(probs))

    capture = Metric("forget_capture", "info", "", [Implementation(record, (HasProbabilities,))])
    seeds = SeedTree(cell.seed, cell.key)
    size = cell.params["chunk_size"] or cell.replicates
    for lo in range(0, cell.replicates, size):
        hi = min(cell.replicates, lo + size)
        state["lo"] = lo
        simulate(family, policy, sampling, [capture], cell.n_samples, cell.generations, seeds,
                 np.arange(lo, hi), cell.params["sufficient_stats"])
    p = family.truth_probs()
    return pd.DataFrame({
        "replicate": np.repeat(np.arange(cell.replicates, dtype=np.int32), k),
        "outcome": np.tile(np.arange(k, dtype=np.int32), cell.replicates),
        "p_truth": np.tile(p, cell.replicates),
        "count0": count0.ravel(),
        "forgotten_at": first.ravel(),
    })
