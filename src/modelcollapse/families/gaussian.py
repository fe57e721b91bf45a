"""The Gaussian family: 1-D or d-dimensional, refitted by maximum likelihood or unbiasedly.

Truth: N(truth_mean * 1_d, truth_std^2 * I_d), the standard normal by default.
Fit: mean and covariance with divisor N (``estimator="mle"``, ddof 0) or N - 1
(``"unbiased"``, ddof 1). Shumailov et al. (Nature 2024, Thm 3.1) show that even the
unbiased refit collapses: E[s2] stays put while ln s2 drifts to minus infinity.

Exact sufficient statistics. A Gaussian sample of size M enters the fit only through its
mean, N(mu, Sigma/M), and its scatter matrix, Wishart(M - 1, Sigma), independent of each
other. With ``sufficient_stats`` on, the loop draws these two instead of M points: a
sample of any size costs O(d^2) per replicate. Policies merge statistics exactly (the
parallel-variance formula), so replace, accumulate and fresh-real mixing are all exact.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

from ..capabilities import GaussianClosedForm, HasDensity, HasMoments
from ..errors import UserError
from ..batches import REAL, SYNTHETIC, Samples
from ..randomness import Stream
from .base import Family, Sampling, register, standard_noise
from .mixture import Mixture, safe_cholesky


@dataclass(frozen=True)
class GaussianParams:
    """dim: dimension d >= 1. estimator: 'mle' (ddof 0) or 'unbiased' (ddof 1).
    truth_mean, truth_std: the true distribution N(truth_mean * 1, truth_std^2 I)."""

    dim: int = 1
    estimator: Literal["mle", "unbiased"] = "mle"
    truth_mean: float = 0.0
    truth_std: float = 1.0

    def __post_init__(self) -> None:
        if self.dim < 1:
            raise UserError(f"params.dim must be >= 1; got {self.dim}")
        if not self.truth_std > 0:
            raise UserError(f"params.truth_std must be > 0; got {self.truth_std}")

    @property
    def ddof(self) -> int:
        return 0 if self.estimator == "mle" else 1


@dataclass
class GaussianStats:
    """Exact sufficient statistics of R samples of equal size.

    count : int, the sample size per replicate.
    mean : (R, d) sample means.
    scatter : (R, d, d) sums of outer products of deviations from the mean.
    n_real : int, how many of the count are real data (provenance at the statistic level).
    """

    count: int
    mean: np.ndarray
    scatter: np.ndarray
    n_real: int

    @property
    def size(self) -> int:
        return self.count

    def concat(self, other: "GaussianStats") -> "GaussianStats":
        """Statistics of the union of both samples (Chan et al.'s parallel formula)."""
        n = self.count + other.count
        delta = other.mean - self.mean
        mean = self.mean + delta * (other.count / n)
        scatter = (self.scatter + other.scatter
                   + delta[:, :, None] * delta[:, None, :] * (self.count * other.count / n))
        return GaussianStats(n, mean, scatter, self.n_real + other.n_real)

    def subsample(self, m: int, stream: Stream) -> "GaussianStats":
        raise NotImplementedError("sufficient statistics cannot be subsampled")

    def real_share(self) -> np.ndarray:
        return np.full(self.mean.shape[0], self.n_real / self.count)


class GaussianModel:
    """Fitted Gaussians. mean_ (R, d), cov_ (R, d, d)."""

    def __init__(self, mean: np.ndarray, cov: np.ndarray) -> None:
        self.mean_ = mean
        self.cov_ = cov

    def moments(self) -> tuple[np.ndarray, np.ndarray]:
        """(R, d) mean and (R, d, d) covariance."""
        return self.mean_, self.cov_

    @property
    def mixture(self) -> Mixture:
        r = self.mean_.shape[0]
        return Mixture(np.ones((r, 1)), self.mean_[:, None, :], self.cov_[:, None])

def scatter_of(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(R, d) means and (R, d, d) scatter matrices of values (R, N, d)."""
    mean = values.mean(axis=1)
    centered = values - mean[:, None, :]
    return mean, np.einsum("rni,rnj->rij", centered, centered)


@register
class Gaussian(Family, HasMoments, HasDensity, GaussianClosedForm):
    name = "gaussian"
    overview = ('variance', 'cov_trace', 'kl_to_truth', 'tail_mass')   # the report's headline panels
    description = "1-D or d-dim Gaussian refitted by MLE or unbiasedly (Shumailov et al. 2024)"
    Params = GaussianParams
    state_classes = (GaussianModel, GaussianStats)   # models and batches saved as data (--extend resumes)
    default_n_samples = 100

    def stats_supported(self, sampling: Sampling, min_size: int) -> bool:
        # A truncated sample's mean and scatter have no simple exact law, and the Bartlett
        # factorization needs more data than dimensions.
        return sampling.truncation >= 1.0 and min_size > self.params.dim

    def validate(self, n_samples: int) -> None:
        super().validate(n_samples)
        if n_samples <= self.params.dim:
            raise UserError(f"n_samples ({n_samples}) must exceed params.dim ({self.params.dim}) "
                            f"for a Gaussian fit")

    def bytes_per_replicate(self, max_train: int) -> int:
        d = self.params.dim
        return 8 * max_train * (2 * d + 2) + 4096 * d * d

    @property
    def truth_mean(self) -> np.ndarray:
        return np.full(self.params.dim, float(self.params.truth_mean))

    @property
    def truth_cov(self) -> np.ndarray:
        return self.params.truth_std**2 * np.eye(self.params.dim)

    def truth_model(self) -> GaussianModel:
        return GaussianModel(self.truth_mean[None], self.truth_cov[None])

    def truth_mixture(self):
        return self.truth_model().mixture

    def _draw(self, mean: np.ndarray, chol: np.ndarray, n: int, stream: Stream, scale: float,
              truncation: float, stats: bool, source: int, generation: int):
        """n draws from N(mean, scale^2 chol chol^T) per replicate, as samples or statistics."""
        d = self.params.dim
        if stats:
            if n <= d:
                raise UserError(f"sufficient statistics need samples larger than dim ({d}); got {n}")
            z = stream.normal((d,))
            if d == 1:  # the common case, in a few (R, 1) operations: scatter = s^2 chi2(n-1)
                sd = scale * chol[:, :, 0]
                chi2 = stream.chisquare(n - 1, (1,))
                return GaussianStats(n, mean + sd * z / np.sqrt(n), (sd * sd * chi2)[:, :, None],
                                     n if source == REAL else 0)
            # Bartlett: the Wishart(n-1, I) factor A has chi(n-1-i) diagonal and N(0,1) below.
            diag = np.sqrt(stream.chisquare(n - 1 - np.arange(d), (d,)))
            a = np.zeros((len(z), d, d))
            a[:, np.arange(d), np.arange(d)] = diag
            if d > 1:
                rows, cols = np.tril_indices(d, -1)
                a[:, rows, cols] = stream.normal((len(rows),))
            la = np.einsum("rij,rjk->rik", chol, a) * scale
            return GaussianStats(n, mean + scale * np.einsum("rij,rj->ri", chol, z) / np.sqrt(n),
                                 np.einsum("rik,rjk->rij", la, la), n if source == REAL else 0)
        x = mean[:, None, :] + scale * np.einsum("rij,rnj->rni", chol, standard_noise(stream, (n, d), truncation))
        return Samples.made(x, source, generation)

    def draw_real(self, n: int, generation: int, stream: Stream, stats: bool):
        r = stream.n_replicates
        mean = np.broadcast_to(self.truth_mean, (r, self.params.dim))
        chol = np.broadcast_to(np.linalg.cholesky(self.truth_cov), (r, self.params.dim, self.params.dim))
        return self._draw(mean, chol, n, stream, 1.0, 1.0, stats, REAL, generation)

    def fit(self, data, previous, stream: Stream) -> GaussianModel:
        ddof = self.params.ddof
        if isinstance(data, GaussianStats):
            mean, scatter, n = data.mean, data.scatter, data.count
        else:
            (mean, scatter), n = scatter_of(data.values), data.size
        return GaussianModel(mean, scatter / (n - ddof))

    def sample(self, model: GaussianModel, n: int, generation: int, stream: Stream,
               sampling: Sampling, stats: bool):
        chol = safe_cholesky(model.cov_)
        return self._draw(model.mean_, chol, n, stream, sampling.temperature,
                          sampling.truncation, stats, SYNTHETIC, generation)
