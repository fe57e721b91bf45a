"""Verdicts: how far a signal must move, and how surely, before the audit says watch or alert.

Every signal has a *bad direction* (``"higher"``: a rise is the collapse sign, e.g. the
near-duplicate rate; ``"lower"``: a fall is, e.g. distinct-2) and two thresholds, ``watch``
and ``alert``, on its move away from a *baseline* in that direction. The move is measured
from the **conservative end** of the 95% interval (the end nearest to "no change"):
``ci_low`` for a higher-is-worse signal, ``ci_high`` for a lower-is-worse one. So a signal
is at ``alert`` only when even the optimistic end of its interval is past the alert threshold,
at ``watch`` when it is past the watch threshold, and ``ok`` otherwise. A small sample gives
a wide interval and so, honestly, fewer verdicts (the caveats say when a sample is small).

``scale`` says how the move is measured: ``"absolute"`` (``bound - baseline``) or
``"relative"`` (``(bound - baseline) / |reference value|``, for quantities whose natural
size depends on the text, such as distinct-n or entropy: the reference's own value on an
equal-size sample, or the human baseline of a coverage).

The table :data:`RULES` (filled by :func:`.signals.signal`) maps the signal names of the JSON
to their rules; the built-in ones are declared in :mod:`.builtin`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

VERDICTS = ("ok", "watch", "alert")
#: The verdict of a signal reported without a judgement (it counts in no severity).
NOT_JUDGED = "not judged"


@dataclass(frozen=True)
class Rule:
    """Thresholds of one signal (see the module docstring).

    direction : "higher" or "lower", the bad direction. watch, alert : the moves (>= 0, in
    the bad direction) at which the verdict becomes watch / alert. scale : "absolute" or
    "relative". baseline : what the move is measured from, in words (for the record).
    """

    direction: str
    watch: float
    alert: float
    scale: str
    baseline: str

    def verdict(self, ci_low: float, ci_high: float, baseline: float, size: float) -> str:
        """ok / watch / alert from the interval, the baseline value and, for a relative
        rule, the size the move is divided by (the reference's own value)."""
        bound = ci_low if self.direction == "higher" else ci_high
        if not (math.isfinite(bound) and math.isfinite(baseline) and math.isfinite(size)):
            return "ok"   # nothing measured: no evidence of a move (a caveat says why)
        move = bound - baseline if self.direction == "higher" else baseline - bound
        if self.scale == "relative":
            if size == 0:
                return "ok"   # no relative scale; the signal still reports its values
            move /= abs(size)
        if move >= self.alert:
            return "alert"
        if move >= self.watch:
            return "watch"
        return "ok"

    def as_record(self) -> dict:
        return {"bad_direction": self.direction, "watch": self.watch, "alert": self.alert,
                "scale": self.scale, "baseline": self.baseline,
                "judged_on": "ci_low" if self.direction == "higher" else "ci_high"}


#: signal name -> its rule, filled by the signal registrations (:mod:`.registry`,
#: :mod:`.builtin`): each signal's rule is declared next to the function that measures it.
RULES: dict[str, Rule] = {}


def worst(verdicts) -> str:
    """The most severe of some verdicts ("ok" for none; "not judged" ones are skipped)."""
    return max((v for v in verdicts if v in VERDICTS), key=VERDICTS.index, default="ok")


def wilson(k: int, n: int, z: float = 1.959963984540054) -> tuple[float, float]:
    """The Wilson score interval (95% by default) of a binomial proportion k / n; (0, 1)
    for n = 0."""
    if n <= 0:
        return 0.0, 1.0
    p = k / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    # at k = 0 (k = n) the bound is exactly 0 (1); the formula leaves round-off there
    lo = 0.0 if k == 0 else max(0.0, centre - half)
    return lo, (1.0 if k == n else min(1.0, centre + half))
