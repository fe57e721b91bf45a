"""Metrics of continuous families (gaussian, gmm, kde), through their mixture form.

Conventions: ``mean`` is the model's mean (averaged over coordinates when d > 1);
``kl_to_truth`` is KL(truth || model), the expected excess log-loss on real data (closed
form for the Gaussian family, a Monte Carlo estimate on ``n_eval`` held-out real points
otherwise); ``tail_mass`` compares, per coordinate marginal, the model's mass beyond the
truth's Phi(-3) and Phi(3) quantiles (mean -+ 3 standard deviations for a Gaussian truth;
the same tail probability for a multimodal one) with the truth's own mass there (1 = tails
intact, 0 = tails gone), averaged over coordinates.
"""

from __future__ import annotations

import numpy as np

from ..families.mixture import Mixture, broadcast, l2_distance
from ..randomness import SHARED, Stream
from ..capabilities import GaussianClosedForm, HasDensity, HasMoments, MixtureComponents
from .base import MetricContext, metric

CONTINUOUS = (HasMoments,)


def _truth(ctx: MetricContext) -> Mixture:
    return ctx.family.truth_mixture()


@metric("mean", direction="truth", requires=CONTINUOUS,
        description="the model's mean (averaged over coordinates when d > 1)")
def mean(ctx: MetricContext) -> np.ndarray:
    return ctx.model.moments()[0].mean(axis=1)


@metric("mean_error", direction="lower", requires=CONTINUOUS,
        description="||mu - mu*||^2, squared distance of the model's mean to the true mean")
def mean_error(ctx: MetricContext) -> np.ndarray:
    return ((ctx.model.moments()[0] - _truth(ctx).mean()) ** 2).sum(axis=1)


@metric("variance", direction="truth", requires=CONTINUOUS, applies=lambda p: p.dim == 1,
        description="the fitted variance (1-D models)")
def variance(ctx: MetricContext) -> np.ndarray:
    return ctx.model.moments()[1][:, 0, 0]


@metric("cov_trace", direction="truth", requires=CONTINUOUS,
        description="trace of the model's covariance (total variance)")
def cov_trace(ctx: MetricContext) -> np.ndarray:
    return np.trace(ctx.model.moments()[1], axis1=1, axis2=2)


@metric("cov_logdet", direction="truth", requires=CONTINUOUS,
        description="log-determinant of the model's covariance (log generalized variance)")
def cov_logdet(ctx: MetricContext) -> np.ndarray:
    sign, logdet = np.linalg.slogdet(ctx.model.moments()[1])
    return np.where(sign > 0, logdet, -np.inf)


def _sqrtm_psd(a: np.ndarray) -> np.ndarray:
    w, v = np.linalg.eigh(a)
    return (v * np.sqrt(np.clip(w, 0.0, None))[..., None, :]) @ np.swapaxes(v, -1, -2)


@metric("w2_to_truth", direction="lower", requires=(GaussianClosedForm,),
        description="2-Wasserstein distance to the true Gaussian, in closed form")
def w2_to_truth(ctx: MetricContext) -> np.ndarray:
    m, s = ctx.model.mean_, ctx.model.cov_
    m0, s0 = ctx.family.truth_mean, ctx.family.truth_cov
    root0 = _sqrtm_psd(s0)
    cross = _sqrtm_psd(root0 @ s @ root0)
    sq = ((m - m0) ** 2).sum(1) + np.trace(s, axis1=1, axis2=2) + np.trace(s0) \
        - 2.0 * np.trace(cross, axis1=1, axis2=2)
    return np.sqrt(np.maximum(sq, 0.0))


def _heldout(ctx: MetricContext) -> tuple[np.ndarray, np.ndarray]:
    """(1, M, d) held-out real points shared by all replicates, and (M,) their true log
    density; drawn once per chunk from the cell's shared 'heldout' generator."""
    if ctx.state.heldout is None:
        truth = _truth(ctx)
        stream = Stream(ctx.state.seeds, "heldout", [SHARED])
        x = truth.sample(ctx.family.params.n_eval, stream)
        ctx.state.heldout = (x, truth.logpdf(x)[0])
    return ctx.state.heldout


