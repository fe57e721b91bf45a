"""Curation pipelines configured in the study, and the one registry of curation blocks.

A ``curated`` cell may give its blocks as a list in one string, run in order::

    [params]
    pipeline = "exact_dedup, near_dedup=0.8, top_quality=0.8, likelihood=0.05"

Each entry is a registered block name with an optional number (its one setting: a threshold,
a kept share, a target false-positive rate). A list of such strings sweeps pipelines. Every
block declares the reasons it drops documents for, so the run records ``dropped_<reason>``
for each, and what it needs of the family (capabilities; a validation split for the blocks
that judge with a human reference). Blocks that judge documents see only the words of their
human reference (:class:`~modelcollapse.curation.curated.SeenWords`).

To add a block: a builder function registered with :func:`block` (in a plugin file too).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ..capabilities import (Capability, GeneratesText, RefitsOnDocuments, Watermarks, describe,
                            satisfies)
from ..errors import UserError
from ..randomness import SHARED
from ..registry import Registry
from .base import Block
from .thresholds import min_calibration_size
from .dedup import ExactDedup, NearDedup
from .detectors import ClassifierDetector, DetectorFilter, LikelihoodDetector, OracleDetector
from .selection import DiversitySelection, TopQuality
from .watermark import WatermarkDetector
from .zeroshot import check_scorer, zeroshot_detector


@dataclass(frozen=True)
class BlockSpec:
    """A registered curation block: how to build it from its one number, and what it needs.

    reasons : the drop reasons it may give (each is recorded as ``dropped_<reason>``).
    setting : what its number means (shown by ``modelcollapse list``); default : the number
    when none is given (None: the block takes no number). requires : family capabilities.
    reference : True when it judges with the human reference (needs a validation split).
    calibrates : the side ('high', 'low', 'two-sided') of a threshold calibrated on the test
    split to the block's number as a target FPR (the split must hold enough documents); ''
    when none. check : ``check(params, where)`` raises UserError for policy parameters the
    block reads (e.g. a scorer model that cannot be found), before anything runs.
    """

    name: str
    build: Callable[[float | None, Any], Block]
    reasons: tuple[str, ...]
    setting: str = ""
    default: float | None = None
    requires: tuple[type[Capability], ...] = ()
    reference: bool = False
    detector: bool = False
    maximum: float = 1.0
    calibrates: str = ""
    check: Callable[[Any, str], None] | None = None


BLOCKS: Registry[BlockSpec] = Registry("curation block")


def block(name: str, *, reasons: tuple[str, ...], setting: str = "", default: float | None = None,
          requires: tuple[type[Capability], ...] = (), reference: bool = False,
          detector: bool = False, maximum: float = 1.0, calibrates: str = "",
          check: Callable[[Any, str], None] | None = None):
    """Register ``build(number, step) -> Block`` as curation block ``name`` (its number, when
    it takes one, must lie in (0, maximum]). ``step.params`` holds the policy's parameters."""
    def wrap(build: Callable[[float | None, Any], Block]) -> Callable[[float | None, Any], Block]:
        BLOCKS.add(name, BlockSpec(name, build, tuple(reasons), setting, default,
                                   tuple(requires), reference, detector, maximum, calibrates,
                                   check))
        return build
    return wrap


def parse(text: str, where: str = "params.pipeline") -> list[tuple[BlockSpec, float | None]]:
    """'exact_dedup, near_dedup=0.8' -> [(spec, None), (spec, 0.8)], each checked."""
    out = []
    for item in (part.strip() for part in str(text).split(",")):
        if not item:
            continue
        name, eq, value = (s.strip() for s in item.partition("="))
        spec = BLOCKS.get(name)
        if eq:
            if spec.default is None:
                raise UserError(f"{where}: block {name} takes no setting; got '{item}'")
            try:
                number = float(value)
            except ValueError:
                raise UserError(f"{where}: block {name} takes a number ({spec.setting}); "
                                f"got '{value}'") from None
        else:
            number = spec.default
        if number is not None and not 0.0 < number <= spec.maximum:
            raise UserError(f"{where}: {name}'s {spec.setting} must be in (0, {spec.maximum:g}]; "
                            f"got {number:g}")
        out.append((spec, number))
    if not out:
        raise UserError(f"{where} names no block; give e.g. 'exact_dedup, near_dedup=0.8'")
    return out


def check(pipeline: list[tuple[BlockSpec, float | None]], family: Any, where: str,
          params: Any = None) -> None:
    """Refuse, before anything runs, a block the family cannot feed (or whose policy
    parameters, ``params``, are wrong)."""
    for spec, number in pipeline:
        if not satisfies(family, spec.requires):
            raise UserError(f"{where}: block {spec.name} needs a family with "
                            f"{describe(spec.requires)}; family {family.name} has none")
        if Watermarks in spec.requires and family.watermark is None:
            raise UserError(f"{where}: block {spec.name} needs the family to watermark its "
                            f"samples: set watermark = true")
        if spec.reference and not family.data.validation:
            raise UserError(f"{where}: block {spec.name} judges with a model of the validation "
                            f"split, which is empty: set validation_share > 0")
        if spec.calibrates and number is not None:
            need, have = min_calibration_size(number, spec.calibrates), len(family.data.test)
            if have < need:
                raise UserError(f"{where}: block {spec.name}={number:g} needs at least {need} "
                                f"human documents to calibrate its threshold; the test split "
                                f"holds {have} (raise the target FPR or test_share)")
        if spec.check is not None and params is not None:
            spec.check(params, "params")


