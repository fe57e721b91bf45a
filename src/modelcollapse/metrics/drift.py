"""Continuous-family metrics that cannot be fooled by a drifting mean, distances to the
generation-0 model, and sample-based precision and recall.

- ``tail_mass_centered``: per coordinate marginal, the model's mass beyond the truth's
  Phi(-3) and Phi(3) quantiles moved by the model's mean shift (its own mean -+ 3 true
  standard deviations for a Gaussian truth), relative to the truth's mass beyond them. A
  chain whose mean drifted keeps the value of its spread: for a Gaussian model with standard
  deviation s it is Phi(-3 sigma/s) / Phi(-3), which only falls as the variance collapses. ``tail_mass``
  (fixed truth quantiles) instead counts a drifted bulk as tail mass, and its mean over
  chains is dominated by those chains (heavy-tailed: read its median).
- ``w2_to_gen0`` and ``kl_to_gen0``: the distance of generation g's model to the chain's own
  generation-0 model (the fit on real data), Bertrand et al. (2024)'s quantity: W2 in closed
  form for Gaussians; KL(gen0 || model) in closed form for Gaussians and by Monte Carlo for
  mixture densities (``N_DRAWS`` draws from each chain's generation-0 model, made from common
  random numbers shared by all replicates so that values do not depend on chunking).
- ``precision`` and ``recall`` (Kynkaanniemi et al. 2019, k = 3): the share of the model's
  draws inside the union of k-NN balls of real points, and the share of real points inside
  the union of k-NN balls of the model's draws; ``N_POINTS`` real points (shared) and as many
  model draws per replicate (common random numbers again). Opt-in (computed when named):
  O(n log n) per replicate in 1-D, O(n^2) above.
"""

from __future__ import annotations

import numpy as np

from ..capabilities import GaussianClosedForm, HasDensity, HasMoments
from ..families.mixture import Mixture, safe_cholesky
from ..randomness import SHARED, Stream
from .base import MetricContext, metric
from .continuous import _truth_tails as truth_tails

PRECISION = ("share of generated samples inside some real sample's k-NN ball (fidelity; Kynkaanniemi "
             "et al. 2019): image features (k = nn_k), or raw points of a continuous family (k = 3, "
             "256 each, opt-in)")
RECALL = ("share of real samples inside some generated sample's k-NN ball (diversity; Kynkaanniemi "
          "et al. 2019): image features (k = nn_k), or raw points of a continuous family (k = 3, "
          "256 each, opt-in)")
N_DRAWS = 2000     # Monte Carlo draws for kl_to_gen0 on mixtures
N_POINTS = 256     # real points and model draws for precision / recall
K_NN = 3
PR_BLOCK = 32      # replicates per distance block (32 x 256 x 256 doubles = 16 MiB)


def _truth(ctx: MetricContext) -> Mixture:
    return ctx.family.truth_mixture()


@metric("tail_mass_centered", direction="truth", requires=(HasMoments, HasDensity), center="median",
        description="model mass beyond the truth's 0.135%/99.865% marginal quantiles moved by the "
                    "model's mean shift (mean -+ 3 sigma* around the model's own mean), relative to "
                    "the truth's: a drifted mean does not count as tail mass (1 = tails intact)")
def tail_mass_centered(ctx: MetricContext) -> np.ndarray:
    lo, hi, true_mass = truth_tails(ctx)                                       # (d,) each
    shift = ctx.model.mixture.mean() - _truth(ctx).mean()                      # (R, d)
    mix = ctx.model.mixture
    mass = mix.marginal_tail((lo + shift)[:, None, :], (hi + shift)[:, None, :])   # (R, d)
    return (mass / true_mass).mean(axis=1)


def gen0(ctx: MetricContext):
    """The chain's generation-0 model (kept in the chunk's evaluation state)."""
    if ctx.generation == 0 or ctx.state.gen0 is None:
        ctx.state.gen0 = ctx.model
    return ctx.state.gen0


def _sqrtm_psd(a: np.ndarray) -> np.ndarray:
    w, v = np.linalg.eigh(a)
    return (v * np.sqrt(np.clip(w, 0.0, None))[..., None, :]) @ np.swapaxes(v, -1, -2)


def gaussian_w2(m0: np.ndarray, s0: np.ndarray, m: np.ndarray, s: np.ndarray) -> np.ndarray:
    """(R,) W2 between N(m0, s0) and N(m, s), batched: means (R, d), covariances (R, d, d)."""
    root0 = _sqrtm_psd(s0)
    cross = _sqrtm_psd(root0 @ s @ root0)
    sq = ((m - m0) ** 2).sum(1) + np.trace(s, axis1=1, axis2=2) + np.trace(s0, axis1=1, axis2=2) \
        - 2.0 * np.trace(cross, axis1=1, axis2=2)
    return np.sqrt(np.maximum(sq, 0.0))


