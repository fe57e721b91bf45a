"""One streaming pass over a candidate corpus, in bounded memory.

The candidate is read with :func:`modelcollapse.data.read_documents`, ``chunk_docs``
documents at a time. Per chunk, the documents are tokenized and mapped to the reference
vocabulary, and two kinds of state are updated:

* **sums** (:class:`Tally`): documents, tokens, out-of-vocabulary tokens, copies of the
  reference model's training documents, the head / middle / tail perplexity bucket counts, a
  fine histogram of per-document log-perplexity, detector positives, the AI-share model's
  bin counts, watermark hits. Sums do not depend on the chunking: a corpus read in one chunk
  or in many gives the same numbers;
* a **reservoir sample** (:class:`Reservoir`) of at most ``max_sample_docs`` document
  texts, uniform over the whole corpus (Vitter's algorithm R, seeded), for the statistics
  that need documents: the diversity deltas, near duplicates and embeddings.

Memory is the reservoir plus one chunk plus the fixed-size tallies, whatever the corpus size.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from itertools import islice

import numpy as np

from ..curation import WatermarkDetector
from ..data import Vocabulary, read_documents
from ..lm import UNK
from .occurrence import N_BINS
from .reference import Reference

#: The per-document log-perplexity histogram: bins of LOGPPL_STEP nats on [0, LOGPPL_MAX)
#: (values beyond fall in the last bin; a trigram model's log-perplexity stays well below).
LOGPPL_STEP = 0.005
LOGPPL_MAX = 25.0
LOGPPL_BINS = int(round(LOGPPL_MAX / LOGPPL_STEP))


class Reservoir:
    """A uniform random sample of at most ``capacity`` texts from a stream (algorithm R).

    The i-th text (0-based) replaces slot ``floor(u * (i + 1))`` when that is below
    ``capacity``, ``u`` one uniform per text from ``rng``: one draw per text in stream order,
    so the sample does not depend on how the stream is chunked.
    """

    def __init__(self, capacity: int, rng: np.random.Generator) -> None:
        self.capacity, self.rng = int(capacity), rng
        self.items: list[str] = []
        self.seen = 0

    def offer(self, texts: list[str]) -> None:
        k = len(texts)
        u = self.rng.random(k)
        index = np.arange(self.seen, self.seen + k)
        slot = np.floor(u * (index + 1)).astype(np.int64)
        for i in range(k):
            if index[i] < self.capacity:
                self.items.append(texts[i])
            elif slot[i] < self.capacity:
                self.items[slot[i]] = texts[i]
        self.seen += k


@dataclass
class Tally:
    """The sums of one pass (module docstring). ``n_scored`` documents entered the
    model-based sums (all but the copies of reference-model training documents)."""

    n_docs: int = 0
    n_tokens: int = 0
    n_oov: int = 0
    n_copies: int = 0
    n_scored: int = 0
    buckets: np.ndarray = field(default_factory=lambda: np.zeros(3, np.int64))
    logppl_hist: np.ndarray = field(default_factory=lambda: np.zeros(LOGPPL_BINS, np.int64))
    detector_positives: int = 0
    occurrence_bins: np.ndarray = field(default_factory=lambda: np.zeros(N_BINS, np.int64))
    watermark_docs: int = 0
    watermark_hits: int = 0

    def median_logppl(self) -> float:
        """The median per-document log-perplexity (to the histogram's resolution)."""
        if self.n_scored == 0:
            return float("nan")
        k = int(np.searchsorted(np.cumsum(self.logppl_hist), self.n_scored / 2))
        return (k + 0.5) * LOGPPL_STEP


def stream_candidate(spec: str, reference: Reference, *, text_field: str | None,
                     chunk_docs: int, max_sample_docs: int, rng: np.random.Generator,
                     watermark: WatermarkDetector | None = None,
                     watermark_vocab: Vocabulary | None = None,
                     doc_scores=None) -> tuple[Tally, Reservoir]:
    """Read the candidate once: its :class:`Tally` and its :class:`Reservoir` sample.
    ``doc_scores``: a :class:`~.machine.DocScores` that receives every chunk (its texts,
    which are copies of reference-model documents, their occurrence log-likelihood ratios)
    for the per-document scores."""
    tally = Tally(occurrence_bins=np.zeros(reference.occurrence.edges_.size + 1, np.int64))
    reservoir = Reservoir(max_sample_docs, rng)
    cuts = np.quantile(reference.heldout_logppl, [1 / 3, 2 / 3])
    detector, vocab, tokenizer = reference.detector, reference.vocab, reference.tokenizer
    documents = read_documents(spec, text_field=text_field)
    while chunk := [d.text for d in islice(documents, chunk_docs)]:
        reservoir.offer(chunk)
        tokens = tokenizer.tokenize_many(chunk)
        ids = vocab.encode(tokens)
        tally.n_docs += len(chunk)
        tally.n_tokens += sum(map(len, ids))
        tally.n_oov += sum(int((d == UNK).sum()) for d in ids)
        # Copies of the reference model's own training documents would read as "too
        # typical" to every model-based signal: they are counted, not scored.
        copy = [t in reference.model_texts for t in chunk]
        scored = [d for d, c in zip(ids, copy) if not c]
        tally.n_copies += len(chunk) - len(scored)
        if doc_scores is not None:
            llr = np.full(len(chunk), np.nan)
            if scored:
                llr[~np.asarray(copy)] = reference.occurrence.scores(scored)
            doc_scores.add(chunk, copy, llr)
        if scored:
            logppl = detector.scores(scored)
            tally.n_scored += len(scored)
            tally.buckets += np.bincount(np.searchsorted(cuts, logppl, side="right"),
                                         minlength=3)
            cell = np.clip((logppl / LOGPPL_STEP).astype(np.int64), 0, LOGPPL_BINS - 1)
            tally.logppl_hist += np.bincount(cell, minlength=LOGPPL_BINS)
            tally.detector_positives += int(detector.flag_scores(logppl).sum())
            tally.occurrence_bins += reference.occurrence.bin_counts(scored)
        if watermark is not None:
            wm_ids = ids if watermark_vocab is None else watermark_vocab.encode(tokens)
            tally.watermark_docs += len(wm_ids)
            tally.watermark_hits += int(watermark.flag(wm_ids).sum())
    return tally, reservoir
