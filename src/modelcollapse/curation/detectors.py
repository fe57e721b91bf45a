"""Detectors of generated text, and the block that drops what they flag.

A detector says, per document, "synthetic" (flagged) or not. Used as a block it drops the
flagged documents (its ``reason``: ``"likelihood"``, ``"classifier"``, ``"oracle"``,
``"watermark"``); :class:`DetectorFilter` wraps any detector under the common reason
``"detector"``. Either way the :class:`~.base.Decision` carries the flagged mask, so the
detector's precision and recall are measured from provenance (:func:`~.base.filter_metrics`),
never assumed.

- :class:`LikelihoodDetector`: per-token log-likelihood under an n-gram model of human
  text (or its ratio to a model of generated text), thresholded at a target FPR calibrated
  on held-out human text.
- :class:`ClassifierDetector`: logistic regression (scikit-learn) on hashed n-gram
  features, human vs generated, calibrated the same way.
- :class:`OracleDetector`: flags from the provenance itself with a set recall and FPR, to
  study filtering quality as a controlled variable.
- :class:`~.watermark.WatermarkDetector`: the z-test of Kirchenbauer et al. (2023).
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Sequence

import numpy as np

from ..errors import UserError
from ..lm import NGramLM
from ..batches import SYNTHETIC
from ._text import Flat, mean_logprob, ngram_hashes
from .base import Batch, Block, Decision
from .thresholds import Threshold, calibrate, check_fpr, check_side

STATISTICS = ("perplexity", "ratio")


class Detector(Block):
    """A block that flags documents as synthetic and drops them.

    Subclasses implement :meth:`detect` ``(batch, rng) -> (flagged (N,) bool, scores (N,)
    float or None)``.
    """

    reason = "detector"

    def detect(self, batch: Batch, rng: np.random.Generator
               ) -> tuple[np.ndarray, np.ndarray | None]:
        raise NotImplementedError

    def __call__(self, batch: Batch, rng: np.random.Generator) -> Decision:
        flagged, scores = self.detect(batch, rng)
        return Decision.drop(flagged, self.reason, scores, flagged)


class TextDetector(Detector):
    """A detector that reads only the text: ``scores(docs)`` then a threshold."""

    def scores(self, docs: Sequence[np.ndarray]) -> np.ndarray:
        """(N,) the detector's statistic per document."""
        raise NotImplementedError

    def flag_scores(self, scores: np.ndarray) -> np.ndarray:
        """(N,) bool, the documents whose statistic is past the threshold."""
        raise NotImplementedError

    def flag(self, docs: Sequence[np.ndarray]) -> np.ndarray:
        """(N,) bool, True for documents the detector calls synthetic."""
        return self.flag_scores(self.scores(docs))

    def flag_rate(self, docs: Sequence[np.ndarray]) -> float:
        """The share of ``docs`` flagged (0 for no documents)."""
        flagged = self.flag(docs)
        return float(flagged.mean()) if flagged.size else 0.0

    def detect(self, batch, rng):
        scores = self.scores(batch.docs)
        return self.flag_scores(scores), scores


class _Calibrated(TextDetector):
    """Shared by the detectors whose threshold is calibrated on held-out human text."""

    threshold_: Threshold | None = None
    side: str = "high"

    def flag_scores(self, scores):
        if self.threshold_ is None:
            raise UserError(f"this {type(self).__name__} is not fitted yet; call fit(...)")
        return self.threshold_.flag(scores)

    def _calibrate(self, calibration_docs) -> None:
        scores = self.scores(calibration_docs)
        self.threshold_ = calibrate(scores, self.target_fpr, self.side, type(self).__name__)
        self.calibration_fpr_ = float(self.threshold_.flag(scores).mean())