def gaussian_kl(m0: np.ndarray, s0: np.ndarray, m: np.ndarray, s: np.ndarray) -> np.ndarray:
    """(R,) KL(N(m0, s0) || N(m, s)); inf where s is singular, 0 where both are the same."""
    d = m.shape[1]
    sign, logdet = np.linalg.slogdet(s)
    sign0, logdet0 = np.linalg.slogdet(s0)
    out = np.full(len(m), np.inf)
    ok = (sign > 0) & (sign0 > 0)
    if ok.any():
        sinv = np.linalg.inv(s[ok])
        diff = m[ok] - m0[ok]
        out[ok] = 0.5 * (np.trace(sinv @ s0[ok], axis1=1, axis2=2)
                         + np.einsum("ri,rij,rj->r", diff, sinv, diff) - d + logdet[ok] - logdet0[ok])
    return np.maximum(out, 0.0)


@metric("w2_to_gen0", direction="lower", requires=(GaussianClosedForm,),
        description="2-Wasserstein distance to the chain's generation-0 model, closed form "
                    "(Bertrand et al. 2024's distance to the real-data fit)")
def w2_to_gen0(ctx: MetricContext) -> np.ndarray:
    first = gen0(ctx)
    if ctx.generation == 0:   # the same model: exactly 0 (the formula leaves sqrt(rounding))
        return np.zeros(len(first.mean_))
    return gaussian_w2(first.mean_, first.cov_, ctx.model.mean_, ctx.model.cov_)


KL_GEN0 = ("KL(gen0 || model) of the chain's generation-0 model to the current one: closed form "
           "(a Gaussian) or Monte Carlo on N_DRAWS draws from generation 0 (a mixture density)")


@metric("kl_to_gen0", direction="lower", requires=(GaussianClosedForm,), description=KL_GEN0)
def kl_to_gen0_gaussian(ctx: MetricContext) -> np.ndarray:
    first = gen0(ctx)
    if ctx.generation == 0:
        return np.zeros(len(first.mean_))
    return gaussian_kl(first.mean_, first.cov_, ctx.model.mean_, ctx.model.cov_)


def shared_generator(ctx: MetricContext, kind: str) -> np.random.Generator:
    """The cell's shared generator of ``kind`` in the 'evaluate' stage (a fresh copy each
    call: the same numbers every generation and in every chunk)."""
    return Stream(ctx.state.seeds, "evaluate", [SHARED]).generators(kind)[0]


def common_draws(mix: Mixture, n: int, gen: np.random.Generator) -> np.ndarray:
    """(R, n, d) draws from every replicate's mixture made from one shared set of standard
    normals and uniforms: values then depend on a replicate's model only, never on which
    replicates share its chunk."""
    d = mix.dim
    z, u = gen.standard_normal((n, d)), gen.random(n)
    cum = np.cumsum(mix.weights, axis=1)
    labels = np.minimum((u[None, :, None] >= cum[:, None, :]).sum(-1), mix.weights.shape[1] - 1)
    centers = np.take_along_axis(mix.means, labels[:, :, None], axis=1)     # (R, n, d)
    chol = safe_cholesky(mix.covs)
    if chol.shape[1] == 1:
        return centers + np.einsum("rij,nj->rni", chol[:, 0], z)
    factors = np.take_along_axis(chol, labels[:, :, None, None], axis=1)    # (R, n, d, d)
    return centers + np.einsum("rnij,nj->rni", factors, z)


@metric("kl_to_gen0", direction="lower", requires=(HasMoments, HasDensity), description=KL_GEN0)
def kl_to_gen0(ctx: MetricContext) -> np.ndarray:
    first = gen0(ctx)
    if ctx.generation == 0:
        return np.zeros(ctx.model.mixture.weights.shape[0])
    x = common_draws(first.mixture, N_DRAWS, shared_generator(ctx, "kl_to_gen0"))
    return (first.mixture.logpdf(x) - ctx.model.mixture.logpdf(x)).mean(axis=1)


