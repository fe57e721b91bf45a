"""Metrics of the labels family (Feng et al. 2024): the classifier's error and its data's."""

from __future__ import annotations

import numpy as np

from ..capabilities import Classifies
from ..families.labels import TRUE_LABEL
from .base import MetricContext, metric

LABELS = (Classifies,)


@metric("error_rate", direction="lower", requires=LABELS,
        description="share of inputs whose predicted label is wrong")
def error_rate(ctx: MetricContext) -> np.ndarray:
    return (ctx.model.pred_ != TRUE_LABEL).mean(axis=1)


@metric("train_error", direction="info", requires=LABELS,
        description="share of wrong labels in the training set (p' after a verifier; 0 for real data)")
def train_error(ctx: MetricContext) -> np.ndarray:
    return ctx.train.wrong_share()
