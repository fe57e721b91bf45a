"""Curation blocks: detectors, watermark, deduplication, quality / diversity selection.

Each block takes a :class:`Batch` (one replicate's candidate documents with provenance) and
returns a :class:`Decision` (keep, and why each dropped document was dropped);
:func:`run_chain` runs blocks in order and counts the drops per reason; :func:`filter_metrics`
measures the dropped share and a detector's precision / recall / FPR from provenance.

>>> result = run_chain([ExactDedup(), NearDedup(0.8), DetectorFilter(OracleDetector(0.9))],
...                    batch, rng)                    # doctest: +SKIP
>>> result.keep, result.dropped        # (N,) bool, {"exact_duplicate": 3, "detector": 41}
"""

from ..registry import Registry
from .base import Batch, Block, ChainResult, Decision, filter_metrics, run_chain
from .thresholds import Threshold, calibrate, min_calibration_size
from .dedup import ExactDedup, NearDedup, duplicate_share
from .detectors import (ClassifierDetector, Detector, DetectorFilter, LikelihoodDetector,
                        OracleDetector, TextDetector)
from .selection import DiversitySelection, TopQuality
from .watermark import Watermark, WatermarkDetector
from .zeroshot import ZeroShotDetector

# name -> detector class, for configs and `modelcollapse list` (--set detector=NAME).
DETECTORS: Registry[type] = Registry("detector")
DETECTORS.add("watermark", WatermarkDetector)
DETECTORS.add("likelihood", LikelihoodDetector)
DETECTORS.add("classifier", ClassifierDetector)
DETECTORS.add("oracle", OracleDetector)
DETECTORS.add("zeroshot", ZeroShotDetector)

__all__ = ["Batch", "Block", "ChainResult", "Decision", "run_chain", "filter_metrics",
           "Threshold", "calibrate", "min_calibration_size",
           "ExactDedup", "NearDedup", "duplicate_share",
           "Detector", "TextDetector", "DetectorFilter", "LikelihoodDetector",
           "ClassifierDetector", "OracleDetector", "Watermark", "WatermarkDetector",
           "TopQuality", "DiversitySelection", "DETECTORS", "ZeroShotDetector"]
