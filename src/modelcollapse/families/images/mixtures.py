"""The numpy image families: a Gaussian mixture in PCA space, and a KDE on the pixels.

``pca_gmm``: per replicate, PCA of the training images (the top ``pca_components``
eigenvectors of their covariance), then a ``components``-component full-covariance Gaussian
mixture fitted by the batched EM of the ``gmm`` family in that space; a sample is drawn from
the mixture and mapped back to pixels (mean + V z). Fast, exact and a classic baseline: each
generation loses the variance outside the kept components and the mixture's own refit error.

``image_kde``: the ``kde`` family's model on pixels: the training images with a Gaussian
kernel of covariance h^2 S (S: the training images' covariance). Scott's factor
N^(-1/(d+4)) is 0.90 in 64 dimensions, a kernel nearly as wide as the data, so the default
bandwidth is the fixed factor 0.25; each generation's spread grows by (1 + h^2) before
clipping to [0, 1].
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

from ...errors import UserError
from ...batches import Samples
from ...randomness import Stream
from ..base import Sampling, register
from ..gaussian import scatter_of
from ..gmm import GMMModel, fit_em
from ..kde import KDEModel
from .base import ImageFamily, ImageParams


@dataclass(frozen=True)
class PCAGMMParams(ImageParams):
    """pca_components: PCA dimensions kept. components: mixture components. max_iter, tol,
    reg_covar: EM (as the gmm family). Plus the image corpus and metric parameters."""

    pca_components: int = 16
    components: int = 10
    max_iter: int = 100
    tol: float = 1e-3
    reg_covar: float = 1e-4

    def __post_init__(self) -> None:
        super().__post_init__()
        for name in ("pca_components", "components", "max_iter"):
            if getattr(self, name) < 1:
                raise UserError(f"params.{name} must be >= 1; got {getattr(self, name)}")
        if not (self.tol > 0 and self.reg_covar > 0):
            raise UserError("params.tol and params.reg_covar must be > 0")


class PCAGMMModel:
    """mean_ (R, D) pixel means, basis_ (R, D, k) principal axes, gmm_ the mixture in PCA space."""

    def __init__(self, mean: np.ndarray, basis: np.ndarray, gmm: GMMModel) -> None:
        self.mean_ = mean
        self.basis_ = basis
        self.gmm_ = gmm


@register
class PCAGMM(ImageFamily):
    name = "pca_gmm"
    description = "Gaussian mixture in PCA space of the images (numpy, batched EM)"
    Params = PCAGMMParams

    def validate(self, n_samples: int) -> None:
        super().validate(n_samples)
        p = self.params
        if p.pca_components > self.data.dim:
            raise UserError(f"params.pca_components = {p.pca_components} exceeds the "
                            f"{self.data.dim} pixels of an image")
        if n_samples < max(p.components, p.pca_components + 1):
            raise UserError(f"n_samples = {n_samples} is too small for {p.components} components "
                            f"in {p.pca_components} PCA dimensions")

    def train(self, data: Samples, previous: PCAGMMModel | None, stream: Stream,
              generation: int) -> PCAGMMModel:
        p = self.params
        x = data.values.astype(np.float64)
        mean, scatter = scatter_of(x)
        _, vecs = np.linalg.eigh(scatter)                        # ascending eigenvalues
        basis = vecs[:, :, ::-1][:, :, :p.pca_components]        # (R, D, k) top axes
        # Fix each axis's sign (largest |entry| positive): eigh's sign is arbitrary and
        # would otherwise depend on LAPACK's path, not on the data.
        top = np.take_along_axis(basis, np.abs(basis).argmax(axis=1)[:, None], axis=1)
        basis = basis * np.sign(top + (top == 0))
        z = np.einsum("rnd,rdk->rnk", x - mean[:, None], basis)
        gmm = fit_em(z, p.components, None, stream, p.max_iter, p.tol, p.reg_covar)
        return PCAGMMModel(mean, basis, gmm)

    def generate(self, model: PCAGMMModel, n: int, generation: int, stream: Stream,
                 sampling: Sampling) -> np.ndarray:
        z = model.gmm_.mixture.sample(n, stream, sampling.temperature, sampling.truncation)
        return model.mean_[:, None] + np.einsum("rnk,rdk->rnd", z, model.basis_)


@dataclass(frozen=True)
class ImageKDEParams(ImageParams):
    """bandwidth: 'scott', 'silverman' or a positive factor h of the kernel covariance
    h^2 S (default 0.25; see the module docstring). Plus the image corpus and metric
    parameters."""

    bandwidth: Literal["scott", "silverman"] | float = 0.25

    def __post_init__(self) -> None:
        super().__post_init__()
        if isinstance(self.bandwidth, float) and not self.bandwidth > 0:
            raise UserError(f"params.bandwidth must be 'scott', 'silverman' or > 0; got {self.bandwidth}")

    def factor(self, n: int, d: int) -> float:
        if self.bandwidth == "scott":
            return n ** (-1.0 / (d + 4))
        if self.bandwidth == "silverman":
            return (n * (d + 2) / 4.0) ** (-1.0 / (d + 4))
        return float(self.bandwidth)


@register
class ImageKDE(ImageFamily):
    name = "image_kde"
    description = "the kde family on images: Gaussian kernels of covariance h^2 S on the pixels"
    Params = ImageKDEParams

    def train(self, data: Samples, previous: KDEModel | None, stream: Stream,
              generation: int) -> KDEModel:
        x = data.values.astype(np.float64)
        n, d = x.shape[1:]
        _, scatter = scatter_of(x)
        return KDEModel(x, scatter / (n - 1) * self.params.factor(n, d) ** 2)

    def generate(self, model: KDEModel, n: int, generation: int, stream: Stream,
                 sampling: Sampling) -> np.ndarray:
        return model.mixture.sample(n, stream, sampling.temperature, sampling.truncation)
