"""Shared helpers for the tests: run one cell in memory and pull one metric as an array."""

from __future__ import annotations

import numpy as np
import pandas as pd

from modelcollapse.api import make_study
from modelcollapse.loop import run_cell


def run_one(**kw) -> pd.DataFrame:
    study = make_study(**kw)
    assert len(study.cells) == 1
    return run_cell(study.cells[0])


def values(df: pd.DataFrame, metric: str, generation: int) -> np.ndarray:
    sel = df[(df.metric == metric) & (df.generation == generation)].sort_values("replicate")
    return sel["value"].to_numpy()


def matrix(df: pd.DataFrame, metric: str) -> np.ndarray:
    """(G, R) values of one metric."""
    sel = df[df.metric == metric]
    return sel.pivot(index="generation", columns="replicate", values="value").to_numpy()