def _judge(step: Any, make: Callable[[list, list, int], Block]) -> Block:
    """A block judging with the human reference, shown only the reference's words."""
    from .curated import SeenWords, reference_words, restrict
    data = step.family.data
    known = reference_words(data.validation, len(data.vocab))
    return SeenWords(make(restrict(data.validation, known), restrict(data.test, known),
                          len(data.vocab)), known)


@block("exact_dedup", reasons=("exact_duplicate",))
def _exact(number: float | None, step: Any) -> Block:
    return ExactDedup()


@block("near_dedup", reasons=("near_duplicate",), setting="MinHash Jaccard threshold", default=0.8)
def _near(number: float | None, step: Any) -> Block:
    return NearDedup(number)


@block("top_quality", reasons=("low_quality",), setting="share kept", default=0.8, reference=True)
def _quality(number: float | None, step: Any) -> Block:
    return _judge(step, lambda validation, test, V: TopQuality(number).fit(validation, V))


@block("diversity", reasons=("low_diversity",), setting="share kept", default=0.5)
def _diversity(number: float | None, step: Any) -> Block:
    return DiversitySelection(number)


@block("cluster_cap", reasons=("cluster_cap", "low_diversity"), setting="documents per near-duplicate cluster",
       default=1, maximum=1e6)
def _cap(number: float | None, step: Any) -> Block:
    return DiversitySelection(1.0, max_per_cluster=int(number))


def detector_block(kind: str, p: Any, step: Any) -> Block:
    """The detector ``kind`` with settings ``p`` (a FilterParams), as a filtering block."""
    family = step.family
    if kind == "oracle":
        return DetectorFilter(OracleDetector(p.oracle_recall, p.oracle_fpr))
    if kind == "watermark":
        return DetectorFilter(WatermarkDetector(family.watermark, p.watermark_z))
    if kind == "likelihood":
        def make(validation, test, V):
            det = LikelihoodDetector(p.detector_order, p.target_fpr, side=p.likelihood_side)
            return DetectorFilter(det.fit(validation, test, V))
        return _judge(step, make)
    if kind == "classifier":
        # Machine-written training text comes from a held-out generation-0 model: fitted on
        # the real train split, sampled with the loop's settings.
        from .curated import reference_words, restrict
        data = family.data
        rng = step.stream.seeds.generator("curate", SHARED, "classifier")
        generated = family.generate(family.fit_one(data.train), len(data.validation), rng,
                                    step.sampling)
        known = reference_words(data.validation, len(data.vocab))

        def make(validation, test, V):
            return DetectorFilter(ClassifierDetector(p.target_fpr, seed=0).fit(
                validation, restrict(generated, known), test))
        return _judge(step, make)
    if kind == "zeroshot":
        # A language model reads the text; it learns nothing from the splits, so it is not
        # shown the reference's words only (SeenWords): the threshold is set on the test split.
        return DetectorFilter(zeroshot_detector(family, p.scorer, p.zeroshot_criterion,
                                                p.target_fpr))
    raise UserError(f"unknown detector '{kind}'")


#: The policy parameters a detector block reads besides its number (from ``step.params``).
OPTIONS = {"zeroshot": ("scorer", "zeroshot_criterion")}


def _check_zeroshot(params: Any, where: str) -> None:
    check_scorer(params.scorer, f"{where}.scorer")


def _detector(kind: str, setting: str, **requires: Any):
    def build(number: float | None, step: Any) -> Block:
        from .curated import FilterParams
        field = {"oracle": "oracle_recall", "watermark": "watermark_z"}.get(kind, "target_fpr")
        options = {k: getattr(step.params, k) for k in OPTIONS.get(kind, ())
                   if hasattr(step.params, k)}
        return detector_block(kind, FilterParams(**{field: number}, **options), step)
    return block(kind, reasons=("detector",), setting=setting, detector=True, **requires)(build)


_detector("oracle", "recall (flags machine-written documents from provenance)", default=0.9)
_detector("likelihood", "target false-positive rate", default=0.05, reference=True,
          calibrates="two-sided")
_detector("classifier", "target false-positive rate", default=0.05, reference=True,
          requires=(RefitsOnDocuments,), calibrates="high")
_detector("zeroshot", "target false-positive rate (scorer model: params.scorer)", default=0.05,
          requires=(GeneratesText,), calibrates="high", check=_check_zeroshot)
_detector("watermark", "z threshold", default=4.0, requires=(Watermarks,), maximum=100.0)


def reasons() -> tuple[str, ...]:
    """Every registered block's drop reasons, in registration order."""
    return tuple(dict.fromkeys(r for _, spec in BLOCKS.items() for r in spec.reasons))
