"""Curation policies: the next training set is a candidate pool passed through filter blocks.

The pool of generation g+1 holds ``pool_factor * n_samples`` documents: a ``real_fraction``
of them real (a random subset of the original pool, or fresh ones), the rest written by
model g. Then:

- ``filtered``: one detector (oracle, watermark, likelihood, classifier or zeroshot: a real
  language model, ``scorer``) flags documents as machine-written and they are dropped;
- ``curated``: exact dedup -> MinHash near dedup -> top-quality selection (likelihood under
  a human-only reference model) -> rarity-weighted diversity selection;
- ``recovery``: ``replace`` until generation ``recover_at``, then train with
  ``recovery_fraction`` of real data again (does the damage undo itself?).

What survives, at most ``n_samples`` documents of it (a random subset when more survive),
is the training set; its size varies per chain when less survives. Every generation's curation
is measured against provenance and stored with the training set (``Documents.curation``):
the dropped share, one count per drop reason and, for a detector, its precision, recall and
false-positive rate. Detectors are fitted once per cell in each process, with randomness from the ``curate``
stage shared by all replicates, so results never depend on chunking. The pool's human
documents come from the train split, so nothing that judges them may have seen them: the
human reference of the likelihood detector, the classifier and the quality selection is the
validation split, and the detectors' thresholds are calibrated on the test split (which no
model of the chain ever trains on). The false-positive rate measured on the pool is then an
honest out-of-sample figure.
"""

from __future__ import annotations

from abc import abstractmethod
from dataclasses import dataclass, replace
from typing import Any, Literal

import numpy as np

from ..capabilities import GeneratesText, RecordsCuration, describe, satisfies
from ..errors import UserError
from ..batches import SYNTHETIC
from ..policies import Mix, MixParams, Policy, Step, register
from .base import Batch, Block, filter_metrics, run_chain
from .thresholds import min_calibration_size
from .dedup import ExactDedup, NearDedup
from . import pipeline
from .selection import DiversitySelection, TopQuality


def _measured(batch: Batch, result) -> dict[str, float]:
    """The chain's measures; a detector's precision, recall or FPR is NaN (no row is
    stored) where it is undefined: nothing flagged, no synthetic or no real document."""
    out = filter_metrics(batch, result.keep, result.flagged, result.screened)
    if result.flagged is not None:
        seen = result.screened
        synthetic = (batch.source == SYNTHETIC) & seen
        for name, denominator in (("detector_precision", (result.flagged & seen).sum()),
                                  ("detector_recall", synthetic.sum()),
                                  ("detector_fpr", (~synthetic & seen).sum())):
            if denominator == 0:
                out[name] = np.nan
    return out


def reference_words(reference: list[np.ndarray], vocab_size: int) -> np.ndarray:
    """(V,) bool: the ids the human reference documents use, plus the special ids."""
    known = np.zeros(vocab_size, dtype=bool)
    known[:3] = True
    if reference:
        known[np.concatenate(reference)] = True
    return known


def restrict(docs, known: np.ndarray) -> list[np.ndarray]:
    """The documents with every id outside ``known`` replaced by ``<unk>`` (0)."""
    return [np.where(known[d], d, 0).astype(d.dtype) for d in docs]


class SeenWords(Block):
    """Shows a judge only the words of its human reference; every other word is ``<unk>``.

    The vocabulary is the train split's, so a word that occurs only in train documents keeps
    its id there, while in validation and test documents every word outside the train split
    is already ``<unk>``. A judge that learned from the validation split would then find the
    pool's train documents stranger than the test documents it was calibrated on (their rare
    words get the smoothing floor instead of the well-estimated ``<unk>``): measured on the
    embedded corpus, a two-sided likelihood detector calibrated to 5% flagged 3.4% of test
    but 13.7% of train documents. Mapping every split through the reference's words treats
    all human documents alike (3.4% and 6.9%: within the binomial error of a 118-document
    calibration set).
    """

    def __init__(self, block: Block, known: np.ndarray) -> None:
        self.block, self.known = block, known
        self.reason = block.reason

    def reasons(self) -> tuple[str, ...]:
        return self.block.reasons()

    def __call__(self, batch: Batch, rng: np.random.Generator):
        return self.block(Batch(restrict(batch.docs, self.known), batch.source,
                                batch.generation, batch.correct), rng)

    def as_record(self) -> dict:
        return {**self.block.as_record(), "words": "human reference only"}


