"""Training data with provenance: every datum knows its source and the generation that made it.

Analytic families hold the data of R replicates (independent chains) in one array, so a
training set is a rectangular batch: ``values`` of shape (R, N, *event) plus, per datum,
``source`` (``REAL`` or ``SYNTHETIC``) and ``generation``. For real data, ``generation`` is
the generation whose training set first received it (0 for the original pool); for
synthetic data it is the generation of the model that sampled it. Policies and metrics
(the share of real data, a detector's precision and recall) read these arrays; nothing
about provenance is assumed.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .randomness import Stream

REAL, SYNTHETIC = 0, 1


@dataclass
class Samples:
    """An explicit batch of data for R replicates.

    Attributes
    ----------
    values : (R, N, *event) the data (floats for continuous families, ints for categorical).
    source : (R, N) int8, ``REAL`` or ``SYNTHETIC``.
    generation : (R, N) int32, see the module docstring.
    """

    values: np.ndarray
    source: np.ndarray
    generation: np.ndarray

    @classmethod
    def made(cls, values: np.ndarray, source: int, generation: int) -> "Samples":
        """Wrap ``values`` (R, N, ...) that all share one source and generation."""
        r, n = values.shape[:2]
        return cls(
            values,
            np.full((r, n), source, dtype=np.int8),
            np.full((r, n), generation, dtype=np.int32),
        )

    @property
    def size(self) -> int:
        """N, the number of data per replicate."""
        return self.values.shape[1]

    def concat(self, other: "Samples") -> "Samples":
        """Both batches' data, replicate by replicate: (R, N1 + N2, ...)."""
        return Samples(
            np.concatenate([self.values, other.values], axis=1),
            np.concatenate([self.source, other.source], axis=1),
            np.concatenate([self.generation, other.generation], axis=1),
        )

    def take(self, index: np.ndarray) -> "Samples":
        """Select ``index`` (R, M) data per replicate."""
        event = (1,) * (self.values.ndim - 2)
        return Samples(
            np.take_along_axis(self.values, index.reshape(index.shape + event), axis=1),
            np.take_along_axis(self.source, index, axis=1),
            np.take_along_axis(self.generation, index, axis=1),
        )

    def subsample(self, m: int, stream: Stream) -> "Samples":
        """A uniformly random subset of ``m`` data per replicate, without replacement."""
        if m >= self.size:
            return self
        return self.take(random_subset(self.size, m, stream))

    def real_share(self) -> np.ndarray:
        """(R,) the share of real data in each replicate's batch."""
        return (self.source == REAL).mean(axis=1)


def random_subset(size: int, m: int, stream: Stream) -> np.ndarray:
    """(R, m) indices of a uniformly random subset of ``m`` of ``size`` items per replicate."""
    if m > size:
        raise ValueError(f"a subset of {m} items out of {size} was asked for")
    # Direct per-replicate draws: the pool's size changes from call to call, which the
    # shape-keyed buffers of Stream are not made for.
    keys = np.stack([g.random(size) for g in stream.generators("subsample")])
    return np.argsort(keys, axis=1, kind="stable")[:, :m]


@dataclass
class Documents:
    """A batch of token documents for R replicates, with the same provenance as
    :class:`Samples`. Text is not rectangular, and neither is a curated batch (a filter
    keeps a different number of documents in each chain), so every replicate holds its
    own lists.

    Attributes
    ----------
    docs : R lists of N_r arrays (int32 token ids, no ``<s>`` / ``</s>``).
    source : R arrays (N_r,) int8, ``REAL`` or ``SYNTHETIC``.
    generation : R arrays (N_r,) int32.
    curation : when a curation policy built the batch, name -> (R,) measures of that step
        (dropped share, drops per reason, a detector's precision / recall / FPR).
    """

    docs: list[list[np.ndarray]]
    source: list[np.ndarray]
    generation: list[np.ndarray]
    curation: dict[str, np.ndarray] | None = None  # per-replicate (R,) measures of the filter that built it

    @classmethod
    def made(cls, docs: list[list[np.ndarray]], source: int, generation: int) -> "Documents":
        return cls(docs, [np.full(len(d), source, dtype=np.int8) for d in docs],
                   [np.full(len(d), generation, dtype=np.int32) for d in docs])

    @property
    def sizes(self) -> np.ndarray:
        """(R,) documents per replicate."""
        return np.array([len(d) for d in self.docs], dtype=np.int64)

    @property
    def size(self) -> int:
        """The smallest replicate's number of documents."""
        return int(self.sizes.min()) if self.docs else 0

    def concat(self, other: "Documents") -> "Documents":
        return Documents([a + b for a, b in zip(self.docs, other.docs)],
                         [np.concatenate([a, b]) for a, b in zip(self.source, other.source)],
                         [np.concatenate([a, b]) for a, b in zip(self.generation, other.generation)])

    def select(self, index: list[np.ndarray]) -> "Documents":
        """Keep ``index[r]`` (positions or a boolean mask) of each replicate's documents."""
        out_docs, src, gen = [], [], []
        for docs, s, g, i in zip(self.docs, self.source, self.generation, index):
            i = np.flatnonzero(i) if i.dtype == bool else i
            out_docs.append([docs[j] for j in i.tolist()])
            src.append(s[i])
            gen.append(g[i])
        return Documents(out_docs, src, gen)

    def take(self, index: np.ndarray) -> "Documents":
        """Select ``index`` (R, M) documents per replicate."""
        return self.select(list(index))

    def subsample(self, m: int, stream: Stream) -> "Documents":
        """A uniformly random subset of ``m`` documents per replicate (all of a replicate's
        documents when it holds ``m`` or fewer)."""
        if m >= self.sizes.max(initial=0):
            return self
        gens = stream.generators("subsample")
        return self.select([np.sort(np.argsort(g.random(n), kind="stable")[:m]) if n > m
                            else np.arange(n) for g, n in zip(gens, self.sizes.tolist())])

    def real_share(self) -> np.ndarray:
        """(R,) the share of real documents in each replicate's batch."""
        return np.array([(s == REAL).mean() if s.size else 0.0 for s in self.source])
