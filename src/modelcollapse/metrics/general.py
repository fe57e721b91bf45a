"""Metrics for every family: provenance of the training set, regression error."""

from __future__ import annotations

import numpy as np

from .base import MetricContext, metric

ALL = ("gaussian", "gmm", "kde", "categorical", "linear_regression", "ngram",
       "vae", "diffusion", "pca_gmm", "image_kde")


@metric("real_share", direction="info", families=ALL,
        description="share of real data in the training set, from each datum's provenance")
def real_share(ctx: MetricContext) -> np.ndarray:
    if ctx.train is None:
        return np.ones(1)
    return ctx.train.real_share()


@metric("test_error", direction="lower", families=("linear_regression",),
        description="||w_hat - w*||^2, the excess test error of the least-squares fit")
def test_error(ctx: MetricContext) -> np.ndarray:
    return ((ctx.model.coef_ - ctx.family.coef) ** 2).sum(axis=1)