def _check_pool(p) -> None:
    if not 1.0 <= p.pool_factor <= 100.0:
        raise UserError(f"params.pool_factor must be in [1, 100]; got {p.pool_factor}")
    if p.real_source == "fixed" and p.real_fraction * p.pool_factor > 1.0 + 1e-9:
        raise UserError(f"params.real_fraction x pool_factor = {p.real_fraction * p.pool_factor:g} "
                        f"exceeds 1: the real pool holds n_samples documents (use "
                        f"real_source = 'fresh' or a smaller share)")


COMMON_MEASURES = ("dropped_share", "kept_synthetic_share")
DETECTOR_MEASURES = ("detector_precision", "detector_recall", "detector_fpr",
                     "detector_flagged_share")


class _PoolPolicy(Mix, RecordsCuration):
    """Shared by the curation policies: a candidate pool of ``pool_factor * n_samples``
    documents, ``real_fraction`` of them real (listed first, so that dedup keeps the human
    copy); the block chain decides what is kept, and at most ``n_samples`` kept documents
    (a random subset) train the next generation."""

    requires = (GeneratesText,)

    def uses_samples(self) -> bool:
        return True

    def pool_size(self, n_samples: int) -> int:
        return int(round(self.params.pool_factor * n_samples))

    def n_real(self, n_samples: int) -> int:
        return int(round(self.params.real_fraction * self.pool_size(n_samples)))

    def synthetic_size(self, n_samples: int) -> int:
        return self.pool_size(n_samples) - self.n_real(n_samples)

    def max_train_size(self, n_samples: int, generations: int) -> int:
        return self.pool_size(n_samples)

    def check_family(self, family: Any) -> None:
        super().check_family(family)
        # Fresh real documents are distinct train-split documents: there must be enough.
        k, have = self.n_real(family.n_samples), len(family.data.train)
        if k > have:
            raise UserError(f"the pool asks for {k} real documents (real_fraction x pool_factor "
                            f"x n_samples) but the train split holds {have}")

    def pool(self, step: Step):
        k = self.n_real(step.n_samples)
        if k == 0:
            return step.synthetic
        real = self.real_part(step, k)
        return real if step.synthetic is None else real.concat(step.synthetic)

    @abstractmethod
    def blocks(self, step: Step) -> list:
        """The chain of blocks this policy runs on every pool (built once per cell)."""

    def next_train(self, step: Step):
        return self.curate(step)

    def curate(self, step: Step):
        """Run the chain on every replicate's pool; the kept documents, with their metrics."""
        step = replace(step, params=self.params)   # the blocks read their options there
        pool = self.pool(step)
        blocks = self.blocks(step)
        keeps, records = [], []
        for r, rng in enumerate(step.stream.generators("curate")):
            batch = Batch.from_documents(pool, r)
            result = run_chain(blocks, batch, rng)
            if not result.keep.any():
                raise UserError(
                    f"policy {self.name} dropped every one of the {len(batch)} candidate "
                    f"documents for generation {step.generation + 1} (replicate "
                    f"{int(step.stream.replicates[r])}); loosen its filters (e.g. a lower "
                    f"target_fpr or oracle_fpr, a higher quality_keep)")
            keeps.append(result.keep)
            records.append({**_measured(batch, result),
                            **{f"dropped_{k}": float(v) for k, v in result.dropped.items()}})
        train = pool.select(keeps)
        if train.sizes.max() > step.n_samples:  # a larger pool than needed: n_samples of it
            train = train.subsample(step.n_samples, step.stream)
        train.curation = {k: np.array([rec[k] for rec in records]) for k in records[0]}
        return train


