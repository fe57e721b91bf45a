"""The Gaussian-mixture family, fitted by EM batched across replicates.

Truth: ``truth_components`` equal-weight Gaussians with covariance truth_std^2 I, evenly
spaced on a circle of ``truth_radius`` (a line in 1-D). The model has ``components``
components and is fitted by expectation-maximization on all replicates at once; each
replicate stops at its own convergence (mean log-likelihood change below ``tol``), so a
replicate's fit never depends on which others share its batch.

Initialization: every generation starts from a k-means fit (greedy k-means++ seeding,
Lloyd steps to convergence), as scikit-learn's default ``init_params="kmeans"`` does, so a
generation is the refit a user's own loop would make. ``warm_start=true`` instead continues
EM from the previous generation's fit: about twice as fast, but it changes the dynamics, not
just the speed: a component whose weight has collapsed is never re-seeded, so
``n_components_alive`` falls over generations, while cold refits always spread all
components over the data. Sampling draws from our own per-replicate streams; we do not
use scikit-learn's ``GaussianMixture.sample``, which rebuilds its generator from
``random_state`` on every call and so would reuse the same noise each generation.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..capabilities import HasDensity, HasMoments, MixtureComponents
from ..errors import UserError
from ..batches import REAL, SYNTHETIC, Samples
from ..randomness import Stream
from .base import Family, Sampling, register
from .mixture import LOG_2PI, Mixture, broadcast, logsumexp, ring, safe_cholesky


@dataclass(frozen=True)
class GMMParams:
    """dim, components: the model. truth_components, truth_radius, truth_std: the truth.
    max_iter, tol, reg_covar: EM (scikit-learn's defaults). warm_start: start each
    generation's EM from the previous fit instead of a fresh k-means (see module docstring). alive_threshold: weight above which a component
    counts as alive. n_eval: held-out real points for Monte Carlo metrics."""

    dim: int = 2
    components: int = 8
    truth_components: int = 8
    truth_radius: float = 4.0
    truth_std: float = 0.5
    max_iter: int = 100
    tol: float = 1e-3
    reg_covar: float = 1e-6
    warm_start: bool = False
    alive_threshold: float = 0.01
    n_eval: int = 2000

    def __post_init__(self) -> None:
        for name in ("dim", "components", "truth_components", "max_iter", "n_eval"):
            if getattr(self, name) < 1:
                raise UserError(f"params.{name} must be >= 1; got {getattr(self, name)}")
        for name in ("truth_std", "tol", "reg_covar"):
            if not getattr(self, name) > 0:
                raise UserError(f"params.{name} must be > 0; got {getattr(self, name)}")
        if self.truth_radius < 0:
            raise UserError(f"params.truth_radius must be >= 0; got {self.truth_radius}")
        if not 0 <= self.alive_threshold < 1:
            raise UserError(f"params.alive_threshold must be in [0, 1); got {self.alive_threshold}")


class GMMModel:
    """Fitted mixtures: ``mixture`` (R replicates), ``n_iter_`` (R,) EM steps taken,
    ``log_likelihood_`` (R,) mean training log-likelihood from the last E-step (one M-step
    before the returned parameters, which can only raise it, by less than ``tol``)."""

    def __init__(self, mixture: Mixture, n_iter: np.ndarray, log_likelihood: np.ndarray) -> None:
        self.mixture = mixture
        self.n_iter_ = n_iter
        self.log_likelihood_ = log_likelihood

    def moments(self) -> tuple[np.ndarray, np.ndarray]:
        """(R, d) mean and (R, d, d) covariance of the fitted distribution."""
        return self.mixture.mean(), self.mixture.cov()

def _pick(cum: np.ndarray, u: np.ndarray) -> np.ndarray:
    """Row-wise inverse-CDF lookup: (R, L) indices for cum (R, N) nondecreasing and u (R, L)
    uniforms on [0, 1)."""
    r, n = cum.shape
    total = cum[:, -1:]
    flat = total[:, 0] <= 0  # all distances zero (collapsed data): pick uniformly
    if flat.any():
        cum = cum.copy()
        cum[flat] = np.arange(1, n + 1)
        total = cum[:, -1:]
    offsets = np.arange(r)[:, None]
    idx = np.searchsorted((cum / total + offsets).ravel(), (u + offsets).ravel(), side="right")
    return np.minimum(idx.reshape(u.shape) - offsets * n, n - 1)


def _sq_dist(x: np.ndarray, c: np.ndarray, x_sq: np.ndarray | None = None) -> np.ndarray:
    """(R, N, K) squared distances between points x (R, N, d) and centers c (R, K, d), as
    |x|^2 - 2 x.c + |c|^2 with one batched matmul (no (R, N, K, d) temporary)."""
    if x_sq is None:
        x_sq = np.einsum("rnd,rnd->rn", x, x)
    out = x @ np.swapaxes(c, 1, 2)
    out *= -2.0
    out += x_sq[:, :, None]
    out += np.einsum("rkd,rkd->rk", c, c)[:, None, :]
    return np.maximum(out, 0.0, out=out)


def kmeans_init(x: np.ndarray, k: int, stream: Stream, max_iter: int = 300,
                tol: float = 1e-4) -> np.ndarray:
    """(R, k, N) one-hot labels of a k-means fit per replicate, as scikit-learn's default
    GaussianMixture init: greedy k-means++ seeding (2 + ln k candidates per center, the one
    that most reduces the potential wins), then Lloyd steps until the centers move less than
    ``tol`` times the data's mean variance. Each replicate stops on its own."""
    r, n, _ = x.shape
    rows = np.arange(r)
    trials = 2 + int(np.log(k))
    centers = np.empty((r, k, x.shape[2]))
    first = np.minimum((stream.uniform((1,))[:, 0] * n).astype(np.int64), n - 1)
    centers[:, 0] = x[rows, first]
    x_sq = np.einsum("rnd,rnd->rn", x, x)
    d2 = _sq_dist(x, centers[:, :1], x_sq)[:, :, 0]                   # (R, N)
    for j in range(1, k):
        cand = _pick(np.cumsum(d2, axis=1), stream.uniform((trials,)))  # (R, L)
        cand_d2 = np.swapaxes(_sq_dist(x, x[rows[:, None], cand], x_sq), 1, 2)
        new = np.minimum(d2[:, None, :], cand_d2)                     # (R, L, N)
        best = new.sum(-1).argmin(1)
        centers[:, j] = x[rows, cand[rows, best]]
        d2 = new[rows, best]
    threshold = tol * x.var(axis=1).mean(-1)                          # (R,)
    active = rows
    d = x.shape[2]
    for _ in range(max_iter):
        xa = x[active]
        ra = len(active)
        # Cluster sizes and sums by bincount over (replicate, cluster) codes: no one-hot array.
        codes = (_sq_dist(xa, centers[active], x_sq[active]).argmin(-1)
                 + (np.arange(ra) * k)[:, None]).ravel()
        counts = np.bincount(codes, minlength=ra * k).reshape(ra, k)
        sums = np.stack([np.bincount(codes, weights=xa[:, :, i].ravel(), minlength=ra * k)
                         for i in range(d)], axis=-1).reshape(ra, k, d)
        old = centers[active]
        moved = np.where(counts[:, :, None] > 0, sums / np.maximum(counts, 1)[:, :, None], old)
        centers[active] = moved
        done = ((moved - old) ** 2).sum((1, 2)) <= threshold[active]
        active = active[~done]
        if active.size == 0:
            break
    labels = _sq_dist(x, centers, x_sq).argmin(-1)                    # final assignment
    return np.transpose(np.eye(k)[labels], (0, 2, 1))


def outer(x: np.ndarray) -> np.ndarray:
    """(R, N, d*d) per-point outer products x x^T, flattened: shared by both EM steps."""
    r, n, d = x.shape
    return (x[:, :, :, None] * x[:, :, None, :]).reshape(r, n, d * d)


def m_step(x: np.ndarray, xx: np.ndarray, resp: np.ndarray, reg_covar: float) -> Mixture:
    """Maximum-likelihood mixture for data x (R, N, d) (centered: see fit_em), its outer
    products xx (R, N, d*d) and responsibilities resp (R, K, N). The covariances are
    E_k[x x^T] - mu_k mu_k^T, one batched matmul instead of an (R, K, N, d) temporary."""
    d = x.shape[2]
    nk = resp.sum(-1) + 10 * np.finfo(float).eps                      # (R, K)
    means = (resp @ x) / nk[:, :, None]                               # (R, K, d)
    second = (resp @ xx).reshape(resp.shape[:2] + (d, d)) / nk[:, :, None, None]
    covs = second - means[:, :, :, None] * means[:, :, None, :]
    covs = 0.5 * (covs + np.swapaxes(covs, -1, -2)) + reg_covar * np.eye(d)
    return Mixture(nk / nk.sum(-1, keepdims=True), means, covs)


def e_step(x: np.ndarray, xx: np.ndarray, mix: Mixture) -> tuple[np.ndarray, np.ndarray]:
    """(R, K, N) responsibilities and (R,) mean log-likelihood of x under mix.

    The Mahalanobis term (x - mu)^T P (x - mu) is expanded as vec(P).(x x^T) - 2 (P mu).x
    + mu^T P mu: two batched matmuls over all components at once."""
    r, n, d = x.shape
    chol = safe_cholesky(mix.covs)                                    # (R, K, d, d)
    inv = np.linalg.inv(chol)
    prec = np.swapaxes(inv, -1, -2) @ inv                             # (R, K, d, d)
    pmu = np.einsum("rkij,rkj->rki", prec, mix.means)                 # (R, K, d)
    maha = (xx @ prec.reshape(r, -1, d * d).transpose(0, 2, 1)       # (R, N, K)
            - 2.0 * (x @ np.swapaxes(pmu, 1, 2))
            + np.einsum("rki,rki->rk", pmu, mix.means)[:, None, :])
    np.maximum(maha, 0.0, out=maha)
    logdet = 2.0 * np.log(np.diagonal(chol, axis1=-2, axis2=-1)).sum(-1)   # (R, K)
    weighted = (np.log(mix.weights) - 0.5 * (d * LOG_2PI + logdet))[:, :, None] \
        - 0.5 * np.swapaxes(maha, 1, 2)                               # (R, K, N)
    norm = logsumexp(weighted, axis=1)                                # (R, N)
    return np.exp(weighted - norm[:, None]), norm.mean(-1)


def fit_em(x: np.ndarray, k: int, init: Mixture | None, stream: Stream, max_iter: int,
           tol: float, reg_covar: float) -> GMMModel:
    """Batched EM. x: (R, N, d). init: a starting mixture per replicate, or None for k-means.

    Each replicate's data is centered on its mean first (and the means shifted back at the
    end), which keeps the moment expansions in the E and M steps numerically exact enough
    wherever the data lie."""
    r = x.shape[0]
    center = x.mean(axis=1, keepdims=True)                            # (R, 1, d)
    x = x - center
    xx = outer(x)
    if init is None:
        mix = m_step(x, xx, kmeans_init(x, k, stream), reg_covar)
    else:
        mix = Mixture(init.weights.copy(), init.means - center, init.covs.copy())
    previous = np.full(r, -np.inf)
    loglik = np.full(r, -np.inf)
    n_iter = np.zeros(r, dtype=np.int64)
    active = np.arange(r)
    for _ in range(max_iter):
        sub = Mixture(mix.weights[active], mix.means[active], mix.covs[active])
        resp, ll = e_step(x[active], xx[active], sub)
        new = m_step(x[active], xx[active], resp, reg_covar)
        mix.weights[active], mix.means[active], mix.covs[active] = new.weights, new.means, new.covs
        n_iter[active] += 1
        loglik[active] = ll
        done = np.abs(ll - previous[active]) < tol
        previous[active] = ll
        active = active[~done]
        if active.size == 0:
            break
    mix.means += center
    return GMMModel(mix, n_iter, loglik)


@register
class GMM(Family, HasMoments, HasDensity, MixtureComponents):
    name = "gmm"
    overview = ('l2_to_truth', 'kl_to_truth', 'tail_mass', 'n_components_alive')   # the report's headline panels
    description = "d-dim Gaussian mixture fitted by batched EM (Shumailov et al. 2024's GMM setting)"
    Params = GMMParams
    state_classes = (GMMModel, Mixture)   # models and batches saved as data (--extend resumes)
    default_n_samples = 1000

    def validate(self, n_samples: int) -> None:
        super().validate(n_samples)
        if n_samples < self.params.components:
            raise UserError(
                f"n_samples ({n_samples}) must be at least params.components ({self.params.components})")

    def bytes_per_replicate(self, max_train: int) -> int:
        k, d = self.params.components, self.params.dim
        return 8 * max_train * (6 * k * d + 4 * k + 4 * d) + 8 * self.params.n_eval * (k + d)

    def truth_mixture(self) -> Mixture:
        p = self.params
        return ring(p.dim, p.truth_components, p.truth_radius, p.truth_std)

    def truth_model(self) -> GMMModel:
        return GMMModel(self.truth_mixture(), np.zeros(1, dtype=np.int64), np.zeros(1))

    def draw_real(self, n: int, generation: int, stream: Stream, stats: bool) -> Samples:
        x = broadcast(self.truth_mixture(), stream.n_replicates).sample(n, stream)
        return Samples.made(x, REAL, generation)

    def fit(self, data: Samples, previous: GMMModel | None, stream: Stream) -> GMMModel:
        p = self.params
        init = previous.mixture if (previous is not None and p.warm_start) else None
        return fit_em(data.values, p.components, init, stream, p.max_iter, p.tol, p.reg_covar)

    def sample(self, model: GMMModel, n: int, generation: int, stream: Stream,
               sampling: Sampling, stats: bool) -> Samples:
        x = model.mixture.sample(n, stream, sampling.temperature, sampling.truncation)
        return Samples.made(x, SYNTHETIC, generation)
