"""Metrics of the curation policies, read from the measures stored with each training set.

Generation g's values describe the curation that built its training set (from generation
g-1's pool), measured against provenance. Generation 0 trains on real data that nobody
filtered, so these metrics have no value (and no row) there.
"""

from __future__ import annotations

import numpy as np

from .base import MetricContext, metric

TEXT = ("ngram",)
FILTERS = ("filtered", "curated")


def _stored(name: str):
    def fn(ctx: MetricContext) -> np.ndarray:
        measures = getattr(ctx.train, "curation", None)
        if not measures or name not in measures:
            return np.full(len(ctx.model.replicates), np.nan)
        return measures[name]
    return fn


MEASURES = [
    ("dropped_share", "lower", FILTERS, "share of the candidate pool the curation dropped"),
    ("kept_synthetic_share", "lower", FILTERS, "share of machine-written documents among those kept"),
    ("detector_precision", "higher", ("filtered",), "share of flagged documents that are machine-written (1 when none is flagged)"),
    ("detector_recall", "higher", ("filtered",), "share of machine-written documents flagged (1 when there are none)"),
    ("detector_fpr", "lower", ("filtered",), "share of human documents flagged (0 when there are none)"),
    ("detector_flagged_share", "info", ("filtered",), "share of the pool the detector flagged"),
    ("dropped_detector", "info", ("filtered",), "documents dropped because the detector flagged them"),
    ("dropped_exact_duplicate", "info", ("curated",), "documents dropped as exact duplicates"),
    ("dropped_near_duplicate", "info", ("curated",), "documents dropped as near duplicates (MinHash LSH)"),
    ("dropped_low_quality", "info", ("curated",), "documents dropped by the quality selection"),
    ("dropped_low_diversity", "info", ("curated",), "documents dropped by the diversity selection"),
    ("dropped_cluster_cap", "info", ("curated",), "documents dropped above the per-cluster cap"),
]

for _name, _direction, _policies, _description in MEASURES:
    metric(_name, direction=_direction, families=TEXT, policies=_policies, sparse=True,
           description=_description)(_stored(_name))