KL_DESCRIPTION = ("KL(truth || model): closed form (a Gaussian) or Monte Carlo on n_eval "
                  "held-out points (a mixture density)")


@metric("kl_to_truth", direction="lower", requires=(GaussianClosedForm,), description=KL_DESCRIPTION)
def kl_to_truth_gaussian(ctx: MetricContext) -> np.ndarray:
    m, s = ctx.model.mean_, ctx.model.cov_
    m0, s0 = ctx.family.truth_mean, ctx.family.truth_cov
    d = m.shape[1]
    sign, logdet = np.linalg.slogdet(s)
    out = np.full(len(m), np.inf)   # a collapsed (singular) model is infinitely far
    ok = sign > 0
    if ok.any():
        sinv = np.linalg.inv(s[ok])
        diff = m[ok] - m0
        out[ok] = 0.5 * (np.trace(sinv @ s0, axis1=1, axis2=2)
                         + np.einsum("ri,rij,rj->r", diff, sinv, diff) - d
                         + logdet[ok] - np.linalg.slogdet(s0)[1])
    return out


@metric("kl_to_truth", direction="lower", requires=(HasMoments, HasDensity), description=KL_DESCRIPTION)
def kl_to_truth(ctx: MetricContext) -> np.ndarray:
    x, true_logp = _heldout(ctx)
    return (true_logp[None] - ctx.model.mixture.logpdf(x)).mean(axis=1)


TAIL = 0.0013498980316301035  # Phi(-3): the one-sided mass beyond 3 sigma of a Gaussian


def _truth_tails(ctx: MetricContext) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(d,) the truth's marginal Phi(-3) and Phi(3) quantiles (mu -+ 3 sigma for a Gaussian
    truth) and (d,) the truth's mass beyond them; solved once per chunk by bisection."""
    if ctx.state.tails is None:
        truth = _truth(ctx)
        mu, sd = truth.mean()[0], np.sqrt(np.diag(truth.cov()[0]))
        lo, hi = mu - 10 * sd, mu + 10 * sd
        bounds = []
        for target, upper in ((TAIL, False), (TAIL, True)):
            a, b = lo.copy(), hi.copy()
            for _ in range(100):
                mid = 0.5 * (a + b)
                below = truth.marginal_tail(mid, np.full_like(mid, np.inf))[0]
                above = truth.marginal_tail(np.full_like(mid, -np.inf), mid)[0]
                mass = above if upper else below
                move_up = (mass > target) if upper else (mass < target)
                a, b = np.where(move_up, mid, a), np.where(move_up, b, mid)
            bounds.append(0.5 * (a + b))
        ctx.state.tails = (bounds[0], bounds[1], truth.marginal_tail(bounds[0], bounds[1])[0])
    return ctx.state.tails


@metric("tail_mass", direction="truth", requires=(HasMoments, HasDensity), center="median",
        description="model mass beyond the truth's 0.135%/99.865% marginal quantiles (3 sigma), "
                    "relative to the truth's (1 = tails intact)")
def tail_mass(ctx: MetricContext) -> np.ndarray:
    lo, hi, true_mass = _truth_tails(ctx)
    return (ctx.model.mixture.marginal_tail(lo, hi) / true_mass).mean(axis=1)


@metric("l2_to_truth", direction="lower", requires=(HasDensity, MixtureComponents),
        description="L2 distance between the fitted and the true mixture densities, closed form")
def l2_to_truth(ctx: MetricContext) -> np.ndarray:
    mix = ctx.model.mixture
    return l2_distance(mix, broadcast(_truth(ctx), mix.weights.shape[0]))


@metric("n_components_alive", direction="truth", requires=(MixtureComponents,),
        description="components with weight above params.alive_threshold")
def n_components_alive(ctx: MetricContext) -> np.ndarray:
    return (ctx.model.mixture.weights > ctx.family.params.alive_threshold).sum(axis=1).astype(float)
