"""Metrics for every family (provenance of the training set) and for regression."""

from __future__ import annotations

import numpy as np

from ..capabilities import HasCoefficients
from .base import MetricContext, metric


@metric("real_share", direction="info",
        description="share of real data in the training set, from each datum's provenance")
def real_share(ctx: MetricContext) -> np.ndarray:
    if ctx.train is None:
        return np.ones(1)
    return ctx.train.real_share()


@metric("test_error", direction="lower", requires=(HasCoefficients,),
        description="||w_hat - w*||_Sigma^2 = E_x[(x.w_hat - x.w*)^2], the excess test error of "
                    "the fit (||w_hat - w*||^2 for an isotropic design)")
def test_error(ctx: MetricContext) -> np.ndarray:
    return ((ctx.model.coef_ - ctx.family.coef) ** 2 * ctx.family.params.eigenvalues).sum(axis=1)
