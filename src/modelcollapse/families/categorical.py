"""The categorical family: K outcomes, modelled by the empirical distribution.

This is the "memorizer" of Dohmatob, Feng, Yang, Charton and Kempe (2024, "A Tale of Tails"): the model
is the vector of observed frequencies, so an outcome that is not drawn in one generation is
lost forever. Truth: uniform, or Zipf with p_i proportional to i^-beta.

Exact sufficient statistics: a sample of size M enters the fit only through its counts,
multinomial(M, q). With ``sufficient_stats`` on, the loop draws the counts directly, and
policies add counts, which is exact for replace, accumulate and fresh-real mixing.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

from ..capabilities import HasProbabilities
from ..errors import UserError
from ..batches import REAL, SYNTHETIC, Samples
from ..randomness import Stream
from .base import Family, Sampling, register


@dataclass(frozen=True)
class CategoricalParams:
    """n_outcomes: K >= 2. truth: 'zipf' (p_i ~ i^-zipf_beta) or 'uniform'.
    hutter_T: the training size T in the hutter_error metric (0 means n_samples).
    top_k: the sampler keeps the model's k most likely outcomes (ties: the lower index) and
    renormalizes, before any top-p ``truncation``: the rank-k tail cut of Dohmatob, Feng,
    Yang, Charton and Kempe 2024 ("A tale of tails"); unset or 0: no cut."""

    n_outcomes: int = 1000
    truth: Literal["zipf", "uniform"] = "zipf"
    zipf_beta: float = 1.5
    hutter_T: int = 0
    top_k: int | None = None   # unset is not stored: existing cells keep their keys

    def __post_init__(self) -> None:
        if self.n_outcomes < 2:
            raise UserError(f"params.n_outcomes must be >= 2; got {self.n_outcomes}")
        if not self.zipf_beta > 0:
            raise UserError(f"params.zipf_beta must be > 0; got {self.zipf_beta}")
        if self.hutter_T < 0:
            raise UserError(f"params.hutter_T must be >= 0; got {self.hutter_T}")
        if self.top_k is not None and self.top_k < 0:
            raise UserError(f"params.top_k must be >= 0 (0: no cut); got {self.top_k}")


def zipf_probs(n_outcomes: int, beta: float) -> np.ndarray:
    """(K,) p_i proportional to i^-beta, i = 1..K."""
    w = np.arange(1, n_outcomes + 1, dtype=float) ** -beta
    return w / w.sum()


@dataclass
class CategoricalStats:
    """Counts (R, K) of R samples of size ``count``; ``n_real`` of them are real data."""

    counts: np.ndarray
    count: int
    n_real: int

    @property
    def size(self) -> int:
        return self.count

    def concat(self, other: "CategoricalStats") -> "CategoricalStats":
        return CategoricalStats(self.counts + other.counts, self.count + other.count,
                                self.n_real + other.n_real)

    def subsample(self, m: int, stream: Stream) -> "CategoricalStats":
        raise NotImplementedError("counts cannot be subsampled exactly here")

    def real_share(self) -> np.ndarray:
        return np.full(self.counts.shape[0], self.n_real / self.count)


class CategoricalModel:
    """Fitted empirical distributions: probs_ (R, K)."""

    def __init__(self, probs: np.ndarray) -> None:
        self.probs_ = probs


def top_k_cut(q: np.ndarray, k: int) -> np.ndarray:
    """(R, K) q with all but its k largest entries per row set to 0 (ties: the lower index
    is kept), renormalized. A row with at most k non-zero entries is returned unchanged."""
    if k >= q.shape[1]:
        return q
    order = np.argsort(-q, axis=1, kind="stable")
    keep = np.zeros(q.shape, dtype=bool)
    np.put_along_axis(keep, order[:, :k], True, axis=1)
    cut = np.where(keep, q, 0.0)
    return cut / cut.sum(axis=1, keepdims=True)


def biased(probs: np.ndarray, sampling: Sampling, top_k: int | None = None) -> np.ndarray:
    """(R, K) the sampling distribution: probs^(1/temperature) renormalized, then the
    ``top_k`` most likely outcomes (unset or 0: all), then the top-p nucleus covering
    ``truncation`` of the mass, renormalized."""
    q = probs
    if sampling.temperature != 1.0:
        with np.errstate(divide="ignore"):
            logq = np.log(q) / sampling.temperature
        q = np.exp(logq - logq.max(axis=1, keepdims=True))
        q /= q.sum(axis=1, keepdims=True)
    if top_k:
        q = top_k_cut(q, top_k)
    if sampling.truncation < 1.0:
        order = np.argsort(-q, axis=1, kind="stable")
        sorted_q = np.take_along_axis(q, order, axis=1)
        before = np.cumsum(sorted_q, axis=1) - sorted_q   # mass strictly above each outcome
        keep_sorted = before < sampling.truncation
        keep = np.empty_like(keep_sorted)
        np.put_along_axis(keep, order, keep_sorted, axis=1)
        q = np.where(keep, q, 0.0)
        q /= q.sum(axis=1, keepdims=True)
    return q


def counts_of(values: np.ndarray, k: int) -> np.ndarray:
    """(R, K) counts of outcomes in values (R, N), by one bincount over offset codes."""
    r = values.shape[0]
    codes = values + (np.arange(r, dtype=np.int64) * k)[:, None]
    return np.bincount(codes.ravel(), minlength=r * k).reshape(r, k)


def inverse_cdf(probs: np.ndarray, u: np.ndarray) -> np.ndarray:
    """(R, n) outcomes with probabilities probs (R, K) from uniforms u (R, n)."""
    r, k = probs.shape
    cum = np.cumsum(probs, axis=1)
    cum /= cum[:, -1:]
    offsets = np.arange(r)[:, None]
    idx = np.searchsorted((cum + offsets).ravel(), (u + offsets).ravel(), side="right")
    return np.minimum(idx.reshape(u.shape) - offsets * k, k - 1).astype(np.int32)


@register
class Categorical(Family, HasProbabilities):
    name = "categorical"
    overview = ('support_size', 'entropy', 'hutter_error')   # the report's headline panels
    description = "K outcomes (uniform or Zipf truth) modelled by the empirical distribution (Dohmatob, Feng, Yang, Charton and Kempe 2024)"
    Params = CategoricalParams
    state_classes = (CategoricalModel, CategoricalStats)   # models and batches saved as data (--extend resumes)
    default_n_samples = 1000

    def stats_supported(self, sampling: Sampling, min_size: int) -> bool:
        return True

    def bytes_per_replicate(self, max_train: int) -> int:
        return 64 * self.params.n_outcomes + 16 * max_train

    def truth_probs(self) -> np.ndarray:
        p = self.params
        if p.truth == "uniform":
            return np.full(p.n_outcomes, 1.0 / p.n_outcomes)
        return zipf_probs(p.n_outcomes, p.zipf_beta)

    def truth_model(self) -> CategoricalModel:
        return CategoricalModel(self.truth_probs()[None])

    def _draw(self, probs: np.ndarray, n: int, stream: Stream, stats: bool, source: int,
              generation: int):
        if stats:
            gens = stream.generators("multinomial")
            counts = np.stack([g.multinomial(n, p) for g, p in zip(gens, probs)])
            return CategoricalStats(counts, n, n if source == REAL else 0)
        return Samples.made(inverse_cdf(probs, stream.uniform((n,))), source, generation)

    def draw_real(self, n: int, generation: int, stream: Stream, stats: bool):
        probs = np.broadcast_to(self.truth_probs(), (stream.n_replicates, self.params.n_outcomes))
        return self._draw(probs, n, stream, stats, REAL, generation)

    def fit(self, data, previous, stream: Stream) -> CategoricalModel:
        if isinstance(data, CategoricalStats):
            counts, n = data.counts, data.count
        else:
            counts, n = counts_of(data.values, self.params.n_outcomes), data.size
        return CategoricalModel(counts / n)

    def sample(self, model: CategoricalModel, n: int, generation: int, stream: Stream,
               sampling: Sampling, stats: bool):
        return self._draw(biased(model.probs_, sampling, self.params.top_k), n, stream, stats,
                          SYNTHETIC, generation)
