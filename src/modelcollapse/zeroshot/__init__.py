"""Zero-shot machine-text detection and AI-reference generation with a real language model.

* :mod:`.score` - per-document token statistics, one batched, length-bucketed forward pass
  per document (cached per document);
* :mod:`.detectors` - Fast-DetectGPT's analytic criterion, mean log-likelihood and
  Binoculars, calibrated on human text to a target FPR, and the detector-corrected share;
* :mod:`.generate` - an AI reference written by the model from human documents (continue,
  paraphrase, summarize-then-expand), cached per document;
* :mod:`.load` - model loading with the audit's checks (device, tokenizer match).

torch and transformers are imported inside functions: importing this package is cheap.
"""

from .criteria import CRITERIA, Calibration, auroc, calibrate, corrected_share, criteria, tpr_at_fpr
from .generate import GenerationSettings
from .scoring import TokenStats, token_stats

__all__ = ["CRITERIA", "Calibration", "auroc", "calibrate", "corrected_share", "criteria",
           "tpr_at_fpr", "GenerationSettings", "TokenStats", "token_stats"]
