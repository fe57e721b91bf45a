"""Metrics of the categorical family (the memorizer), in nats where logarithms appear."""

from __future__ import annotations

import numpy as np
from scipy.special import xlogy

from ..capabilities import HasProbabilities
from .base import MetricContext, metric

CAT = (HasProbabilities,)


def _truth(ctx: MetricContext) -> np.ndarray:
    return ctx.family.truth_probs()


@metric("collision_probability", direction="truth", requires=CAT,
        description="sum_i q_i^2, the chance two draws coincide (Seddik et al. 2024)")
def collision_probability(ctx: MetricContext) -> np.ndarray:
    q = ctx.model.probs_
    return np.einsum("rk,rk->r", q, q)


@metric("entropy", direction="truth", requires=CAT, description="Shannon entropy of the model's outcome probabilities, nats")
def entropy(ctx: MetricContext) -> np.ndarray:
    return -xlogy(ctx.model.probs_, ctx.model.probs_).sum(axis=1)


@metric("support_size", direction="truth", requires=CAT, description="outcomes with non-zero probability")
def support_size(ctx: MetricContext) -> np.ndarray:
    return (ctx.model.probs_ > 0).sum(axis=1).astype(float)


@metric("missing_mass", direction="lower", requires=CAT,
        description="true probability of the outcomes the model gives zero probability")
def missing_mass(ctx: MetricContext) -> np.ndarray:
    return ((ctx.model.probs_ == 0) * _truth(ctx)).sum(axis=1)


@metric("hutter_error", direction="lower", requires=CAT,
        description="sum_i p_i (1 - q_i)^T: error of a memorizer trained on T draws from the model (Dohmatob, Feng, Yang, Charton and Kempe 2024, \"A tale of tails\")")
def hutter_error(ctx: MetricContext) -> np.ndarray:
    t = ctx.family.params.hutter_T or ctx.n_samples
    # (1 - q)^T computed as exp(T log1p(-q)) to stay accurate for tiny q and large T.
    with np.errstate(divide="ignore"):
        return (_truth(ctx) * np.exp(t * np.log1p(-ctx.model.probs_))).sum(axis=1)


@metric("tv_to_truth", direction="lower", requires=CAT, description="total-variation distance to the truth")
def tv_to_truth(ctx: MetricContext) -> np.ndarray:
    return 0.5 * np.abs(ctx.model.probs_ - _truth(ctx)).sum(axis=1)
