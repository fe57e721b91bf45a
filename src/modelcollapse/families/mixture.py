"""Batched Gaussian mixtures: the common form of the Gaussian, GMM and KDE families.

A :class:`Mixture` holds R independent mixtures of K components in d dimensions. The
Gaussian family is K = 1, a KDE is K = N kernels sharing one covariance. Metrics that have
closed forms for mixtures (moments, marginal tail mass, L2 distance) are written once here.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.special import ndtr

from ..randomness import Stream
from .base import standard_noise

LOG_2PI = np.log(2.0 * np.pi)


def logsumexp(a: np.ndarray, axis: int) -> np.ndarray:
    """log(sum(exp(a))) along ``axis``, stable; all minus-infinity gives minus infinity."""
    top = np.max(a, axis=axis, keepdims=True)
    top = np.where(np.isfinite(top), top, 0.0)
    with np.errstate(divide="ignore"):
        return np.log(np.exp(a - top).sum(axis=axis)) + np.squeeze(top, axis=axis)


def safe_cholesky(cov: np.ndarray) -> np.ndarray:
    """Cholesky factors of (..., d, d) covariances; collapsed ones get a tiny ridge so that
    a chain whose variance has underflowed still yields a (degenerate) model, not an error."""
    if cov.shape[-1] == 1:
        return np.sqrt(np.maximum(cov, 0.0))
    try:
        return np.linalg.cholesky(cov)
    except np.linalg.LinAlgError:
        d = cov.shape[-1]
        scale = np.maximum(np.trace(cov, axis1=-2, axis2=-1) / d, 1e-300)[..., None, None]
        return np.linalg.cholesky(cov + 1e-12 * scale * np.eye(d))


@dataclass
class Mixture:
    """R mixtures of K Gaussian components in d dimensions.

    weights : (R, K), rows sum to 1.
    means : (R, K, d).
    covs : (R, K, d, d), or (R, 1, d, d) when all components share one covariance (KDE).
    """

    weights: np.ndarray
    means: np.ndarray
    covs: np.ndarray

    @property
    def dim(self) -> int:
        return self.means.shape[-1]

    @property
    def shared(self) -> bool:
        return self.covs.shape[1] == 1 and self.means.shape[1] != 1

    def mean(self) -> np.ndarray:
        """(R, d) the mixture's mean."""
        return np.einsum("rk,rkd->rd", self.weights, self.means)

    def cov(self) -> np.ndarray:
        """(R, d, d) the mixture's covariance (within plus between components)."""
        mu = self.mean()
        second = np.einsum("rk,rki,rkj->rij", self.weights, self.means, self.means)
        within = np.einsum("rk,rkij->rij", self.weights, np.broadcast_to(
            self.covs, self.means.shape[:2] + self.covs.shape[-2:]))
        return within + second - mu[:, :, None] * mu[:, None, :]

    def component_logpdf(self, x: np.ndarray) -> np.ndarray:
        """(R, K, M) log density of each component at x (R or 1, M, d); K must be small."""
        chol = safe_cholesky(self.covs)                         # (R, K', d, d)
        inv = np.linalg.inv(chol)
        diff = x[:, None, :, :] - self.means[:, :, None, :]     # (R, K, M, d)
        y = diff @ np.swapaxes(inv, -1, -2)                     # (R, K, M, d), BLAS
        logdet = 2.0 * np.log(np.diagonal(chol, axis1=-2, axis2=-1)).sum(-1)  # (R, K')
        maha = np.einsum("rkmi,rkmi->rkm", y, y)
        return -0.5 * (maha + self.dim * LOG_2PI + logdet[:, :, None])

    def logpdf(self, x: np.ndarray, block: int = 1 << 22) -> np.ndarray:
        """(R, M) log density at points x (R or 1, M, d), in blocks to bound memory."""
        r = self.means.shape[0]
        m = x.shape[1]
        out = np.empty((r, m))
        k = self.means.shape[1]
        step = max(1, block // max(1, r * k))
        for lo in range(0, m, step):
            xs = x[:, lo : lo + step]
            out[:, lo : lo + step] = (
                self._shared_logpdf(xs) if self.shared else
                logsumexp(self.component_logpdf(xs) + np.log(self.weights)[:, :, None], axis=1)
            )
        return out

    def _shared_logpdf(self, x: np.ndarray) -> np.ndarray:
        # Whiten with the shared Cholesky factor, then squared distances by one matmul.
        chol = safe_cholesky(self.covs[:, 0])                   # (R, d, d)
        inv = np.linalg.inv(chol)
        xw = np.einsum("rij,rmj->rmi", inv, np.broadcast_to(x, (self.means.shape[0],) + x.shape[1:]))
        cw = np.einsum("rij,rkj->rki", inv, self.means)
        sq = ((xw**2).sum(-1)[:, :, None] + (cw**2).sum(-1)[:, None, :]
              - 2.0 * np.einsum("rmi,rki->rmk", xw, cw))
        np.maximum(sq, 0.0, out=sq)
        logdet = 2.0 * np.log(np.diagonal(chol, axis1=-2, axis2=-1)).sum(-1)
        logw = np.log(self.weights)[:, None, :]
        return logsumexp(logw - 0.5 * sq, axis=2) - 0.5 * (self.dim * LOG_2PI + logdet[:, None])

    def marginal_tail(self, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
        """(R, d) mass of each coordinate's marginal below ``lo`` or above ``hi`` ((d,) each)."""
        sd = np.sqrt(np.diagonal(self.covs, axis1=-2, axis2=-1))  # (R, K', d)
        below = ndtr((lo - self.means) / sd)
        above = ndtr((self.means - hi) / sd)
        return np.einsum("rk,rkd->rd", self.weights, below + above)

    def sample(self, n: int, stream: Stream, temperature: float = 1.0,
               truncation: float = 1.0) -> np.ndarray:
        """(R, n, d) draws: a component by its weight, then its Gaussian with the spread
        scaled by ``temperature`` and the standard noise truncated to the central mass."""
        r, k, d = self.means.shape
        z = standard_noise(stream, (n, d), truncation) * temperature
        chol = safe_cholesky(self.covs)
        if k == 1:
            return self.means[:, :1] + np.einsum("rij,rnj->rni", chol[:, 0], z)
        u = stream.uniform((n,))
        cum = np.cumsum(self.weights, axis=1)
        cum[:, -1] = 1.0
        # One vectorized search for all replicates: offset row r's values by r.
        offsets = np.arange(r)[:, None]
        labels = np.searchsorted((cum + offsets).ravel(), (u + offsets).ravel(), side="right")
        labels = labels.reshape(r, n) - offsets * k
        np.minimum(labels, k - 1, out=labels)
        centers = np.take_along_axis(self.means, labels[:, :, None], axis=1)
        if self.shared:
            return centers + np.einsum("rij,rnj->rni", chol[:, 0], z)
        factors = np.take_along_axis(chol, labels[:, :, None, None], axis=1)
        return centers + np.einsum("rnij,rnj->rni", factors, z)


def l2_cross(a: Mixture, b: Mixture) -> np.ndarray:
    """(R,) the integral of a(x) b(x) dx: sum_ij wa_i wb_j N(mu_a_i; mu_b_j, S_a_i + S_b_j)."""
    s = a.covs[:, :, None] + b.covs[:, None, :]                 # (R, Ka, Kb, d, d)
    diff = a.means[:, :, None, :] - b.means[:, None, :, :]      # (R, Ka, Kb, d)
    chol = safe_cholesky(s)
    y = np.linalg.solve(chol, diff[..., None])[..., 0]
    logdet = 2.0 * np.log(np.diagonal(chol, axis1=-2, axis2=-1)).sum(-1)
    dens = np.exp(-0.5 * ((y * y).sum(-1) + a.dim * LOG_2PI + logdet))
    return np.einsum("ra,rb,rab->r", a.weights, b.weights, dens)


def l2_distance(a: Mixture, b: Mixture) -> np.ndarray:
    """(R,) the L2 distance sqrt(integral (a - b)^2) between mixtures, in closed form."""
    sq = l2_cross(a, a) - 2.0 * l2_cross(a, b) + l2_cross(b, b)
    return np.sqrt(np.maximum(sq, 0.0))


def broadcast(m: Mixture, r: int) -> Mixture:
    """Repeat a one-replicate mixture (e.g. the truth) over r replicates (views, no copies)."""
    return Mixture(*(np.broadcast_to(a, (r,) + a.shape[1:]) for a in (m.weights, m.means, m.covs)))


def ring(dim: int, components: int, radius: float, std: float) -> Mixture:
    """A one-replicate mixture of equal-weight components with covariance std^2 I, their
    means evenly spaced on a circle of ``radius`` in the first two coordinates (on a line
    from -radius to radius when dim is 1)."""
    means = np.zeros((components, dim))
    if dim == 1:
        means[:, 0] = np.linspace(-radius, radius, components) if components > 1 else 0.0
    else:
        angle = 2.0 * np.pi * np.arange(components) / components
        means[:, 0], means[:, 1] = radius * np.cos(angle), radius * np.sin(angle)
    covs = np.broadcast_to(std**2 * np.eye(dim), (components, dim, dim)).copy()
    return Mixture(np.full((1, components), 1.0 / components), means[None], covs[None])