class LikelihoodDetector(_Calibrated):
    """Flags documents whose likelihood under a model of human text is atypical.

    Parameters
    ----------
    order : n-gram order of the reference model(s) (Kneser-Ney :class:`~modelcollapse.lm.NGramLM`).
    target_fpr : in (0, 1), the false-positive rate on human text the threshold is set to.
    statistic : ``"perplexity"``: score = the document's mean negative log-likelihood per
        token (its log-perplexity, ``</s>`` included) under the reference model trained on
        human documents only. ``"ratio"``: score = mean log p_ref - mean log p_contrast per
        token, the log-likelihood ratio of the human reference model to a *contrast* model
        trained on generated text (passed to :meth:`fit`); low means "more like the
        generated text".
    side : which scores are suspicious: ``"low"`` (default: text too typical for a human, as
        likelihood detectors such as DetectGPT assume of sampled text, and the natural side
        of ``"ratio"``), ``"high"`` (text atypical for a human: e.g. a degenerate generator),
        or ``"two-sided"``. Whether generated text is more or less likely under a human
        model depends on the sampler (truncation makes it more likely, temperature > 1
        less), so the direction is explicit rather than assumed.

    Fitted: ``reference_``, ``contrast_`` (ratio only), ``threshold_``, ``calibration_fpr_``.
    """

    reason = "likelihood"

    def __init__(self, order: int = 3, target_fpr: float = 0.01,
                 statistic: str = "perplexity", side: str = "low") -> None:
        if not isinstance(order, numbers.Integral) or not 1 <= order <= 6:
            raise UserError(f"likelihood detector order must be an integer from 1 to 6; "
                            f"got {order!r}")
        if statistic not in STATISTICS:
            from ..errors import unknown
            raise unknown("likelihood statistic", str(statistic), STATISTICS)
        self.order, self.statistic = int(order), statistic
        self.target_fpr = check_fpr(target_fpr, "likelihood detector target_fpr")
        self.side = check_side(side)
        self.reference_: NGramLM | None = None
        self.contrast_: NGramLM | None = None

    def fit(self, reference_docs: Sequence[np.ndarray], calibration_docs: Sequence[np.ndarray],
            vocab_size: int, contrast_docs: Sequence[np.ndarray] | None = None
            ) -> LikelihoodDetector:
        """Train the reference model on ``reference_docs`` (human only) and set the threshold
        on ``calibration_docs`` (other human documents: scoring the training documents
        would understate their perplexity and so miscalibrate). ``contrast_docs``:
        generated documents, required by ``statistic="ratio"``."""
        if self.statistic == "ratio" and contrast_docs is None:
            raise UserError("the likelihood detector with statistic='ratio' needs "
                            "contrast_docs (generated documents) in fit")
        self.reference_ = NGramLM(self.order).fit(reference_docs, vocab_size)
        if self.statistic == "ratio":
            self.contrast_ = NGramLM(self.order).fit(contrast_docs, vocab_size)
        self._calibrate(calibration_docs)
        return self

    def scores(self, docs):
        if self.reference_ is None:
            raise UserError("this LikelihoodDetector is not fitted yet; call fit(reference_docs, "
                            "calibration_docs, vocab_size)")
        ref = mean_logprob(self.reference_, docs)
        if self.statistic == "perplexity":
            return -ref
        return ref - mean_logprob(self.contrast_, docs)


