"""What the text families share: real documents as the truth, stored samples, the corpus's
fingerprint and provenance, and the checks of the text metrics' parameters.

A text family has ``data`` (train / validation / test lists of id arrays, ``detokenize``,
``record``), fitted models with ``lms`` and ``replicates``, and ``generate(lm, n, rng,
sampling) -> list of id arrays``; the metrics of :mod:`modelcollapse.metrics.text` read
only these.
"""

from __future__ import annotations

import os
from abc import abstractmethod
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..capabilities import GeneratesText
from ..errors import UserError
from ..batches import REAL, SYNTHETIC, Documents, random_subset
from ..randomness import Stream
from .base import Family


@dataclass(frozen=True)
class TextMetricParams:
    """The text metrics' parameters, shared by the text families (their Params derive from
    it). eval_tokens: tokens in the equal-size sample of the lexical metrics. bleu_docs:
    documents in the self-BLEU sample. tail_n, tail_quantile: the n-grams of tail_coverage
    and the count quantile below which a test-split n-gram is rare. embeddings: compute the
    embedding metrics (extra `embed`: MiniLM sentence embeddings) on embed_docs generated
    and embed_docs real test documents; mauve_seed and mauve_clusters (0: mauve's rule)
    are MAUVE's k-means settings."""

    eval_tokens: int = 5000
    bleu_docs: int = 500
    tail_n: int = 2
    tail_quantile: float = 0.5
    embeddings: bool = False
    embed_docs: int = 256
    mauve_seed: int = 25
    mauve_clusters: int = 0

    def __post_init__(self) -> None:
        checks = [
            (self.eval_tokens >= 100, "eval_tokens must be >= 100", self.eval_tokens),
            (self.bleu_docs >= 2, "bleu_docs must be >= 2", self.bleu_docs),
            (1 <= self.tail_n <= 4, "tail_n must be from 1 to 4", self.tail_n),
            (0 < self.tail_quantile <= 1, "tail_quantile must be in (0, 1]", self.tail_quantile),
            (self.embed_docs >= 10, "embed_docs must be >= 10", self.embed_docs),
            (self.mauve_clusters == 0 or self.mauve_clusters >= 2,
             "mauve_clusters must be 0 (mauve's rule: n / 10) or >= 2", self.mauve_clusters),
        ]
        for ok, what, value in checks:
            if not ok:
                raise UserError(f"params.{what}; got {value}")


def draw_train_documents(train: list[np.ndarray], n: int, generation: int,
                         stream: Stream) -> Documents:
    """n train-split documents per replicate: all of them (in corpus order) when n is the
    split's size, else a uniformly random subset (fresh real data = a new subset)."""
    R = stream.n_replicates
    if n == len(train):
        return Documents.made([list(train) for _ in range(R)], REAL, generation)
    index = random_subset(len(train), n, stream)
    return Documents.made([[train[i] for i in row] for row in index.tolist()], REAL, generation)


def file_stamp(corpus: str) -> tuple:
    """(path, size, mtime) of the files a corpus spec names (resolved as the data layer
    resolves them): a changed file is a new corpus, never a stale cache entry."""
    if corpus == "embedded" or corpus.startswith("hf:"):
        return ()
    from ..data.files import expand
    try:
        paths = expand(corpus)
    except UserError:
        return ()  # the data layer reports the missing file when it reads the corpus
    return tuple((str(path), st.st_size, st.st_mtime_ns)
                 for path, st in ((path, os.stat(path)) for path in paths))


class RealText:
    """The truth as a 'model': its documents are real ones (reference values of metrics)."""

    replicates = np.zeros(1, dtype=np.int64)


class TextFamily(Family, GeneratesText):
    """The shared half of a text family (see the module docstring)."""

    default_n_samples = 0  # the train split's number of documents

    data: Any   # a property of each family

    @classmethod
    def default_samples(cls, params: Any) -> int:
        return len(cls(params, 0).data.train)

    def fingerprint(self) -> dict[str, Any]:
        """What identifies the corpus's content, so a changed file is a different cell."""
        return {"corpus_sha256": self.data.record["corpus"].get("sha256", "")}

    def draw_real(self, n: int, generation: int, stream: Stream, stats: bool) -> Documents:
        return draw_train_documents(self.data.train, n, generation, stream)

    @abstractmethod
    def generate(self, lm: Any, n: int, rng: np.random.Generator, sampling: Any) -> list[np.ndarray]:
        """n documents (1-D id arrays) from one replicate's model ``lm``."""

    def sample(self, model: Any, n: int, generation: int, stream: Stream,
               sampling: Any, stats: bool) -> Documents:
        """n documents per replicate; replicate r's come from a generator seeded by (seed,
        cell, stage, r, generation), whatever else runs in the chunk."""
        docs = []
        for lm, r in zip(model.lms, model.replicates.tolist()):
            rng = stream.seeds.generator(stream.stage, int(r), "docs", generation)
            docs.append(self.generate(lm, n, rng, sampling))
        return Documents.made(docs, SYNTHETIC, generation)

    def evaluation_size(self, n_samples: int) -> int:
        """Documents per evaluation corpus of the text metrics (families may cap it)."""
        return n_samples

    def truth_model(self) -> RealText:
        return RealText()

    def render(self, batch: Documents) -> list[list[str]]:
        """Generated documents as text, per replicate (for storage and reports)."""
        return [[self.data.detokenize(doc) for doc in docs] for docs in batch.docs]

    def describe_data(self) -> dict:
        """The corpus's provenance, splits, tokenizer and vocabulary (for the manifest)."""
        return self.data.record
