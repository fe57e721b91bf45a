"""Metrics of the labels family (Feng et al. 2024): the classifier's error and its data's."""

from __future__ import annotations

import numpy as np

from ..models.labels import TRUE_LABEL
from .base import MetricContext, metric
from .general import real_share

LABELS = ("labels",)

metric("real_share", direction="info", families=LABELS,
       description="share of real data in the training set, from each datum's provenance")(real_share)


@metric("error_rate", direction="lower", families=LABELS,
        description="share of inputs whose predicted label is wrong")
def error_rate(ctx: MetricContext) -> np.ndarray:
    return (ctx.model.pred_ != TRUE_LABEL).mean(axis=1)


@metric("train_error", direction="info", families=LABELS,
        description="share of wrong labels in the training set (p' after a verifier; 0 for real data)")
def train_error(ctx: MetricContext) -> np.ndarray:
    return ctx.train.wrong_share()