def _sqdist(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(R, n, m) squared distances between a (R or 1, n, d) and b (R or 1, m, d), summed
    coordinate by coordinate (d is small here; a broadcast matmul is 5x slower)."""
    out = None
    for j in range(a.shape[-1]):
        diff = a[:, :, None, j] - b[:, None, :, j]
        out = diff * diff if out is None else out + diff * diff
    return out


def _knn_radius_1d(points: np.ndarray, k: int) -> np.ndarray:
    """(R, n) distance of each 1-D point (R, n) to its k-th nearest other point: among the
    k sorted neighbours on either side."""
    order = np.argsort(points, axis=1)
    srt = np.take_along_axis(points, order, axis=1)
    n = srt.shape[1]
    pad = np.pad(srt, ((0, 0), (k, k)), constant_values=np.inf)
    idx = np.arange(n)[:, None] + k + np.r_[-k:0, 1:k + 1][None, :]            # (n, 2k)
    dist = np.abs(pad[:, idx] - srt[:, :, None])                               # (R, n, 2k)
    radius_sorted = np.partition(dist, k - 1, axis=2)[:, :, k - 1]
    out = np.empty_like(points)
    np.put_along_axis(out, order, radius_sorted, axis=1)
    return out


def _covered_1d(queries: np.ndarray, centers: np.ndarray, radii: np.ndarray) -> np.ndarray:
    """(R,) share of 1-D queries (R, m) inside the union of intervals centers -+ radii (R, n):
    sort intervals by left end; a query is covered iff the largest right end among the
    intervals starting at or before it reaches it."""
    left, right = centers - radii, centers + radii
    order = np.argsort(left, axis=1)
    left = np.take_along_axis(left, order, axis=1)
    reach = np.maximum.accumulate(np.take_along_axis(right, order, axis=1), axis=1)
    # One searchsorted for all rows: shift row r by r * span so rows do not interleave.
    span = (max(np.ptp(left), np.ptp(queries)) + np.abs(left).max() + np.abs(queries).max() + 1.0) * 2
    offs = np.arange(len(left))[:, None] * span
    pos = np.searchsorted((left + offs).ravel(), (queries + offs).ravel(), side="right").reshape(queries.shape)
    pos -= np.arange(len(left))[:, None] * left.shape[1]
    ok = pos > 0
    last = np.take_along_axis(reach, np.maximum(pos - 1, 0), axis=1)
    return (ok & (last >= queries)).mean(axis=1)


def _precision_recall(ctx: MetricContext) -> tuple[np.ndarray, np.ndarray]:
    """(R,) precision and (R,) recall of the current models, computed once per generation
    for both metrics: one model-to-real and one model-to-model distance matrix per replicate."""
    memo = ctx.state.extra.get("precision_recall")
    if memo is not None and memo[0] == ctx.generation and memo[1] is ctx.model:
        return memo[2]
    if "pr_real" not in ctx.state.extra:
        x = common_draws(_truth(ctx), N_POINTS, shared_generator(ctx, "pr_real"))
        ctx.state.extra["pr_real"] = (x, np.sqrt(np.partition(_sqdist(x, x), K_NN, axis=2)[:, :, K_NN]))
    x, real_radii = ctx.state.extra["pr_real"]                                   # (1, n, d), (1, n)
    fake = common_draws(ctx.model.mixture, N_POINTS, shared_generator(ctx, "pr_model"))
    prec, rec = np.empty(len(fake)), np.empty(len(fake))
    if fake.shape[-1] == 1:   # 1-D: sorted neighbours and interval unions, O(n log n)
        xs, fs = np.broadcast_to(x[..., 0], fake.shape[:2]), fake[..., 0]
        prec[:] = _covered_1d(fs, xs, np.broadcast_to(real_radii, fake.shape[:2]))
        rec[:] = _covered_1d(xs, fs, _knn_radius_1d(fs, K_NN))
        ctx.state.extra["precision_recall"] = (ctx.generation, ctx.model, (prec, rec))
        return prec, rec
    for lo in range(0, len(fake), PR_BLOCK):   # bounded memory: PR_BLOCK x n x n distances
        f = fake[lo:lo + PR_BLOCK]
        cross = _sqdist(f, x)                                                    # (B, n_fake, n_real)
        fake_radii = np.sqrt(np.partition(_sqdist(f, f), K_NN, axis=2)[:, :, K_NN])
        prec[lo:lo + PR_BLOCK] = (cross <= (real_radii**2)[:, None, :]).any(axis=2).mean(axis=1)
        rec[lo:lo + PR_BLOCK] = (cross <= (fake_radii**2)[:, :, None]).any(axis=1).mean(axis=1)
    ctx.state.extra["precision_recall"] = (ctx.generation, ctx.model, (prec, rec))
    return prec, rec


@metric("precision", direction="higher", requires=(HasMoments, HasDensity), opt_in=True,
        description=PRECISION)
def precision(ctx: MetricContext) -> np.ndarray:
    return _precision_recall(ctx)[0]


@metric("recall", direction="higher", requires=(HasMoments, HasDensity), opt_in=True,
        description=RECALL)
def recall(ctx: MetricContext) -> np.ndarray:
    return _precision_recall(ctx)[1]
