"""Zero-shot machine-text criteria, their calibration on human text, and the share they imply.

Criteria (each oriented so that **higher = more machine-like**), from :class:`~.score.TokenStats`:

``fast_detectgpt``
    Fast-DetectGPT's analytic sampling discrepancy (Bao et al. 2024):
    ``(sum_t ll_t - sum_t mu_t) / sqrt(sum_t var_t)``.
``log_likelihood``
    Mean token log-likelihood ``sum_t ll_t / n``.
``log_rank``
    Minus the mean log-rank ``-sum_t log(1 + rank_t) / n`` (GLTR; Mitchell et al. 2023).
``binoculars``
    Minus the Binoculars score (Hans et al. 2024, ahans30/Binoculars' code): the performer's
    log-perplexity over the observer-to-performer cross-entropy, negated (the paper flags
    *low* scores as machine).

``combined`` (:class:`Combination`, fitted per audit)
    A logistic regression on the per-document statistics :data:`FEATURES`: Fast-DetectGPT,
    the mean log-likelihood, minus the mean entropy, the mean token spread, minus the mean
    log-rank, the spread of the token log-likelihoods (GPTZero's burstiness), and the shares
    of tokens that are the model's first choice and among its ten first (GLTR's rank
    buckets); each standardized, L2-penalized, fitted with both classes weighted equally on
    human documents against the AI reference. Eight weights on zero-shot statistics, not a
    text classifier: it learns how the scorer's statistics of *this* human reference differ
    from LLM text (technical prose, say, is more predictable than fiction), not words or
    phrases. Length is deliberately not a feature: the AI reference's documents are capped
    in length by how they are generated, so a fit would learn "long = human".

Calibration (:func:`calibrate`): the threshold is the ``1 - target_fpr`` quantile of the
criterion on held-out human documents. Its *achieved* FPR is measured out of sample by
2-fold cross-fitting (threshold from one half, rate on the other, both ways), with a Wilson
interval; the TPR is the rate on the AI reference documents. Thresholds never transfer
between domains: they are always recalibrated on the audit's own human reference.

Detector-based share (:func:`corrected_share`): with a positive rate ``r`` on the candidate,
``share = (r - FPR) / (TPR - FPR)`` clipped to [0, 1] (the Rogan-Gladen correction); the
interval is a parametric bootstrap of the three binomial counts.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .scoring import TokenStats

CRITERIA = ("fast_detectgpt", "log_likelihood", "log_rank", "binoculars")
FEATURES = ("fast_detectgpt", "log_likelihood", "neg_entropy", "token_spread", "log_rank",
            "burstiness", "top1_share", "top10_share")


def criteria(stats: TokenStats) -> dict[str, np.ndarray]:
    """(N,) per criterion, NaN where a document had too few tokens (or no performer); the
    single-model criteria are columns of :func:`features`."""
    x = features(stats)
    out = {name: x[:, FEATURES.index(name)]
           for name in ("fast_detectgpt", "log_likelihood", "log_rank")}
    if np.isfinite(stats.xent).any():
        with np.errstate(divide="ignore", invalid="ignore"):
            n = np.where(stats.n > 0, stats.n, np.nan)
            out["binoculars"] = -((-stats.perf_ll / n) / (stats.xent / n))
    return out


def features(stats: TokenStats) -> np.ndarray:
    """(N, len(FEATURES)) per-document statistics; rows with NaN where a document had too
    few tokens."""
    with np.errstate(divide="ignore", invalid="ignore"):
        n = np.where(stats.n > 0, stats.n, np.nan)
        mean_ll = stats.ll / n
        return np.column_stack([(stats.ll - stats.mu) / np.sqrt(stats.var), mean_ll,
                                stats.mu / n, np.sqrt(stats.var / n), -stats.lrank / n,
                                np.sqrt(np.maximum(stats.ll2 / n - mean_ll ** 2, 0.0)),
                                stats.top1 / n, stats.top10 / n])


@dataclass(frozen=True)
class Combination:
    """The ``combined`` criterion (module docstring): ``score(X) = ((X - center) / scale) @
    weights + bias``, higher = more machine-like. X is (N, len(FEATURES))."""

    center: np.ndarray
    scale: np.ndarray
    weights: np.ndarray
    bias: float

    #: Documents per class the fit needs.
    MIN_DOCS = 30

    def __call__(self, x: np.ndarray) -> np.ndarray:
        """(N,) scores; NaN for rows with a NaN feature."""
        return ((np.asarray(x, float) - self.center) / self.scale) @ self.weights + self.bias

    @classmethod
    def fit(cls, human: np.ndarray, ai: np.ndarray, l2: float = 1.0) -> Combination:
        """Penalized logistic regression of AI (1) against human (0) on finite rows, both
        classes weighted equally; the penalty ``l2 / 2 |w|^2`` is on the mean loss times the
        number of rows (scikit-learn's C = 1 / l2; the bias is not penalized)."""
        from scipy.optimize import minimize
        h = np.asarray(human, float)
        a = np.asarray(ai, float)
        h, a = h[np.isfinite(h).all(1)], a[np.isfinite(a).all(1)]
        if min(len(h), len(a)) < cls.MIN_DOCS:
            raise ValueError(f"a combined criterion needs {cls.MIN_DOCS} documents per class "
                             f"(got {len(h)} human, {len(a)} AI)")
        x = np.vstack([h, a])
        center, scale = x.mean(0), x.std(0)
        scale = np.where(scale > 0, scale, 1.0)
        z = (x - center) / scale
        y = np.r_[np.zeros(len(h)), np.ones(len(a))]
        wt = np.r_[np.full(len(h), 0.5 / len(h)), np.full(len(a), 0.5 / len(a))] * len(x)
        sign = 2 * y - 1

        def loss(theta):
            m = sign * (z @ theta[:-1] + theta[-1])
            value = wt @ np.logaddexp(0.0, -m) + 0.5 * l2 * theta[:-1] @ theta[:-1]
            g = -wt * sign * np.exp(-np.logaddexp(0.0, m))      # d loss / d logit
            grad = np.r_[z.T @ g + l2 * theta[:-1], g.sum()]
            return value, grad

        res = minimize(loss, np.zeros(z.shape[1] + 1), jac=True, method="L-BFGS-B")
        if not res.success:
            import logging
            logging.getLogger("modelcollapse.zeroshot").warning(
                "the combined criterion's fit did not converge (%s); its weights are the "
                "last iterate", res.message)
        theta = res.x
        return cls(center, scale, theta[:-1], float(theta[-1]))

    def as_record(self) -> dict:
        return {"features": list(FEATURES), "center": self.center.tolist(),
                "scale": self.scale.tolist(), "weights": self.weights.tolist(),
                "bias": self.bias}


def cross_fitted_combination(train_human: np.ndarray, human: np.ndarray, ai: np.ndarray,
                             target_fpr: float, rng: np.random.Generator, folds: int = 5
                             ) -> tuple[Combination, np.ndarray, np.ndarray] | None:
    """``(combination, human_scores, ai_scores)`` for calibrating the ``combined`` criterion
    without scoring a document with weights fitted on it; None when a fit would have fewer
    than :attr:`Combination.MIN_DOCS` usable documents of a class.

    The combination is fitted on ``train_human`` (N_t, F) against all of ``ai`` (N_a, F) and
    scores the held-out ``human`` (N_h, F), which it never saw; :func:`calibrate` then sets
    its threshold there. The AI documents' scores are out of fold: fold k is scored by a
    combination fitted without it, shifted by the difference of the two combinations'
    thresholds on ``human`` (so "above the final threshold" means "above its own fold's
    threshold", and the TPR that :func:`calibrate` measures is an honest one; the AUROC it
    reports from these scores mixes two models' scales and is approximate). Rows with a
    NaN feature (too few tokens) get NaN scores."""
    usable = np.flatnonzero(np.isfinite(ai).all(1))
    smallest_fit = usable.size - -(-usable.size // folds)        # n - ceil(n / folds)
    if min(np.isfinite(train_human).all(1).sum(), smallest_fit) < Combination.MIN_DOCS:
        return None
    final = Combination.fit(train_human, ai)
    h_scores = final(human)
    thr = _threshold(h_scores[np.isfinite(h_scores)], target_fpr)
    fold = np.full(len(ai), -1)
    fold[usable] = rng.permutation(usable.size) % folds
    a_scores = np.full(len(ai), np.nan)
    for k in range(folds):
        part = Combination.fit(train_human, ai[(fold != k) & (fold >= 0)])
        h_k = part(human)
        a_scores[fold == k] = part(ai[fold == k]) - _threshold(h_k[np.isfinite(h_k)],
                                                               target_fpr) + thr
    return final, h_scores, a_scores


def auroc(human: np.ndarray, machine: np.ndarray) -> float:
    """Area under the ROC curve of a higher-is-machine score (ties count half)."""
    h, m = np.asarray(human, float), np.asarray(machine, float)
    h, m = h[np.isfinite(h)], m[np.isfinite(m)]
    if not (h.size and m.size):
        return float("nan")
    ranks = np.argsort(np.argsort(np.concatenate([h, m]), kind="stable"), kind="stable") + 1.0
    # average ranks of ties
    allv = np.concatenate([h, m])
    _, inv, counts = np.unique(allv, return_inverse=True, return_counts=True)
    sums = np.bincount(inv, weights=ranks)
    ranks = sums[inv] / counts[inv]
    return float((ranks[h.size:].sum() - m.size * (m.size + 1) / 2) / (h.size * m.size))


def tpr_at_fpr(human: np.ndarray, machine: np.ndarray, fpr: float) -> float:
    """Share of machine scores above the human ``1 - fpr`` quantile."""
    h, m = np.asarray(human, float), np.asarray(machine, float)
    h, m = h[np.isfinite(h)], m[np.isfinite(m)]
    if not (h.size and m.size):
        return float("nan")
    return float(np.mean(m > np.quantile(h, 1 - fpr, method="higher")))


@dataclass(frozen=True)
class Calibration:
    """A criterion's threshold and its measured error rates (module docstring)."""

    name: str
    threshold: float
    target_fpr: float
    fpr: float
    fpr_ci: tuple[float, float]
    n_human: int
    fp: int
    tpr: float
    tpr_ci: tuple[float, float]
    n_ai: int
    tp: int
    auroc: float

    def flag(self, scores: np.ndarray) -> np.ndarray:
        return np.asarray(scores, float) > self.threshold

    def as_record(self) -> dict:
        return {"threshold": self.threshold, "target_fpr": self.target_fpr,
                "achieved_fpr": self.fpr, "achieved_fpr_ci": list(self.fpr_ci),
                "human_docs": self.n_human, "tpr": self.tpr, "tpr_ci": list(self.tpr_ci),
                "ai_reference_docs": self.n_ai, "auroc_human_vs_ai_reference": self.auroc,
                "fpr_method": "2-fold cross-fitted on held-out human documents"}


def wilson(k: int, n: int) -> tuple[float, float]:
    from ..audit.verdicts import wilson as _wilson   # lazy: the audit imports this module
    return _wilson(k, n)


def _threshold(human: np.ndarray, target_fpr: float) -> float:
    return float(np.quantile(human, 1 - target_fpr, method="higher"))


def calibrate(name: str, human: np.ndarray, ai: np.ndarray, target_fpr: float,
              rng: np.random.Generator) -> Calibration:
    """Threshold at ``target_fpr`` on human scores; FPR cross-fitted; TPR on ``ai``."""
    human = np.asarray(human, float)
    human = human[np.isfinite(human)]
    ai = np.asarray(ai, float)
    ai = ai[np.isfinite(ai)]
    half = rng.permutation(human.size) < human.size // 2
    fp = 0
    for a, b in ((half, ~half), (~half, half)):
        fp += int(np.sum(human[b] > _threshold(human[a], target_fpr)))
    threshold = _threshold(human, target_fpr)
    tp = int(np.sum(ai > threshold))
    return Calibration(name, threshold, target_fpr, fp / human.size, wilson(fp, human.size),
                       human.size, fp, tp / max(ai.size, 1), wilson(tp, ai.size), ai.size, tp,
                       auroc(human, ai))


def corrected_share(k: int, n: int, cal: Calibration, rng: np.random.Generator,
                    n_boot: int = 2000) -> tuple[float, float, float]:
    """``(share, ci_low, ci_high)``: the positive rate k / n corrected by the calibrated
    FPR and TPR (module docstring); NaN when TPR <= FPR (the detector does not separate)."""
    def share(r, f, t):
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.clip((r - f) / (t - f), 0.0, 1.0)
    f, t = cal.fpr, cal.tpr
    if not t > f or n == 0:
        return float("nan"), float("nan"), float("nan")
    est = float(share(k / n, f, t))
    r_b = rng.binomial(n, k / n, n_boot) / n
    f_b = rng.binomial(cal.n_human, f, n_boot) / cal.n_human
    t_b = rng.binomial(cal.n_ai, t, n_boot) / cal.n_ai
    ok = t_b > f_b
    boot = share(r_b[ok], f_b[ok], t_b[ok])
    lo, hi = np.quantile(boot, [0.025, 0.975]) if boot.size else (0.0, 1.0)
    return est, float(min(lo, est)), float(max(hi, est))