@dataclass(frozen=True)
class FilterParams(MixParams):
    """real_fraction, real_source: the candidate pool's real share and source, as for mix
    (default: no real data). pool_factor: the pool holds pool_factor x n_samples documents,
    of which at most n_samples kept ones train the next generation (a crawl larger than the
    training set, so that filtering changes its composition, not its size). detector: 'oracle' (flags synthetic documents with probability oracle_recall and real
    ones with oracle_fpr, from provenance: filtering quality as a controlled variable),
    'watermark' (the family must sample with watermark = true; flags z >= watermark_z),
    'likelihood' (an n-gram model of order detector_order trained on human text only; flags
    the likelihood_side tail: 'low' = too typical, as truncated sampling makes text, 'high'
    = too unlikely, as plain sampling from a smoothed model does) or 'classifier' (logistic
    regression on hashed n-grams, human text vs documents a generation-0 model wrote) or
    'zeroshot' (a real causal language model, scorer: a .gguf file, a model folder, a name
    fetched with `modelcollapse models fetch` or a hub id, reads the documents rendered as
    text and flags those whose zeroshot_criterion is high: 'fast_detectgpt', the analytic
    sampling discrepancy of Bao et al. 2024, or 'log_likelihood', the mean token
    log-likelihood). target_fpr: the false-positive rate the likelihood, classifier and
    zeroshot thresholds are calibrated to, on the test split."""

    real_fraction: float = 0.0
    pool_factor: float = 1.0
    detector: Literal["oracle", "watermark", "likelihood", "classifier", "zeroshot"] = "oracle"
    target_fpr: float = 0.01
    oracle_recall: float = 0.9
    oracle_fpr: float = 0.01
    watermark_z: float = 4.0
    likelihood_side: Literal["low", "high", "two-sided"] = "two-sided"
    detector_order: int = 3
    # unset (None): smollm2-135m and fast_detectgpt (kept out of the cell's identity, so
    # cells of other detectors keep the keys and seeds they always had)
    scorer: str | None = None
    zeroshot_criterion: Literal["fast_detectgpt", "log_likelihood", "log_rank"] | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        _check_pool(self)
        for name in ("target_fpr", "oracle_recall", "oracle_fpr"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise UserError(f"params.{name} must be in [0, 1]; got {getattr(self, name)}")
        if not 0.0 < self.target_fpr < 1.0:
            raise UserError(f"params.target_fpr must be in (0, 1); got {self.target_fpr}")
        if not 1 <= self.detector_order <= 6:
            raise UserError(f"params.detector_order must be from 1 to 6; got {self.detector_order}")


@register
class Filtered(_PoolPolicy):
    name = "filtered"
    description = "pool as mix (real_fraction), drop what a detector flags as machine-written, train on the rest"
    Params = FilterParams
    measures = COMMON_MEASURES + DETECTOR_MEASURES + ("dropped_detector",)

    def __init__(self, params: Any) -> None:
        super().__init__(params)
        self._detector = None

    def check_family(self, family: Any) -> None:
        super().check_family(family)
        p = self.params
        # what the detector needs of the family: declared once, on its registered block
        needs = pipeline.BLOCKS.get(p.detector).requires
        if not satisfies(family, needs):
            raise UserError(f"params.detector = '{p.detector}' needs a family with "
                            f"{describe(needs)}; family {family.name} has none (choose "
                            f"another detector: oracle or likelihood)")
        if p.detector == "watermark" and family.watermark is None:
            raise UserError("params.detector = 'watermark' needs the family to watermark its "
                            "samples: set watermark = true")
        if p.detector == "zeroshot":
            pipeline.BLOCKS.get("zeroshot").check(p, "params")
        if p.detector in ("likelihood", "classifier", "zeroshot"):
            data = family.data
            if p.detector != "zeroshot" and not data.validation:
                raise UserError(f"the {p.detector} detector learns human text from the "
                                f"validation split, which is empty: set validation_share > 0")
            side = p.likelihood_side if p.detector == "likelihood" else "high"
            need, have = min_calibration_size(p.target_fpr, side), len(data.test)
            if have < need:
                raise UserError(f"params.target_fpr = {p.target_fpr:g} needs at least {need} "
                                f"human documents to calibrate the {p.detector} detector; the "
                                f"test split holds {have} (raise target_fpr or test_share, or "
                                f"use a larger corpus)")

    def detector(self, step: Step):
        if self._detector is None:   # fitted once per cell in each process
            self._detector = pipeline.detector_block(self.params.detector, self.params, step)
        return self._detector

    def blocks(self, step: Step) -> list:
        return [self.detector(step)]


@dataclass(frozen=True)
class CurateParams(MixParams):
    """real_fraction, real_source, pool_factor: the candidate pool, as for filtered.
    dedup: drop exact duplicates. near_dedup: MinHash-LSH Jaccard threshold of near
    duplicates on token 3-grams (0: off). quality_keep: share kept by quality, the
    per-token log-likelihood under a human-only trigram model (1: off). diversity_keep:
    share kept by a draw weighted toward documents with rare bigrams (1: off), which
    counters the loss of tails. cluster_cap: at most this many documents per
    near-duplicate cluster in the diversity step (0: no cap). pipeline: instead of those
    flags, the blocks in order as one string, e.g. "exact_dedup, near_dedup=0.8,
    top_quality=0.8, likelihood=0.05" (registered blocks: curation/pipeline.py).
    scorer, zeroshot_criterion: the language model and criterion of a pipeline's zeroshot
    block (as for filtered)."""

    real_fraction: float = 0.0
    pool_factor: float = 1.0
    dedup: bool = True
    near_dedup: float = 0.8
    quality_keep: float = 1.0
    diversity_keep: float = 1.0
    cluster_cap: int = 0
    pipeline: str | None = None   # unset: the flags above (kept out of the cell's identity)
    # unset (None): smollm2-135m and fast_detectgpt (kept out of the cell's identity, so
    # cells of other detectors keep the keys and seeds they always had)
    scorer: str | None = None
    zeroshot_criterion: Literal["fast_detectgpt", "log_likelihood", "log_rank"] | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        _check_pool(self)
        if self.pipeline is not None:
            pipeline.parse(self.pipeline)
            flags = {"dedup": True, "near_dedup": 0.8, "quality_keep": 1.0,
                     "diversity_keep": 1.0, "cluster_cap": 0}
            changed = [k for k, v in flags.items() if getattr(self, k) != v]
            if changed:
                raise UserError(f"params.pipeline and params.{changed[0]} both configure the "
                                f"curated blocks; give the pipeline alone")
        if not (self.near_dedup == 0.0 or 0.0 < self.near_dedup <= 1.0):
            raise UserError(f"params.near_dedup must be 0 (off) or in (0, 1]; got {self.near_dedup}")
        for name in ("quality_keep", "diversity_keep"):
            if not 0.0 < getattr(self, name) <= 1.0:
                raise UserError(f"params.{name} must be in (0, 1]; got {getattr(self, name)}")
        if self.cluster_cap < 0:
            raise UserError(f"params.cluster_cap must be >= 0 (0: no cap); got {self.cluster_cap}")


@register
class Curated(_PoolPolicy):
    name = "curated"
    description = "pool as mix (real_fraction), then exact dedup -> near dedup -> quality -> diversity selection"
    Params = CurateParams
    # Every registered block's reasons (a pipeline may hold any of them, detectors included).
    measures = COMMON_MEASURES + DETECTOR_MEASURES + tuple(f"dropped_{r}" for r in pipeline.reasons())

    def __init__(self, params: Any) -> None:
        super().__init__(params)
        self._blocks: list | None = None

    def check_family(self, family: Any) -> None:
        super().check_family(family)
        if self.params.pipeline is not None:
            pipeline.check(pipeline.parse(self.params.pipeline), family, "params.pipeline",
                           self.params)
        if self.params.quality_keep < 1.0 and not family.data.validation:
            raise UserError("the quality selection scores documents under a model of the "
                            "validation split, which is empty: set validation_share > 0")

    def blocks(self, step: Step) -> list:
        if self._blocks is None and self.params.pipeline is not None:
            self._blocks = [spec.build(number, step)
                            for spec, number in pipeline.parse(self.params.pipeline)]
        if self._blocks is None:
            p, data = self.params, step.family.data
            blocks: list = []
            if p.dedup:
                blocks.append(ExactDedup())
            if p.near_dedup:
                blocks.append(NearDedup(p.near_dedup))
            if p.quality_keep < 1.0:
                # Scored by a human model that never saw the pool's human (train) documents.
                known = reference_words(data.validation, len(data.vocab))
                quality = TopQuality(p.quality_keep).fit(restrict(data.validation, known),
                                                         len(data.vocab))
                blocks.append(SeenWords(quality, known))
            if p.diversity_keep < 1.0 or p.cluster_cap:
                blocks.append(DiversitySelection(p.diversity_keep,
                                                 max_per_cluster=p.cluster_cap or None))
            self._blocks = blocks
        return self._blocks


@dataclass(frozen=True)
class RecoveryParams:
    """recover_at: the first generation trained on real data again (>= 1).
    recovery_fraction: its share of real documents from then on (1: real data only)."""

    recover_at: int = 5
    recovery_fraction: float = 1.0

    def __post_init__(self) -> None:
        if self.recover_at < 1:
            raise UserError(f"params.recover_at must be >= 1; got {self.recover_at}")
        if not 0.0 < self.recovery_fraction <= 1.0:
            raise UserError(f"params.recovery_fraction must be in (0, 1]; got {self.recovery_fraction}")


@register
class Recovery(Policy):
    name = "recovery"
    description = "replace until generation recover_at, then recovery_fraction of real data (fixed pool) each generation"
    Params = RecoveryParams
    needs_samples = True

    def real_size(self, n_samples: int) -> int:
        return int(round(self.params.recovery_fraction * n_samples))

    def next_train(self, step: Step):
        if step.generation + 1 < self.params.recover_at:
            return step.synthetic
        k = self.real_size(step.n_samples)
        real = step.real_pool.subsample(k, step.stream)
        if k >= step.n_samples:
            return real
        return real.concat(step.synthetic.subsample(step.n_samples - k, step.stream))
