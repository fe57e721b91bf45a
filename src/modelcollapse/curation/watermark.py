"""The green-list watermark of Kirchenbauer et al. (2023), "A Watermark for Large Language
Models": a logit bias at sampling time and a z-test at detection time.

At each step the previous ``h = context_width`` tokens and a secret ``key`` decide which
tokens are *green*; the sampler adds ``delta`` to the logits of green tokens (multiplies
their probabilities by ``e^delta`` and renormalizes). Detection counts the green tokens
``|s|_G`` of a document of ``T`` scored tokens and computes

    z = (|s|_G - gamma T) / sqrt(T gamma (1 - gamma)),

which is approximately standard normal on text written without the key.

Green-list membership by hashing
--------------------------------
The paper seeds a random permutation of the vocabulary with a hash of the context and
calls its first ``gamma * V`` tokens green, so every context has exactly ``gamma * V``
green tokens. Here membership is a 64-bit hash instead: a token ``t`` after the context
``c_1 .. c_h`` is green iff ``u(key, c_1, .., c_h, t) < gamma``, where ``u`` is the top 53
bits of a splitmix64 fold of the key, the context and the token (see :mod:`._text`) read as
a uniform number in [0, 1). Each (context, token) pair is then green independently with
probability ``gamma`` (the green list of one context holds ``gamma V`` tokens only on
average). Membership costs O(1) per token with no per-context permutation, vectorizes over
any batch of (context, token) pairs, and is exactly the Bernoulli(gamma) null the z-test
assumes. Scoring uses the generation rule: token ``i``'s context is the ``h`` tokens before
it, padded with ``<s>`` (BOS = 1) at a document's start, so every token is scored (``T`` =
the document's length; ``</s>`` is not part of a stored document and is not scored).
``context_width = 0`` gives one fixed green list (the "unigram" watermark of Zhao et al.
2023).

Repeated (context, token) pairs in one document are not independent draws (a looping
generator repeats its green pairs), which inflates ``|z|``; ``ignore_repeated=True`` counts
each distinct pair once per document, as Kirchenbauer et al. (2023b, "On the Reliability
of Watermarks") recommend.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ..errors import UserError
from ._text import Flat, as_uint64, distinct_pairs, mix64, seed_hash
from .detectors import TextDetector

_TOP53 = np.uint64(11)   # keep the top 53 bits: the resolution of a float64 in [0, 1)


@dataclass(frozen=True)
class Watermark:
    """The watermark's parameters, recorded with every result.

    gamma : green-list share, in (0, 1). delta : logit bias of green tokens, >= 0 (0: no
    watermark in the text, detection still runs). context_width : ``h``, the number of
    previous tokens that seed the green list, >= 0. key : the secret hashing key, an
    integer in [0, 2^64).
    """

    gamma: float = 0.25
    delta: float = 2.0
    context_width: int = 1
    key: int = 15485863

    def __post_init__(self) -> None:
        if not (isinstance(self.gamma, numbers.Real) and 0 < self.gamma < 1):
            raise UserError(f"watermark gamma must be in (0, 1); got {self.gamma!r}")
        if not (isinstance(self.delta, numbers.Real) and math.isfinite(self.delta)
                and self.delta >= 0):
            raise UserError(f"watermark delta must be a finite number >= 0; got {self.delta!r}")
        if not isinstance(self.context_width, numbers.Integral) or self.context_width < 0:
            raise UserError(f"watermark context_width must be an integer >= 0; "
                            f"got {self.context_width!r}")
        if not isinstance(self.key, numbers.Integral) or not 0 <= self.key < 2 ** 64:
            raise UserError(f"watermark key must be an integer in [0, 2^64); got {self.key!r}")

    @property
    def _cut(self) -> np.uint64:
        # green iff top53(hash) < gamma * 2^53: probability floor(gamma 2^53) / 2^53.
        return np.uint64(math.floor(self.gamma * 2.0 ** 53))

    def _prefix(self, context: np.ndarray) -> np.ndarray:
        """(B,) the hash state after the key and the context (B, h)."""
        context = np.asarray(context)
        if context.ndim != 2 or context.shape[1] != self.context_width:
            raise UserError(f"watermark context must have shape (B, {self.context_width}) "
                            f"(context_width previous tokens per row); got {context.shape}")
        h = seed_hash(self.key, (context.shape[0],))
        ctx = as_uint64(context)
        for j in range(self.context_width):
            h = mix64(h ^ ctx[:, j])
        return h

    def _green_hash(self, prefix: np.ndarray, tokens: np.ndarray) -> np.ndarray:
        tok = as_uint64(tokens)
        pre = prefix if tok.ndim == 1 else prefix[:, None]
        return mix64(pre ^ tok)

    def green(self, context: np.ndarray, tokens: np.ndarray) -> np.ndarray:
        """Whether each token is green after its context.

        context : (B, h) int, the ``h`` previous token ids, oldest first (BOS-padded at a
            document's start). tokens : (B,) or (B, K) int. Returns bool, the shape of
            ``tokens``.
        """
        prefix = self._prefix(context)
        tokens = np.asarray(tokens)
        if tokens.ndim not in (1, 2) or tokens.shape[0] != prefix.shape[0]:
            raise UserError(f"watermark tokens must have shape (B,) or (B, K) with "
                            f"B={prefix.shape[0]}; got {tokens.shape}")
        return (self._green_hash(prefix, tokens) >> _TOP53) < self._cut

    def green_mask(self, context: np.ndarray, vocab_size: int) -> np.ndarray:
        """(B, vocab_size) bool: the green list of every context row (B, h)."""
        prefix = self._prefix(context)
        vocab = np.arange(int(vocab_size), dtype=np.int64)
        return (mix64(prefix[:, None] ^ vocab.view(np.uint64)[None, :]) >> _TOP53) < self._cut

    def bias_logits(self, logits: np.ndarray, context: np.ndarray) -> np.ndarray:
        """(B, V) ``logits + delta * green``: the watermarked logits."""
        logits = np.asarray(logits, dtype=float)
        return logits + self.delta * self.green_mask(context, logits.shape[1])

    def reweight(self, probs: np.ndarray, context: np.ndarray) -> np.ndarray:
        """(B, V) next-token probabilities with green tokens' multiplied by ``e^delta`` and
        each row renormalized (a row of zeros stays zeros): the softmax of
        :meth:`bias_logits`, for samplers that hold probabilities."""
        probs = np.asarray(probs, dtype=float)
        w = probs * np.where(self.green_mask(context, probs.shape[1]), math.exp(self.delta), 1.0)
        total = w.sum(axis=1, keepdims=True)
        return np.divide(w, total, out=np.zeros_like(w), where=total > 0)

    def score(self, docs: Sequence[np.ndarray], ignore_repeated: bool = False
              ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Per document: ``(T, green, z)``, each (N,): the number of scored tokens (int64),
        of green ones (int64) and the z statistic (float64; 0 for an empty document).
        ``ignore_repeated``: score each distinct (context, token) pair once per document."""
        flat = Flat(docs)
        h = self._green_hash(self._prefix(flat.contexts(self.context_width)), flat.tokens)
        doc = flat.doc
        if ignore_repeated:
            h, doc = distinct_pairs(h, doc)
        is_green = (h >> _TOP53) < self._cut
        T = np.bincount(doc, minlength=flat.n_docs).astype(np.int64)
        green = np.bincount(doc, weights=is_green, minlength=flat.n_docs).astype(np.int64)
        return T, green, self.z_score(green, T)

    def z_score(self, green: np.ndarray, T: np.ndarray) -> np.ndarray:
        """z = (green - gamma T) / sqrt(T gamma (1 - gamma)); 0 where T = 0 (no evidence
        either way)."""
        green, T = np.asarray(green, dtype=float), np.asarray(T, dtype=float)
        g = self.gamma
        sd = np.sqrt(T * g * (1 - g))
        return np.divide(green - g * T, sd, out=np.zeros(np.broadcast(green, T).shape),
                         where=T > 0)

    @staticmethod
    def p_value(z: np.ndarray) -> np.ndarray:
        """One-sided p-value P(Z >= z) of the normal approximation."""
        from scipy.stats import norm
        return norm.sf(z)

    def as_record(self) -> dict:
        """The parameters and scheme, for the result store."""
        return {"scheme": "green-list (Kirchenbauer et al. 2023), splitmix64 hash membership",
                "gamma": float(self.gamma), "delta": float(self.delta),
                "context_width": int(self.context_width), "key": int(self.key)}


class WatermarkDetector(TextDetector):
    """Flags documents with ``z >= z_threshold`` (reason ``"watermark"``).

    The score is ``z``; on text written without the key, ``P(z >= z_threshold)`` is about
    :attr:`expected_fpr` (normal approximation: good for documents of some tens of
    tokens; short documents rarely reach a high threshold at all).
    """

    reason = "watermark"

    def __init__(self, watermark: Watermark, z_threshold: float = 4.0,
                 ignore_repeated: bool = False) -> None:
        if not isinstance(watermark, Watermark):
            raise UserError(f"WatermarkDetector needs a Watermark; got {type(watermark).__name__}")
        if not (isinstance(z_threshold, numbers.Real) and math.isfinite(z_threshold)):
            raise UserError(f"watermark z_threshold must be a finite number; got {z_threshold!r}")
        self.watermark, self.z_threshold = watermark, float(z_threshold)
        self.ignore_repeated = bool(ignore_repeated)

    @property
    def expected_fpr(self) -> float:
        """The normal approximation's false-positive rate, ``P(Z >= z_threshold)``."""
        return float(Watermark.p_value(self.z_threshold))

    def scores(self, docs):
        return self.watermark.score(docs, self.ignore_repeated)[2]

    def flag_scores(self, scores):
        return np.asarray(scores) >= self.z_threshold

    def as_record(self) -> dict:
        return {"block": "WatermarkDetector", "z_threshold": self.z_threshold,
                "ignore_repeated": self.ignore_repeated, **self.watermark.as_record()}
