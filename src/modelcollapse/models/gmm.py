"""The Gaussian-mixture family, fitted by EM batched across replicates.

Truth: ``truth_components`` equal-weight Gaussians with covariance truth_std^2 I, evenly
spaced on a circle of ``truth_radius`` (a line in 1-D). The model has ``components``
components and is fitted by expectation-maximization on all replicates at once; each
replicate stops at its own convergence (mean log-likelihood change below ``tol``), so a
replicate's fit never depends on which others share its batch.

Initialization: k-means++ seeding and 10 Lloyd steps at generation 0 (as scikit-learn's
default ``init_params="kmeans"``); later generations start from the previous generation's
fit (``warm_start``), which converges in a few steps because one generation moves the
distribution only slightly. Sampling draws from our own per-replicate streams; we do not
use scikit-learn's ``GaussianMixture.sample``, which rebuilds its generator from
``random_state`` on every call and so would reuse the same noise each generation.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import UserError
from ..provenance import REAL, SYNTHETIC, Samples
from ..randomness import Stream
from .base import Family, Sampling, register
from .mixture import Mixture, broadcast, logsumexp, ring


@dataclass(frozen=True)
class GMMParams:
    """dim, components: the model. truth_components, truth_radius, truth_std: the truth.
    max_iter, tol, reg_covar: EM (scikit-learn's defaults). warm_start: start each
    generation's EM from the previous fit. alive_threshold: weight above which a component
    counts as alive. n_eval: held-out real points for Monte Carlo metrics."""

    dim: int = 2
    components: int = 8
    truth_components: int = 8
    truth_radius: float = 4.0
    truth_std: float = 0.5
    max_iter: int = 100
    tol: float = 1e-3
    reg_covar: float = 1e-6
    warm_start: bool = True
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
    ``log_likelihood_`` (R,) mean training log-likelihood at the fitted parameters."""

    def __init__(self, mixture: Mixture, n_iter: np.ndarray, log_likelihood: np.ndarray) -> None:
        self.mixture = mixture
        self.n_iter_ = n_iter
        self.log_likelihood_ = log_likelihood

    def moments(self) -> tuple[np.ndarray, np.ndarray]:
        """(R, d) mean and (R, d, d) covariance of the fitted distribution."""
        return self.mixture.mean(), self.mixture.cov()

    def log_prob(self, x: np.ndarray) -> np.ndarray:
        return self.mixture.logpdf(x)


def _pick(cum: np.ndarray, u: np.ndarray) -> np.ndarray:
    """Row-wise inverse-CDF lookup: for cum (R, N) nondecreasing and u (R,) in [0, 1)."""
    r, n = cum.shape
    total = cum[:, -1:]
    flat = total[:, 0] <= 0  # all distances zero (collapsed data): pick uniformly
    if flat.any():
        cum = cum.copy()
        cum[flat] = np.arange(1, n + 1)
        total = cum[:, -1:]
    offsets = np.arange(r)[:, None]
    idx = np.searchsorted((cum / total + offsets).ravel(), u + offsets[:, 0], side="right")
    return np.minimum(idx - offsets[:, 0] * n, n - 1)


def kmeans_init(x: np.ndarray, k: int, stream: Stream, n_lloyd: int = 10) -> np.ndarray:
    """(R, k) one-hot labels from k-means++ seeding plus Lloyd steps, per replicate."""
    r, n, _ = x.shape
    rows = np.arange(r)
    u = stream.uniform((k,))
    centers = np.empty((r, k, x.shape[2]))
    centers[:, 0] = x[rows, np.minimum((u[:, 0] * n).astype(np.int64), n - 1)]
    d2 = ((x - centers[:, :1]) ** 2).sum(-1)
    for j in range(1, k):
        centers[:, j] = x[rows, _pick(np.cumsum(d2, axis=1), u[:, j])]
        d2 = np.minimum(d2, ((x - centers[:, j : j + 1]) ** 2).sum(-1))
    for _ in range(n_lloyd):
        dist = ((x[:, :, None, :] - centers[:, None]) ** 2).sum(-1)   # (R, N, k)
        onehot = np.eye(k)[dist.argmin(-1)]                           # (R, N, k)
        counts = onehot.sum(1)                                         # (R, k)
        sums = np.einsum("rnk,rnd->rkd", onehot, x)
        filled = counts > 0
        centers[filled] = sums[filled] / counts[filled][:, None]
    return np.transpose(onehot, (0, 2, 1))                            # (R, k, N)


def m_step(x: np.ndarray, resp: np.ndarray, reg_covar: float) -> Mixture:
    """Maximum-likelihood mixture for data x (R, N, d) and responsibilities resp (R, K, N)."""
    nk = resp.sum(-1) + 10 * np.finfo(float).eps                      # (R, K)
    means = (resp @ x) / nk[:, :, None]                               # (R, K, d)
    diff = x[:, None] - means[:, :, None]                             # (R, K, N, d)
    covs = np.swapaxes(resp[..., None] * diff, -1, -2) @ diff / nk[:, :, None, None]
    covs += reg_covar * np.eye(x.shape[2])
    return Mixture(nk / nk.sum(-1, keepdims=True), means, covs)


def e_step(x: np.ndarray, mix: Mixture) -> tuple[np.ndarray, np.ndarray]:
    """(R, K, N) responsibilities and (R,) mean log-likelihood of x under mix."""
    weighted = mix.component_logpdf(x) + np.log(mix.weights)[:, :, None]
    norm = logsumexp(weighted, axis=1)                                # (R, N)
    return np.exp(weighted - norm[:, None]), norm.mean(-1)


def fit_em(x: np.ndarray, k: int, init: Mixture | None, stream: Stream, max_iter: int,
           tol: float, reg_covar: float) -> GMMModel:
    """Batched EM. x: (R, N, d). init: a starting mixture per replicate, or None for k-means."""
    r = x.shape[0]
    if init is None:
        mix = m_step(x, kmeans_init(x, k, stream), reg_covar)
    else:
        mix = Mixture(init.weights.copy(), init.means.copy(), init.covs.copy())
    previous = np.full(r, -np.inf)
    loglik = np.full(r, -np.inf)
    n_iter = np.zeros(r, dtype=np.int64)
    active = np.arange(r)
    for _ in range(max_iter):
        sub = Mixture(mix.weights[active], mix.means[active], mix.covs[active])
        resp, ll = e_step(x[active], sub)
        new = m_step(x[active], resp, reg_covar)
        mix.weights[active], mix.means[active], mix.covs[active] = new.weights, new.means, new.covs
        n_iter[active] += 1
        loglik[active] = ll
        done = np.abs(ll - previous[active]) < tol
        previous[active] = ll
        active = active[~done]
        if active.size == 0:
            break
    return GMMModel(mix, n_iter, loglik)


@register
class GMM(Family):
    name = "gmm"
    description = "d-dim Gaussian mixture fitted by batched EM (Shumailov et al. 2024's GMM setting)"
    Params = GMMParams
    default_n_samples = 1000

    def validate(self, n_samples: int) -> None:
        super().validate(n_samples)
        if n_samples < self.params.components:
            raise UserError(
                f"n_samples ({n_samples}) must be at least params.components ({self.params.components})")

    def bytes_per_replicate(self, max_train: int) -> int:
        k, d = self.params.components, self.params.dim
        return 8 * max_train * (6 * k * d + 4 * k + 4 * d) + 8 * self.params.n_eval * (k + d)

    def truth(self) -> Mixture:
        p = self.params
        return ring(p.dim, p.truth_components, p.truth_radius, p.truth_std)

    def truth_model(self) -> GMMModel:
        return GMMModel(self.truth(), np.zeros(1, dtype=np.int64), np.zeros(1))

    def draw_real(self, n: int, generation: int, stream: Stream, stats: bool) -> Samples:
        x = broadcast(self.truth(), stream.n_replicates).sample(n, stream)
        return Samples.made(x, REAL, generation)

    def fit(self, data: Samples, previous: GMMModel | None, stream: Stream) -> GMMModel:
        p = self.params
        init = previous.mixture if (previous is not None and p.warm_start) else None
        return fit_em(data.values, p.components, init, stream, p.max_iter, p.tol, p.reg_covar)

    def sample(self, model: GMMModel, n: int, generation: int, stream: Stream,
               sampling: Sampling, stats: bool) -> Samples:
        x = model.mixture.sample(n, stream, sampling.temperature, sampling.truncation)
        return Samples.made(x, SYNTHETIC, generation)
