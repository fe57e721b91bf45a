"""The Gaussian kernel density estimate family.

Truth: the same ring of Gaussians as the GMM family. The model is the training data with a
Gaussian kernel of covariance h^2 * S, where S is the training data's covariance (ddof 1)
and h is Scott's factor N^(-1/(d+4)) (``bandwidth="scott"``, scipy's ``gaussian_kde``
default), Silverman's factor (N (d+2) / 4)^(-1/(d+4)), or a fixed number. Sampling picks a
training point uniformly and adds kernel noise, so each generation's spread grows by a
factor (1 + h^2) while fine structure is smoothed away.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

from ..capabilities import HasDensity, HasMoments
from ..errors import UserError
from ..batches import REAL, SYNTHETIC, Samples
from ..randomness import Stream
from .base import Family, Sampling, register
from .gaussian import scatter_of
from .mixture import Mixture, broadcast, ring


@dataclass(frozen=True)
class KDEParams:
    """dim: dimension. bandwidth: 'scott', 'silverman' or a positive factor h.
    truth_components, truth_radius, truth_std: the ring truth. n_eval: held-out real points
    for Monte Carlo metrics."""

    dim: int = 2
    bandwidth: Literal["scott", "silverman"] | float = "scott"
    truth_components: int = 8
    truth_radius: float = 4.0
    truth_std: float = 0.5
    n_eval: int = 1000

    def __post_init__(self) -> None:
        if self.dim < 1 or self.truth_components < 1 or self.n_eval < 1:
            raise UserError("params.dim, params.truth_components and params.n_eval must be >= 1")
        if isinstance(self.bandwidth, float) and not self.bandwidth > 0:
            raise UserError(f"params.bandwidth must be 'scott', 'silverman' or > 0; got {self.bandwidth}")
        if not self.truth_std > 0:
            raise UserError(f"params.truth_std must be > 0; got {self.truth_std}")

    def factor(self, n: int) -> float:
        d = self.dim
        if self.bandwidth == "scott":
            return n ** (-1.0 / (d + 4))
        if self.bandwidth == "silverman":
            return (n * (d + 2) / 4.0) ** (-1.0 / (d + 4))
        return float(self.bandwidth)


class KDEModel:
    """A fitted KDE: points_ (R, N, d) and kernel covariance kernel_cov_ (R, d, d)."""

    def __init__(self, points: np.ndarray, kernel_cov: np.ndarray) -> None:
        self.points_ = points
        self.kernel_cov_ = kernel_cov

    @property
    def mixture(self) -> Mixture:
        r, n, _ = self.points_.shape
        return Mixture(np.full((r, n), 1.0 / n), self.points_, self.kernel_cov_[:, None])

    def moments(self) -> tuple[np.ndarray, np.ndarray]:
        """(R, d) mean and (R, d, d) covariance of the fitted distribution."""
        return self.mixture.mean(), self.mixture.cov()

@register
class KDE(Family, HasMoments, HasDensity):
    name = "kde"
    overview = ('kl_to_truth', 'cov_trace', 'tail_mass')   # the report's headline panels
    description = "Gaussian kernel density estimate, Scott/Silverman bandwidth (Kazdan et al. 2024)"
    Params = KDEParams
    state_classes = (KDEModel,)   # models and batches saved as data (--extend resumes)
    default_n_samples = 500

    def bytes_per_replicate(self, max_train: int) -> int:
        return 8 * max_train * (8 * self.params.dim + 8) + 8 * self.params.n_eval * 64

    def truth_mixture(self) -> Mixture:
        p = self.params
        return ring(p.dim, p.truth_components, p.truth_radius, p.truth_std)

    def draw_real(self, n: int, generation: int, stream: Stream, stats: bool) -> Samples:
        return Samples.made(broadcast(self.truth_mixture(), stream.n_replicates).sample(n, stream), REAL, generation)

    def fit(self, data: Samples, previous: KDEModel | None, stream: Stream) -> KDEModel:
        n = data.size
        _, scatter = scatter_of(data.values)
        return KDEModel(data.values, scatter / (n - 1) * self.params.factor(n) ** 2)

    def sample(self, model: KDEModel, n: int, generation: int, stream: Stream,
               sampling: Sampling, stats: bool) -> Samples:
        x = model.mixture.sample(n, stream, sampling.temperature, sampling.truncation)
        return Samples.made(x, SYNTHETIC, generation)
