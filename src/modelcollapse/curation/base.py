"""Curation blocks in the style of datatrove filters: a block looks at a batch and says, per
document, keep or (drop, reason); :func:`run_chain` runs blocks in order and counts the drops
per reason; :func:`filter_metrics` turns a chain's result and the batch's provenance into
the numbers that go into every generation's metrics (dropped share, a detector's measured
precision, recall and false-positive rate).

>>> result = run_chain([ExactDedup(), DetectorFilter(det)], batch, rng)  # doctest: +SKIP
>>> result.dropped                               # {"exact_duplicate": 3, "detector": 41}
"""

from __future__ import annotations

import numbers
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ..errors import UserError
from ..batches import REAL, SYNTHETIC, Documents


@dataclass
class Batch:
    """One replicate's candidate documents with their provenance.

    Attributes
    ----------
    docs : N 1-D int arrays of token ids (no ``<s>`` / ``</s>``).
    source : (N,) int8, ``REAL`` (0) or ``SYNTHETIC`` (1).
    generation : (N,) int32, see :mod:`modelcollapse.batches`.
    correct : optional (N,) bool, the ground truth of tasks that have one (read by
        :class:`~.selection.Verifier`).
    """

    docs: list[np.ndarray]
    source: np.ndarray
    generation: np.ndarray
    correct: np.ndarray | None = None

    def __post_init__(self) -> None:
        self.docs = list(self.docs)
        self.source = np.asarray(self.source, dtype=np.int8).reshape(-1)
        self.generation = np.asarray(self.generation, dtype=np.int32).reshape(-1)
        n = len(self.docs)
        if self.source.size != n or self.generation.size != n:
            raise UserError(f"a batch needs one source and one generation per document; got "
                            f"{n} documents, {self.source.size} sources and "
                            f"{self.generation.size} generations")
        if not np.isin(self.source, (REAL, SYNTHETIC)).all():
            raise UserError("batch source must hold only REAL (0) or SYNTHETIC (1)")
        if self.correct is not None:
            self.correct = np.asarray(self.correct, dtype=bool).reshape(-1)
            if self.correct.size != n:
                raise UserError(f"batch correct must hold one flag per document ({n}); "
                                f"got {self.correct.size}")

    def __len__(self) -> int:
        return len(self.docs)

    @classmethod
    def of(cls, docs: Sequence[np.ndarray], source: int, generation: int = 0) -> Batch:
        """A batch whose documents all share one source and generation."""
        n = len(docs)
        return cls(list(docs), np.full(n, source, np.int8), np.full(n, generation, np.int32))

    @classmethod
    def from_documents(cls, documents: Documents, replicate: int) -> Batch:
        """Replicate ``replicate`` of a :class:`~modelcollapse.batches.Documents` batch."""
        return cls(documents.docs[replicate], documents.source[replicate],
                   documents.generation[replicate])

    def take(self, index: np.ndarray) -> Batch:
        """The documents at ``index`` (integer positions, or an (N,) bool mask)."""
        index = np.asarray(index)
        if index.dtype == bool:
            index = np.flatnonzero(index)
        return Batch([self.docs[i] for i in index.tolist()], self.source[index],
                     self.generation[index],
                     None if self.correct is None else self.correct[index])


@dataclass
class Decision:
    """What one block decided about a batch of N documents.

    Attributes
    ----------
    keep : (N,) bool.
    reasons : (N,) object array of str: why each dropped document was dropped, ``""`` for
        kept ones.
    scores : optional (N,) the block's per-document number (a detector's statistic, a
        quality score, a dedup cluster id), for inspection.
    flagged : optional (N,) bool, detectors only: the documents the detector called
        synthetic (its positives), from which precision and recall are measured.
    """

    keep: np.ndarray
    reasons: np.ndarray
    scores: np.ndarray | None = None
    flagged: np.ndarray | None = None

    @classmethod
    def drop(cls, drop: np.ndarray, reason: str, scores: np.ndarray | None = None,
             flagged: np.ndarray | None = None) -> Decision:
        """Drop the documents where ``drop`` (N,) is True, all for ``reason``."""
        drop = np.asarray(drop, dtype=bool)
        reasons = np.full(drop.size, "", dtype=object)
        reasons[drop] = reason
        return cls(~drop, reasons, scores, flagged)

    def dropped(self) -> dict[str, int]:
        """The number of dropped documents per reason."""
        return dict(Counter(self.reasons[~self.keep].tolist()))


