"""The linear-regression family of Gerstgrasser et al. (2024) and Dohmatob et al. (2024).

y = x . w* + e with x ~ N(0, I_d) and e ~ N(0, noise^2). Each replicate draws one design
X (T x d, T = ``n_train``) and keeps it for every generation; each generation relabels the
same design with the current model plus fresh noise, and the next model is the
least-squares (pseudo-inverse) fit. w* is the unit vector 1/sqrt(d) (the test error does
not depend on it). A datum is a row [x, y], so batches are (R, N, d + 1); a batch of size
N uses design rows cyclically, which lets ``accumulate`` stack whole designs; under ``mix``
the real part takes rows 0..k-1 and the synthetic part rows k..T-1, so the design is used
exactly once per generation.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from ..capabilities import HasCoefficients
from ..errors import UserError
from ..provenance import REAL, SYNTHETIC, Samples
from ..randomness import Stream
from .base import Family, Sampling, Streams, register, standard_noise


@dataclass(frozen=True)
class RegressionParams:
    """dim: d >= 1 features. n_train: T, the rows of the fixed design (the data per
    generation). noise: the label noise standard deviation sigma > 0."""

    dim: int = 10
    n_train: int = 32
    noise: float = 1.0

    def __post_init__(self) -> None:
        if self.dim < 1:
            raise UserError(f"params.dim must be >= 1; got {self.dim}")
        if self.n_train < 2:
            raise UserError(f"params.n_train must be >= 2; got {self.n_train}")
        if not self.noise > 0:
            raise UserError(f"params.noise must be > 0; got {self.noise}")


class RegressionModel:
    """Fitted coefficients coef_ (R, d), the replicate's fixed design design_ (R, T, d) and
    the label noise standard deviation noise (known, as in the papers' setting)."""

    def __init__(self, coef: np.ndarray, design: np.ndarray, noise: float) -> None:
        self.coef_ = coef
        self.design_ = design
        self.noise = noise

    def log_prob(self, rows_xy: np.ndarray) -> np.ndarray:
        """(R, M) conditional log-likelihood log N(y; x . w_hat, noise^2) of rows [x, y]
        given as (R or 1, M, d + 1)."""
        d = self.coef_.shape[1]
        resid = rows_xy[..., d] - np.einsum("rmd,rd->rm", rows_xy[..., :d], self.coef_)
        return -0.5 * ((resid / self.noise) ** 2 + np.log(2 * np.pi * self.noise**2))


def rows(design: np.ndarray, n: int, start: int = 0) -> np.ndarray:
    """(R, n, d) design rows start..start+n-1, cycling through the T rows."""
    return design[:, (start + np.arange(n)) % design.shape[1]]


class DesignRows(Samples):
    """Real data laid on the design in row order: a subset of k keeps rows 0..k-1, so that
    mixed with synthetic data on rows k..T-1 every design row is used exactly once."""

    def subsample(self, m: int, stream: Stream) -> Samples:
        return Samples(self.values[:, :m], self.source[:, :m], self.generation[:, :m])


@register
class LinearRegression(Family, HasCoefficients):
    name = "linear_regression"
    overview = ('test_error',)   # the report's headline panels
    description = "least squares on a fixed Gaussian design with fresh label noise (Gerstgrasser et al. 2024)"
    Params = RegressionParams
    default_n_samples = 32

    @classmethod
    def default_samples(cls, params: RegressionParams) -> int:
        return params.n_train

    def validate(self, n_samples: int) -> None:
        super().validate(n_samples)
        if n_samples != self.params.n_train:
            raise UserError(
                f"for linear_regression the data per generation is the design size "
                f"params.n_train ({self.params.n_train}); got n_samples {n_samples}")

    def bytes_per_replicate(self, max_train: int) -> int:
        return 8 * max_train * (self.params.dim + 1) * 6

    @property
    def coef(self) -> np.ndarray:
        d = self.params.dim
        return np.full(d, 1.0 / np.sqrt(d))

    def real_source(self, streams: Streams, stats: bool) -> Callable[[int, int], Samples]:
        design = streams["design"].normal((self.params.n_train, self.params.dim))

        def draw(n: int, generation: int) -> Samples:
            x = rows(design, n)
            y = x @ self.coef + self.params.noise * streams["real"].normal((n,))
            made = Samples.made(np.concatenate([x, y[:, :, None]], axis=2), REAL, generation)
            return DesignRows(made.values, made.source, made.generation)

        return draw

    def draw_real(self, n: int, generation: int, stream: Stream, stats: bool) -> Samples:
        raise NotImplementedError("linear_regression draws real data through real_source")

    def fit(self, data: Samples, previous: RegressionModel | None, stream: Stream) -> RegressionModel:
        d = self.params.dim
        x, y = data.values[:, :, :d], data.values[:, :, d]
        coef = np.einsum("rdn,rn->rd", np.linalg.pinv(x), y)
        # The design is the first T rows of generation 0's (real) training set.
        design = previous.design_ if previous is not None else x[:, : self.params.n_train].copy()
        return RegressionModel(coef, design, self.params.noise)

    def sample(self, model: RegressionModel, n: int, generation: int, stream: Stream,
               sampling: Sampling, stats: bool) -> Samples:
        # The last n rows: a mix's real part holds rows 0..T-n-1 (see DesignRows).
        t = model.design_.shape[1]
        x = rows(model.design_, n, start=(t - n) % t)
        noise = standard_noise(stream, (n,), sampling.truncation)
        y = np.einsum("rnd,rd->rn", x, model.coef_) + sampling.temperature * self.params.noise * noise
        return Samples.made(np.concatenate([x, y[:, :, None]], axis=2), SYNTHETIC, generation)
