"""Thresholds calibrated to a target false-positive rate on held-out human documents.

A published detector's threshold does not transfer across domains, so ours is always set on
the user's own human text: given the detector's scores on ``n`` held-out human documents and
a target false-positive rate ``alpha``, flag at most ``k = floor(alpha * n)`` of them.

Quantile method (exact on the calibration set): sort the calibration scores
``s_(1) <= ... <= s_(n)``.

- ``side="high"`` (large scores are suspicious): flag ``score > s_(n-k)``;
- ``side="low"`` (small scores are suspicious): flag ``score < s_(k+1)``;
- ``side="two-sided"``: ``k = floor(alpha * n / 2)`` on each side, both rules.

Without ties exactly ``k`` calibration documents are flagged (fewer with ties at the
threshold, never more), so the calibration FPR is ``k / n``, within ``1/n`` below ``alpha``.
On new human documents from the same distribution the expected FPR is ``k / (n + 1)`` per
side (the order-statistic / conformal argument), with the binomial spread of a rate
estimated from ``n`` documents. ``k >= 1`` is required: with ``k = 0`` the rule would be
"above the largest calibration score", whose FPR is ``1/(n+1)``, not ``alpha``, so too small
a calibration set is refused with the number of documents it needs.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass

import numpy as np

from ..errors import UserError

SIDES = ("low", "high", "two-sided")


def check_fpr(target_fpr, what: str = "target_fpr") -> float:
    if not (isinstance(target_fpr, numbers.Real) and 0 < target_fpr < 1):
        raise UserError(f"{what} must be a number in (0, 1) (an FPR of 0 needs infinitely "
                        f"many calibration documents); got {target_fpr!r}")
    return float(target_fpr)


def check_side(side) -> str:
    if side not in SIDES:
        from ..errors import unknown
        raise unknown("side", str(side), SIDES)
    return side


def n_flagged(target_fpr: float, n: int, side: str) -> int:
    """k: calibration documents flagged per side (the 1e-9 absorbs float error in alpha*n)."""
    share = target_fpr / 2 if side == "two-sided" else target_fpr
    return int(math.floor(share * n + 1e-9))


def min_calibration_size(target_fpr: float, side: str = "high") -> int:
    """The fewest human calibration documents for which ``k >= 1``."""
    share = target_fpr / 2 if side == "two-sided" else target_fpr
    n = max(1, math.ceil(1 / share - 1e-9))
    while n_flagged(target_fpr, n, side) < 1:   # guard the float edge of ceil
        n += 1
    return n


@dataclass(frozen=True)
class Threshold:
    """Flag ``score < low`` or ``score > high`` (``-inf`` / ``inf`` disable a side)."""

    low: float = -math.inf
    high: float = math.inf

    def flag(self, scores: np.ndarray) -> np.ndarray:
        scores = np.asarray(scores, dtype=float)
        return (scores < self.low) | (scores > self.high)


def calibrate(scores: np.ndarray, target_fpr: float, side: str, who: str = "detector"
              ) -> Threshold:
    """The threshold flagging at most ``floor(target_fpr * n)`` of the ``n`` calibration
    ``scores`` (human documents), on ``side``; see the module docstring."""
    scores = np.sort(np.asarray(scores, dtype=float))
    n = scores.size
    if not np.isfinite(scores).all():
        raise UserError(f"the {who} gave a non-finite score to a calibration document")
    k = n_flagged(target_fpr, n, side)
    if k < 1:
        need = min_calibration_size(target_fpr, side)
        raise UserError(f"the {who} needs at least {need} human calibration documents for "
                        f"target_fpr={target_fpr} ({side} side); got {n}")
    low = scores[k] if side in ("low", "two-sided") else -math.inf        # s_(k+1)
    high = scores[n - k - 1] if side in ("high", "two-sided") else math.inf  # s_(n-k)
    return Threshold(float(low), float(high))