class Block:
    """A curation step: ``block(batch, rng) -> Decision``.

    Subclasses set ``reason`` (or override :meth:`reasons` when they drop for several) and
    implement ``__call__``. Deterministic blocks ignore ``rng``; stochastic ones draw from it
    only (never from a global seed), so a chain is reproducible from the loop's seed.
    """

    reason: str = "dropped"

    def __call__(self, batch: Batch, rng: np.random.Generator) -> Decision:
        raise NotImplementedError

    def reasons(self) -> tuple[str, ...]:
        """Every reason this block may give (each gets a count, 0 included, in :func:`chain`)."""
        return (self.reason,)

    def as_record(self) -> dict:
        """The block's parameters, to be stored with every result."""
        params = {k: v for k, v in vars(self).items()
                  if not k.startswith("_") and not k.endswith("_")
                  and isinstance(v, (bool, numbers.Number, str, tuple, type(None)))}
        return {"block": type(self).__name__, **params}


@dataclass
class ChainResult:
    """The outcome of :func:`run_chain` on a batch of N documents.

    keep : (N,) bool, kept by every block. dropped : count per reason (every block's reasons
    present, 0 included, so that metric columns do not come and go between generations).
    flagged / screened : (N,) bool or None (no detector in the chain): the documents a
    detector block called synthetic / the documents that reached a detector block.
    """

    keep: np.ndarray
    dropped: dict[str, int]
    flagged: np.ndarray | None = None
    screened: np.ndarray | None = None


def run_chain(blocks: Sequence[Block], batch: Batch, rng: np.random.Generator) -> ChainResult:
    """Apply ``blocks`` in order, each to the documents the blocks before it kept. A document
    dropped by block k is counted under block k's reason only; once nothing is left the
    remaining blocks are skipped (their counts stay 0)."""
    n = len(batch)
    keep = np.ones(n, bool)
    dropped: dict[str, int] = {}
    for block in blocks:
        for reason in block.reasons():
            dropped.setdefault(reason, 0)
    flagged = screened = None
    for block in blocks:
        idx = np.flatnonzero(keep)
        if idx.size == 0:
            break
        decision = block(batch.take(idx), rng)
        if np.shape(decision.keep) != (idx.size,):
            raise ValueError(f"{type(block).__name__} returned {np.shape(decision.keep)} keep "
                             f"flags for {idx.size} documents")
        keep[idx[~decision.keep]] = False
        for reason, count in decision.dropped().items():
            dropped[reason] = dropped.get(reason, 0) + count
        if decision.flagged is not None:
            if flagged is None:
                flagged, screened = np.zeros(n, bool), np.zeros(n, bool)
            flagged[idx[decision.flagged]] = True
            screened[idx] = True
    return ChainResult(keep, dropped, flagged, screened)


def filter_metrics(batch: Batch, keep: np.ndarray, flagged: np.ndarray | None = None,
                   screened: np.ndarray | None = None) -> dict[str, float]:
    """Per-generation curation metrics, measured against the batch's provenance.

    Always: ``dropped_share`` (share of the N documents dropped; 0 for an empty batch) and
    ``kept_synthetic_share`` (share of synthetic documents among those kept; 0 when none is
    kept). With ``flagged`` (N,) bool, a detector's positives (restricted to ``screened``
    (N,) bool when given: the documents the detector actually saw):

    - ``detector_precision`` = |flagged & synthetic| / |flagged|, defined as **1.0 when
      nothing is flagged** (no positive was wrong; a detector that flags nothing shows its
      failure in recall);
    - ``detector_recall`` = |flagged & synthetic| / |synthetic|, defined as **1.0 when there
      is no synthetic document** (nothing was missed);
    - ``detector_fpr`` = |flagged & real| / |real|, defined as **0.0 when there is no real
      document** (no real document was wrongly flagged);
    - ``detector_flagged_share`` = |flagged| / |screened|.

    The conventions keep every value finite: the loop refuses NaN.
    """
    keep = np.asarray(keep, dtype=bool)
    n = len(batch)
    if keep.shape != (n,):
        raise ValueError(f"keep has shape {keep.shape}; the batch has {n} documents")
    synthetic = batch.source == SYNTHETIC
    kept = int(keep.sum())
    out = {"dropped_share": 1.0 - kept / n if n else 0.0,
           "kept_synthetic_share": float(synthetic[keep].sum()) / kept if kept else 0.0}
    if flagged is None:
        return out
    flagged = np.asarray(flagged, dtype=bool)
    seen = np.ones(n, bool) if screened is None else np.asarray(screened, dtype=bool)
    if flagged.shape != (n,) or seen.shape != (n,):
        raise ValueError(f"flagged and screened must have shape ({n},)")
    pos, syn, real = flagged & seen, synthetic & seen, ~synthetic & seen
    n_pos, n_syn, n_real, n_seen = int(pos.sum()), int(syn.sum()), int(real.sum()), int(seen.sum())
    true_pos = int((pos & syn).sum())
    out["detector_precision"] = true_pos / n_pos if n_pos else 1.0
    out["detector_recall"] = true_pos / n_syn if n_syn else 1.0
    out["detector_fpr"] = int((pos & real).sum()) / n_real if n_real else 0.0
    out["detector_flagged_share"] = n_pos / n_seen if n_seen else 0.0
    return out