class ClassifierDetector(_Calibrated):
    """Logistic regression on hashed n-gram counts, human (0) vs generated (1).

    Features: every n-gram of orders ``ngram_range`` within a document is hashed (splitmix64
    of its token ids, vectorized; the role of scikit-learn's HashingVectorizer without
    building strings) into ``n_features`` buckets with a hash-derived sign (collisions
    cancel in expectation, as ``alternate_sign`` does), then each row is L2-normalized.
    The score is the classifier's log-odds of "generated" (monotone in P(generated), but
    without the ties of probabilities that round to 1), flagged on the ``"high"`` side
    with the threshold calibrated to ``target_fpr`` on held-out human documents.

    Fitted: ``model_`` (sklearn LogisticRegression), ``threshold_``, ``calibration_fpr_``.
    """

    reason = "classifier"
    side = "high"

    def __init__(self, target_fpr: float = 0.01, ngram_range: tuple[int, int] = (1, 2),
                 n_features: int = 2 ** 18, C: float = 1.0, seed: int = 0) -> None:
        self.target_fpr = check_fpr(target_fpr, "classifier detector target_fpr")
        try:
            lo, hi = ngram_range
        except (TypeError, ValueError):
            lo = hi = None
        if not (isinstance(lo, numbers.Integral) and isinstance(hi, numbers.Integral)
                and 1 <= lo <= hi <= 6):
            raise UserError(f"classifier detector ngram_range must be two integers "
                            f"1 <= lo <= hi <= 6; got {ngram_range!r}")
        if not isinstance(n_features, numbers.Integral) or n_features < 2:
            raise UserError(f"classifier detector n_features must be an integer >= 2; "
                            f"got {n_features!r}")
        if not (isinstance(C, numbers.Real) and math.isfinite(C) and C > 0):
            raise UserError(f"classifier detector C must be a finite number > 0; got {C!r}")
        if not isinstance(seed, numbers.Integral) or seed < 0:
            raise UserError(f"classifier detector seed must be an integer >= 0; got {seed!r}")
        self.ngram_range = (int(lo), int(hi))
        self.n_features, self.C, self.seed = int(n_features), float(C), int(seed)
        self.model_ = None

    def features(self, docs: Sequence[np.ndarray]):
        """(N, n_features) scipy.sparse CSR matrix of signed hashed n-gram counts, rows
        L2-normalized (an empty row stays 0)."""
        from scipy import sparse
        flat = Flat(docs)
        rows, cols, vals = [], [], []
        for n in range(self.ngram_range[0], self.ngram_range[1] + 1):
            h, doc = ngram_hashes(flat, n, key=self.seed * 7919 + n, whole_short=False)
            rows.append(doc)
            cols.append((h % np.uint64(self.n_features)).astype(np.int64))
            vals.append(np.where(h >> np.uint64(63), -1.0, 1.0))
        X = sparse.csr_matrix((np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))),
                              shape=(flat.n_docs, self.n_features))
        X.sum_duplicates()
        norms = np.sqrt(np.asarray(X.multiply(X).sum(axis=1)).ravel())
        scale = np.divide(1.0, norms, out=np.zeros_like(norms), where=norms > 0)
        return sparse.diags(scale) @ X

    def fit(self, human_docs: Sequence[np.ndarray], generated_docs: Sequence[np.ndarray],
            calibration_human_docs: Sequence[np.ndarray]) -> ClassifierDetector:
        """Train on ``human_docs`` (label 0) vs ``generated_docs`` (label 1, e.g. from a
        held-out generation), then calibrate on ``calibration_human_docs`` (other human
        documents)."""
        try:
            from sklearn.linear_model import LogisticRegression
        except ImportError:
            raise UserError("the classifier detector needs scikit-learn: "
                            "pip install scikit-learn") from None
        if len(human_docs) == 0 or len(generated_docs) == 0:
            raise UserError(f"the classifier detector needs human and generated training "
                            f"documents; got {len(human_docs)} human and "
                            f"{len(generated_docs)} generated")
        X = self.features(list(human_docs) + list(generated_docs))
        y = np.r_[np.zeros(len(human_docs)), np.ones(len(generated_docs))]
        self.model_ = LogisticRegression(C=self.C, max_iter=1000, random_state=self.seed)
        self.model_.fit(X, y)
        self._calibrate(calibration_human_docs)
        return self

    def scores(self, docs):
        if self.model_ is None:
            raise UserError("this ClassifierDetector is not fitted yet; call fit(human_docs, "
                            "generated_docs, calibration_human_docs)")
        if len(docs) == 0:   # scikit-learn refuses 0-row input
            return np.zeros(0)
        return self.model_.decision_function(self.features(docs))

    def proba(self, docs: Sequence[np.ndarray]) -> np.ndarray:
        """(N,) the classifier's P(generated)."""
        return 1.0 / (1.0 + np.exp(-self.scores(docs)))


class OracleDetector(Detector):
    """Flags each synthetic document with probability ``recall`` and each real one with
    probability ``fpr``, independently, reading the provenance (the truth): filtering
    quality as a controlled variable. ``recall`` and ``fpr`` in [0, 1]."""

    reason = "oracle"

    def __init__(self, recall: float = 0.9, fpr: float = 0.01) -> None:
        for name, value in (("recall", recall), ("fpr", fpr)):
            if not (isinstance(value, numbers.Real) and 0 <= value <= 1):
                raise UserError(f"oracle detector {name} must be a number in [0, 1]; "
                                f"got {value!r}")
        self.recall, self.fpr = float(recall), float(fpr)

    def detect(self, batch, rng):
        # One uniform per document, compared with the rate of its class.
        rate = np.where(batch.source == SYNTHETIC, self.recall, self.fpr)
        return rng.random(len(batch)) < rate, None


class DetectorFilter(Block):
    """Drops what ``detector`` flags, under one ``reason`` (``"detector"``) whichever the
    detector is, and passes the flagged mask on for :func:`~.base.filter_metrics`."""

    def __init__(self, detector: Detector, reason: str = "detector") -> None:
        if not isinstance(detector, Detector):
            raise UserError(f"DetectorFilter needs a detector; got {type(detector).__name__}")
        self.detector, self.reason = detector, str(reason)

    def __call__(self, batch, rng):
        flagged, scores = self.detector.detect(batch, rng)
        return Decision.drop(flagged, self.reason, scores, flagged)

    def as_record(self) -> dict:
        return {"block": "DetectorFilter", "reason": self.reason,
                "detector": self.detector.as_record()}
