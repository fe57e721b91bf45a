"""Audit signals of a real language model (:mod:`.machine`), and the honesty caveats.

* ``fast_detectgpt_rate``, ``log_likelihood_rate``, ``log_rank_rate``, ``binoculars_rate``,
  ``combined_rate``: the share of
  candidate documents a zero-shot criterion flags at the threshold calibrated on the held-out
  human documents (baseline: the achieved, cross-fitted FPR);
* ``detector_share``: the best criterion's positive rate corrected by its FPR and its TPR on
  the AI reference, ``(r - FPR) / (TPR - FPR)``, with a bootstrap interval over the three
  counts. It and ``ai_share`` (occurrence model) answer the same question by different
  means; when their intervals do not overlap a ``share_disagreement`` caveat says so (the
  candidate's AI text is likely from another generator, or written another way, than the
  AI reference).

Without any language model the audit adds the ``no_language_model`` caveat, and an
``ai_share`` resting on the trigram-written AI reference is reported *not judged*: a trigram
model's text is no stand-in for an LLM's, so an ok there would be a false reassurance.
"""

from __future__ import annotations

import numpy as np

from ..zeroshot import CRITERIA, corrected_share
from .signals import Context, signal
from .result import Signal
from .verdicts import Rule, wilson

NO_LM = "no language model: machine-text signals limited to lexical statistics"
_RATE_RULE = Rule("higher", 0.05, 0.20, "absolute",
                  "the achieved false-positive rate on held-out human documents")
_DEFS = {
    "fast_detectgpt": "Fast-DetectGPT's analytic sampling discrepancy (Bao et al. 2024)",
    "log_likelihood": "the mean token log-likelihood",
    "log_rank": "the mean token log-rank (GLTR; Mitchell et al. 2023)",
    "binoculars": "the Binoculars score (Hans et al. 2024; low = machine)",
    "combined": "a logistic combination of the scorer's per-document statistics, fitted on "
                "the reference's model half against the AI reference",
}
#: Criteria with a rate signal: the zero-shot ones and the fitted combination.
RATED = (*CRITERIA, "combined")


def _rate(ctx: Context, name: str) -> Signal | None:
    machine = ctx.extras.get("machine")
    docs = ctx.extras.get("doc_scores")
    if machine is None or docs is None or name not in machine.calibrations:
        return None
    cal = machine.calibrations[name]
    k, n = docs.flagged.get(name, 0), docs.scored.get(name, 0)
    if n == 0:
        return None
    lo, hi = wilson(k, n)
    return Signal(f"{name}_rate", k / n, lo, hi, n, "documents",
                  f"Share of candidate documents flagged by {_DEFS[name]} under "
                  f"{machine.scorer.spec}, at the threshold that flags target_fpr of the "
                  f"held-out human reference documents.",
                  "Wilson score interval (the threshold's calibration noise is in the "
                  "baseline's interval)", cal.fpr,
                  {"positives": k, **cal.as_record()})


for _name in RATED:
    def _make(name: str):
        @signal(f"{name}_rate", rule=_RATE_RULE,
                definition=f"Share of candidate documents flagged by {_DEFS[name]}, "
                           f"calibrated to target_fpr on held-out human documents.",
                order=111 + RATED.index(name))
        def _fn(ctx: Context):
            return _rate(ctx, name)
        _fn.__name__ = f"_{name}_rate"
        return _fn
    _make(_name)


@signal("detector_share",
        rule=Rule("higher", 0.10, 0.30, "absolute", "0: no AI-written documents"),
        definition="Estimated share of AI-written documents from the best zero-shot "
                   "detector: its positive rate corrected by its calibrated FPR and its TPR "
                   "on the AI reference.", order=1001)
def _detector_share(ctx: Context):
    machine, docs = ctx.extras.get("machine"), ctx.extras.get("doc_scores")
    if machine is None or docs is None:
        _no_lm_caveat(ctx)
        return None
    name = machine.best
    cal = machine.calibrations[name]
    k, n = docs.flagged.get(name, 0), docs.scored.get(name, 0)
    est, lo, hi = corrected_share(k, n, cal, ctx.rng("detector_share"), 2000)
    if not np.isfinite(est):
        ctx.caveats.append({"kind": "signal_unavailable", "signals": ["detector_share"],
                            "message": f"detector_share is absent: the best detector ({name}) "
                                       f"flags no more AI reference documents ({cal.tpr:.1%}) "
                                       f"than human ones ({cal.fpr:.1%})"})
        return None
    share = Signal("detector_share", est, lo, hi, n, "documents",
                   f"Estimated AI-written share from {name}: (positive rate - FPR) / (TPR - "
                   f"FPR), FPR cross-fitted on held-out human documents, TPR measured on the "
                   f"AI reference.",
                   "parametric bootstrap of the candidate, human and AI-reference counts",
                   0.0, {"detector": name, "positive_rate": k / n, "positives": k,
                         **cal.as_record()})
    ai = ctx.extras["computed"].get("ai_share")
    if ai is not None and (ai.ci_high < share.ci_low or share.ci_high < ai.ci_low):
        ctx.caveats.append({
            "kind": "share_disagreement",
            "message": f"ai_share ({ai.estimate:.3f} [{ai.ci_low:.3f}, {ai.ci_high:.3f}]) and "
                       f"detector_share ({est:.3f} [{lo:.3f}, {hi:.3f}]) disagree beyond their "
                       f"intervals: the candidate's machine text is likely from another "
                       f"generator, or another kind of rewriting, than the AI reference; "
                       f"supply --ai-reference text of the suspected model",
            "ai_share": ai.estimate, "detector_share": est})
    return share


def _no_lm_caveat(ctx: Context) -> None:
    ctx.caveats.append({"kind": "no_language_model", "message": NO_LM})
