"""The linear-regression family of Gerstgrasser et al. (2024) and Dohmatob, Feng and Kempe
(2024, "Model collapse demystified").

y = x . w* + e with x ~ N(0, Sigma) and e ~ N(0, noise^2). Sigma is the identity
(``spectrum = "isotropic"``) or diag(i^-a), i = 1..d (``spectrum = "power_law"``, a =
``spectrum_exponent``). w* is the unit vector 1/sqrt(d). The fit minimizes
||y - Xw||^2 + ridge ||w||^2, scikit-learn's ``Ridge(alpha=ridge, fit_intercept=False)``
(the penalty is not scaled with the number of rows); ridge 0 is the minimum-norm least
squares fit (pseudo-inverse), also when d >= T.

Designs. Generation 0 fits ``n_train`` (T) real rows. Every later generation's model is
fitted on data its predecessor labelled (with fresh label noise): ``n_gen`` (T0) rows per
generation (0: T0 = T). With ``design = "fixed"`` each replicate draws one design D of
max(T, T0) rows and keeps it: real data use rows 0..T-1, generators label rows
max(T,T0)-T0..max(T,T0)-1 (all of them when T0 = T). With ``design = "fresh"`` each
generator labels a new design. A datum is a row [x, y], so batches are (R, N, d + 1); a
batch of size N uses design rows cyclically, which lets ``accumulate`` stack whole designs;
under ``mix`` the real part takes rows 0..k-1 and the synthetic part the last rows, so the
design is used exactly once per generation.

The fit goes through the normal equations: w = (X'X + ridge I)^+ X'y, with the
pseudo-inverse of the d x d Gram matrix taken by an eigendecomposition (min-norm when it is
singular, as pinv(X) y). Where the training set grows by appending rows (``accumulate``)
the Gram matrix and X'y of the previous training set are updated with the new rows only.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import numpy as np

from ..capabilities import HasCoefficients
from ..closed_forms.regression import eigh_small
from ..errors import UserError
from ..batches import REAL, SYNTHETIC, Samples
from ..randomness import Stream
from .base import Family, Sampling, Streams, register, standard_noise


@dataclass(frozen=True)
class RegressionParams:
    """dim: d >= 1 features. n_train: T, the real rows of generation 0 (and the data per
    generation unless n_gen is set). noise: the label noise standard deviation sigma > 0.
    ridge: the penalty alpha >= 0 (0: minimum-norm least squares). spectrum: 'isotropic'
    (Sigma = I) or 'power_law' (Sigma = diag(i^-spectrum_exponent)). n_gen: T0, the rows
    each generator labels for the next generation under replace / accumulate /
    accumulate_subsample (0: T0 = T). design: 'fixed' (one design per replicate) or 'fresh'
    (a new design for every generator's data)."""

    dim: int = 10
    n_train: int = 32
    noise: float = 1.0
    ridge: float = 0.0
    spectrum: Literal["isotropic", "power_law"] = "isotropic"
    spectrum_exponent: float = 1.0
    n_gen: int = 0
    design: Literal["fixed", "fresh"] = "fixed"

    def __post_init__(self) -> None:
        if self.dim < 1:
            raise UserError(f"params.dim must be >= 1; got {self.dim}")
        if self.n_train < 2:
            raise UserError(f"params.n_train must be >= 2; got {self.n_train}")
        if not self.noise > 0:
            raise UserError(f"params.noise must be > 0; got {self.noise}")
        if not self.ridge >= 0:
            raise UserError(f"params.ridge must be >= 0 (0: minimum-norm least squares); got {self.ridge}")
        if not self.spectrum_exponent > 0:
            raise UserError(f"params.spectrum_exponent must be > 0; got {self.spectrum_exponent}")
        if self.n_gen < 0 or self.n_gen == 1:
            raise UserError(f"params.n_gen must be 0 (= n_train) or >= 2; got {self.n_gen}")

    @property
    def t_gen(self) -> int:
        """T0: the rows a generator labels."""
        return self.n_gen or self.n_train

    @property
    def eigenvalues(self) -> np.ndarray:
        """(d,) the diagonal of Sigma."""
        if self.spectrum == "isotropic":
            return np.ones(self.dim)
        return np.arange(1, self.dim + 1, dtype=float) ** -self.spectrum_exponent


def solve_ridge(gram: np.ndarray, xty: np.ndarray, ridge: float) -> np.ndarray:
    """(R, d) w = (gram + ridge I)^+ xty for (R, d, d) Gram matrices and (R, d) X'y.

    The pseudo-inverse drops eigenvalues below d * eps * the largest (those of a rank-
    deficient Gram matrix are rounding noise of that size), which makes ridge 0 the
    minimum-norm solution, as ``pinv(X) @ y``.
    """
    d = gram.shape[-1]
    evals, evecs = eigh_small(gram + ridge * np.eye(d))
    tol = d * np.finfo(float).eps * np.abs(evals).max(axis=-1, keepdims=True) * 10
    inv = np.where(evals > tol, 1.0 / np.where(evals > tol, evals, 1.0), 0.0)
    proj = np.einsum("rji,rj->ri", evecs, xty)     # V' X'y
    return np.einsum("rij,rj->ri", evecs, inv * proj)


class RegressionModel:
    """Fitted coefficients coef_ (R, d), the replicate's fixed design design_ (R, L, d)
    (None with fresh designs), the label noise standard deviation noise (known, as in the
    papers' setting), and the normal-equation state of the training set it was fitted on
    (gram_ (R, d, d), xty_ (R, d), rows_ = its size, values_ = the rows themselves), which
    the next fit extends when its training set starts with those rows."""

    def __init__(self, coef: np.ndarray, design: np.ndarray | None, noise: float,
                 gram: np.ndarray | None = None, xty: np.ndarray | None = None,
                 values: np.ndarray | None = None) -> None:
        self.coef_ = coef
        self.design_ = design
        self.noise = noise
        self.gram_, self.xty_, self.values_ = gram, xty, values


def rows(design: np.ndarray, n: int, start: int = 0) -> np.ndarray:
    """(R, n, d) design rows start..start+n-1, cycling through the design's rows."""
    return design[:, (start + np.arange(n)) % design.shape[1]]


class DesignRows(Samples):
    """Real data laid on the design in row order: a subset of k keeps rows 0..k-1, so that
    mixed with synthetic data on the last rows every design row is used exactly once."""

    def subsample(self, m: int, stream: Stream) -> Samples:
        return Samples(self.values[:, :m], self.source[:, :m], self.generation[:, :m])


def _normal_equations(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(R, d, d) X'X and (R, d) X'y of (R, N, d) rows and (R, N) labels (batched BLAS)."""
    xt = np.swapaxes(x, 1, 2)
    return xt @ x, (xt @ y[:, :, None])[:, :, 0]


@register
class LinearRegression(Family, HasCoefficients):
    name = "linear_regression"
    overview = ('test_error',)   # the report's headline panels
    description = ("ridge / minimum-norm least squares on a Gaussian design (isotropic or power-law "
                   "spectrum, fixed or fresh) with fresh label noise (Gerstgrasser et al. 2024; "
                   "Dohmatob, Feng and Kempe 2024)")
    Params = RegressionParams
    state_classes = (RegressionModel, DesignRows)   # models and batches saved as data (--extend resumes)
    default_n_samples = 32

    def __init__(self, params: RegressionParams, n_samples: int) -> None:
        super().__init__(params, n_samples)
        self._designs: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()   # per chunk

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
        scale = max(1.0, self.params.t_gen / self.params.n_train)
        return int(8 * max_train * scale * (self.params.dim + 1) * 6)

    @property
    def coef(self) -> np.ndarray:
        d = self.params.dim
        return np.full(d, 1.0 / np.sqrt(d))

    def _design(self, stream: Stream, n: int) -> np.ndarray:
        """(R, n, d) rows x ~ N(0, Sigma)."""
        x = stream.normal((n, self.params.dim))
        if self.params.spectrum != "isotropic":
            x = x * np.sqrt(self.params.eigenvalues)
        return x

    def real_source(self, streams: Streams, stats: bool) -> Callable[[int, int], Samples]:
        p = self.params
        # The loop asks for a real source twice per chunk (generation 0, then fresh real data
        # for the policies): both must lay real rows on the same fixed design.
        design = self._designs.get(streams)
        if design is None:
            design = self._designs[streams] = self._design(streams["design"], max(p.n_train, p.t_gen))

        def draw(n: int, generation: int) -> Samples:
            # Generation 0 and a mix's real part use rows 0..n-1; fresh real data under a
            # fresh design come on new rows.
            x = rows(design, n) if p.design == "fixed" or generation == 0 \
                else self._design(streams["design"], n)
            y = x @ self.coef + p.noise * streams["real"].normal((n,))
            made = Samples.made(np.concatenate([x, y[:, :, None]], axis=2), REAL, generation)
            out = DesignRows(made.values, made.source, made.generation)
            out.design = design   # generation 0's fit keeps the whole fixed design
            return out

        return draw

    def resumed(self, streams: Streams, real: Samples) -> None:
        # The fixed design was drawn once from the design stream, which has moved on since:
        # a continued chunk takes it back from its saved real batch.
        design = getattr(real, "design", None)
        if not isinstance(design, np.ndarray) or design.shape[:1] != (len(streams.replicates),):
            from ..chainstate import InvalidState
            raise InvalidState("its real batch holds no design of its replicates")
        self._designs[streams] = design

    def draw_real(self, n: int, generation: int, stream: Stream, stats: bool) -> Samples:
        raise NotImplementedError("linear_regression draws real data through real_source")

    def fit(self, data: Samples, previous: RegressionModel | None, stream: Stream) -> RegressionModel:
        d = self.params.dim
        values = data.values
        n_prev = 0 if previous is None or previous.values_ is None else previous.values_.shape[1]
        if 0 < n_prev < values.shape[1] and np.array_equal(values[:, :n_prev], previous.values_):
            # The training set grew by appending rows (accumulate): update the normal
            # equations with the new rows only. The check reads the old rows once, far
            # cheaper than the d-times-larger Gram product it saves.
            g_new, b_new = _normal_equations(values[:, n_prev:, :d], values[:, n_prev:, d])
            gram, xty = previous.gram_ + g_new, previous.xty_ + b_new
        else:
            gram, xty = _normal_equations(values[:, :, :d], values[:, :, d])
        coef = solve_ridge(gram, xty, self.params.ridge)
        if self.params.design == "fresh":
            design = None
        elif previous is not None:
            design = previous.design_
        else:   # the fixed design, handed over by generation 0's real data
            design = getattr(data, "design", None)
            if design is None:
                design = values[:, : self.params.n_train, :d].copy()
        model = RegressionModel(coef, design, self.params.noise, gram, xty, values)
        if previous is not None:
            previous.values_ = None   # only the newest training set is kept
        return model

    def sample(self, model: RegressionModel, n: int, generation: int, stream: Stream,
               sampling: Sampling, stats: bool) -> Samples:
        p = self.params
        if n == self.n_samples:
            n = p.t_gen    # a whole generation of synthetic data: T0 rows
        elif p.n_gen:
            raise UserError("params.n_gen sets the rows a generator labels under replace, accumulate "
                            "and accumulate_subsample; a mix sets its own sizes (leave n_gen at 0)")
        if p.design == "fresh":
            x = self._design(stream, n)
        else:
            # The last n rows: a mix's real part holds the first rows (see DesignRows).
            design = model.design_
            t = design.shape[1]
            x = rows(design, n, start=(t - n) % t)
        noise = standard_noise(stream, (n,), sampling.truncation)
        y = np.einsum("rnd,rd->rn", x, model.coef_) + sampling.temperature * p.noise * noise
        return Samples.made(np.concatenate([x, y[:, :, None]], axis=2), SYNTHETIC, generation)
