"""A curation detector scored by a real language model (zero-shot, no training).

:class:`ZeroShotDetector` flags documents whose criterion under a causal language model is
past a threshold calibrated on held-out human documents to ``target_fpr``:
``"fast_detectgpt"`` (Fast-DetectGPT's analytic sampling discrepancy, the default),
``"log_likelihood"`` (mean token log-likelihood), ``"log_rank"`` (minus the mean
log-rank) or ``"binoculars"`` (with a ``performer`` model sharing the tokenizer). Higher =
more machine-like for all four
(:mod:`modelcollapse.zeroshot.criteria`). Documents are ids in a loop's vocabulary:
``decode`` turns them back into text for the language model (e.g. a vocabulary's
detokenizer); texts can also be scored directly with :meth:`score_texts`.

    det = ZeroShotDetector("smollm2-135m", target_fpr=0.01).fit_texts(human_texts)
    keep = ~det.flag_texts(candidate_texts)

In the loop (``filtered`` with ``detector = "zeroshot"``, or the ``zeroshot`` block of a
``curated`` pipeline) the documents are the family's token ids, rendered as text by the
family's own ``data.detokenize`` (any family with the text-generation capability), scored
under the ``scorer`` model, and the threshold is calibrated on the test split (human
documents no model of the chain trains on), so the FPR measured on the pool's human
documents is out of sample. :func:`check_scorer` checks the spec before anything runs.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from ..errors import UserError
from .thresholds import calibrate, check_fpr
from .detectors import _Calibrated


class ZeroShotDetector(_Calibrated):
    """Zero-shot language-model detector (module docstring).

    Parameters: model (a spec for :func:`modelcollapse.zeroshot.model_cache.load_lm`, or a
    ``(model, tokenizer)`` pair), criterion, target_fpr, performer (spec or model, for
    Binoculars), decode (ids -> text), batch_tokens, device.
    Fitted: ``threshold_``, ``calibration_fpr_``.
    """

    reason = "zeroshot"
    side = "high"
    CRITERIA = ("fast_detectgpt", "log_likelihood", "log_rank", "binoculars")

    def __init__(self, model, criterion: str = "fast_detectgpt", target_fpr: float = 0.01,
                 performer=None, decode: Callable[[np.ndarray], str] | None = None,
                 batch_tokens: int = 2048, device: str = "cpu") -> None:
        if criterion not in self.CRITERIA:
            from ..errors import unknown
            raise unknown("zero-shot criterion", str(criterion), self.CRITERIA)
        if criterion == "binoculars" and performer is None:
            raise UserError("the binoculars criterion needs a performer model (same "
                            "tokenizer as the observer)")
        self.model_spec, self.criterion = model, criterion
        self.performer_spec, self.decode = performer, decode
        self.target_fpr = check_fpr(target_fpr, "zero-shot detector target_fpr")
        self.batch_tokens, self.device = int(batch_tokens), device
        self._loaded = None

    def _models(self):
        if self._loaded is None:
            from ..zeroshot.model_cache import check_pair, load_lm
            def get(spec):
                return load_lm(spec, self.device) if isinstance(spec, str) else tuple(spec)
            model, tok = get(self.model_spec)
            performer = None
            if self.performer_spec is not None:
                performer, perf_tok = get(self.performer_spec)
                check_pair(str(self.model_spec), tok, str(self.performer_spec), perf_tok)
            self._loaded = (model, tok, performer)
        return self._loaded

    def score_texts(self, texts: Sequence[str]) -> np.ndarray:
        """(N,) the criterion per text (higher = more machine-like; NaN under 3 tokens)."""
        from ..zeroshot import criteria, token_stats
        model, tok, performer = self._models()
        stats = token_stats(model, tok, list(texts), performer=performer,
                            batch_tokens=self.batch_tokens, device=self.device)
        return criteria(stats)[self.criterion]

    def scores(self, docs):
        if self.decode is None:
            raise UserError("ZeroShotDetector scores token ids only with decode= (ids -> "
                            "text); or call score_texts / flag_texts")
        return self.score_texts([self.decode(np.asarray(d)) for d in docs])

    def flag_scores(self, scores):
        # a document too short to score is never flagged
        return super().flag_scores(np.nan_to_num(np.asarray(scores, float), nan=-np.inf))

    def fit_texts(self, human_texts: Sequence[str]) -> ZeroShotDetector:
        """Calibrate the threshold on held-out human texts."""
        s = self.score_texts(human_texts)
        s = s[np.isfinite(s)]
        self.threshold_ = calibrate(s, self.target_fpr, self.side, type(self).__name__)
        self.calibration_fpr_ = float(self.threshold_.flag(s).mean())
        return self

    def fit(self, calibration_docs) -> ZeroShotDetector:
        """Calibrate on held-out human documents given as ids (needs ``decode``)."""
        if self.decode is None:
            raise UserError("ZeroShotDetector.fit on token ids needs decode= (ids -> text); "
                            "or call fit_texts")
        return self.fit_texts([self.decode(np.asarray(d)) for d in calibration_docs])

    def flag_texts(self, texts: Sequence[str]) -> np.ndarray:
        return self.flag_scores(self.score_texts(texts))


def check_scorer(spec, where: str = "params.scorer") -> None:
    """UserError, in one sentence and without loading anything, when ``spec`` names no
    loadable model (an unknown name, a name not fetched yet, a missing file or folder) or
    when torch / transformers are missing."""
    import importlib.util
    spec = DEFAULT_SCORER if spec is None else spec
    if not isinstance(spec, str) or not spec.strip():
        raise UserError(f"{where} must name a language model (a .gguf file, a model folder, "
                        f"a name fetched with 'modelcollapse models fetch', or a hub id); "
                        f"got {spec!r}")
    for package in ("torch", "transformers"):
        if importlib.util.find_spec(package) is None:
            raise UserError(f"the zeroshot detector needs {package}: pip install "
                            f"'modelcollapse[torch]'")
    try:
        from ..pretrained.load import resolve
    except ImportError:   # a build without modelcollapse.pretrained: load_lm reports it
        return
    try:
        resolve(spec)
    except UserError as e:
        text = str(e)
        raise UserError(text.replace("params.model", where) if "params.model" in text
                        else f"{where}: {text}") from None


#: The loop's scorer and criterion when the parameters leave them unset.
DEFAULT_SCORER, DEFAULT_CRITERION = "smollm2-135m", "fast_detectgpt"


def zeroshot_detector(family, scorer: str | None, criterion: str | None, target_fpr: float
                      ) -> ZeroShotDetector:
    """A :class:`ZeroShotDetector` reading ``family``'s documents (ids rendered by
    ``family.data.detokenize``), calibrated on its test split (None: the defaults above)."""
    data = family.data
    scorer, criterion = scorer or DEFAULT_SCORER, criterion or DEFAULT_CRITERION
    det = ZeroShotDetector(scorer, criterion=criterion, target_fpr=target_fpr,
                           decode=lambda ids: data.detokenize(np.asarray(ids)))
    return det.fit(data.test)
