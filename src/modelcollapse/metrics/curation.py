"""Metrics of the curation policies, read from the measures stored with each training set.

Generation g's values describe the curation that built its training set (from generation
g-1's pool), measured against provenance. Generation 0 trains on real data that nobody
filtered, so these metrics have no value (and no row) there.
"""

from __future__ import annotations

import numpy as np

from ..capabilities import RecordsCuration
from .base import MetricContext, metric


def _stored(name: str):
    def fn(ctx: MetricContext) -> np.ndarray:
        measures = ctx.train.curation if ctx.train is not None else None
        if not measures or name not in measures:
            return np.full(len(ctx.train.sizes) if ctx.train is not None else 1, np.nan)
        return measures[name]
    return fn


MEASURES = {
    "dropped_share": ("lower", "share of the candidate pool the curation dropped"),
    "kept_synthetic_share": ("lower", "share of machine-written documents among those kept"),
    "detector_precision": ("higher", "share of flagged documents that are machine-written (1 when none is flagged)"),
    "detector_recall": ("higher", "share of machine-written documents flagged (1 when there are none)"),
    "detector_fpr": ("lower", "share of human documents flagged (0 when there are none)"),
    "detector_flagged_share": ("info", "share of the pool the detector flagged"),
    "dropped_detector": ("info", "documents dropped because the detector flagged them"),
    "dropped_exact_duplicate": ("info", "documents dropped as exact duplicates"),
    "dropped_near_duplicate": ("info", "documents dropped as near duplicates (MinHash LSH)"),
    "dropped_low_quality": ("info", "documents dropped by the quality selection"),
    "dropped_low_diversity": ("info", "documents dropped by the diversity selection"),
    "dropped_cluster_cap": ("info", "documents dropped above the per-cluster cap"),
}

# A policy that records curation declares which of these it stores (RecordsCuration.measures);
# each applies to any family under such a policy.
for _name, (_direction, _description) in MEASURES.items():
    metric(_name, direction=_direction, policy_requires=(RecordsCuration,), sparse=True,
           description=_description)(_stored(_name))
