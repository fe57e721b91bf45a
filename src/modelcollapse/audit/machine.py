"""The audit's language-model side: an LLM-written AI reference and zero-shot detectors.

With ``ai_generator`` (and no ``ai_reference`` file), :func:`generated_ai_texts` has the model
rewrite ``ai_reference_docs`` documents drawn (seeded) from the reference's *model* half
(:mod:`modelcollapse.zeroshot.generate`: continue, paraphrase, summarize-then-expand; cached
per document). The model half is used so that the held-out half, the human side of every
comparison, stays untouched by the generator.

With a scorer (``scorer``, default the generator) and optionally a Binoculars pair
(``observer`` / ``performer``), :func:`prepare_machine` scores the held-out human documents and
the AI reference once, calibrates each criterion's threshold to ``target_fpr`` on the human
scores (:func:`modelcollapse.zeroshot.calibrate`: achieved FPR cross-fitted, TPR on the AI
reference) and picks the *best* criterion. With human documents of the reference's model half
to learn from (``train_texts``, at most :data:`TRAIN_DOCS` of them) it also fits the
``combined`` criterion (:class:`modelcollapse.zeroshot.criteria.Combination`) on them against
the AI reference, calibrated like the others on the held-out half it never saw, its TPR out
of fold (:func:`~modelcollapse.zeroshot.criteria.cross_fitted_combination`). The best is the
one separating the two references best (AUROC, measured before any candidate is seen). Candidates are then scored chunk by chunk
while they stream (:class:`DocScores`).
"""

from __future__ import annotations

import heapq
import logging
from dataclasses import dataclass, field

import numpy as np

from ..errors import UserError
from ..zeroshot import Calibration, GenerationSettings, calibrate, criteria
from ..zeroshot.criteria import Combination, cross_fitted_combination, features
from ..zeroshot.scoring import TokenStats, cached_token_stats

log = logging.getLogger("modelcollapse.audit")

#: An AI reference written by a generator needs at least this many usable documents.
MIN_GENERATED_DOCS = 100
#: Generated documents shorter than this many words are dropped (a failed generation).
MIN_WORDS = 5
#: Tokens of a document scored by the language models (longer ones are cut).
MAX_SCORE_TOKENS = 256
#: Most machine-like documents kept per candidate for the report.
TOP_DOCS = 20
TOP_CHARS = 400
#: Human documents of the model half scored to fit the ``combined`` criterion (a seeded sample).
TRAIN_DOCS = 400


def _cache_folder(kind: str):
    from ..zeroshot.generate import cache_dir
    return cache_dir().parent / kind


def generated_ai_texts(ref_model_texts: list[str], settings, rng: np.random.Generator
                       ) -> tuple[list[str], dict]:
    """The generator's rewrites of a seeded sample of reference documents, and a record of
    how they were made (model, settings, modes)."""
    from ..zeroshot.generate import MODE_WEIGHTS, PROMPTS, ai_reference, model_identity
    from ..zeroshot.model_cache import load_lm
    model, tok = load_lm(settings.ai_generator, settings.device)
    n = min(settings.ai_reference_docs, len(ref_model_texts))
    pick = np.sort(rng.permutation(len(ref_model_texts))[:n])
    gen = GenerationSettings(seed=settings.seed)
    identity = model_identity(model, tok, settings.ai_generator)
    log.info("AI reference: %s rewrites %d reference documents (cached per document)",
             settings.ai_generator, n)
    made = ai_reference(model, tok, [ref_model_texts[i] for i in pick], gen, identity,
                        progress=lambda a, b: log.info("AI reference: %d / %d generated", a, b))
    texts = [t for _, t in made if len(t.split()) >= MIN_WORDS]
    if len(texts) < MIN_GENERATED_DOCS:
        raise UserError(f"the AI generator '{settings.ai_generator}' wrote {len(texts)} usable "
                        f"documents (of {n} asked, at least {MIN_WORDS} words each); the AI "
                        f"reference needs at least {MIN_GENERATED_DOCS}: raise "
                        f"--ai-reference-docs or use a model that writes text")
    modes = [m for m, t in made if len(t.split()) >= MIN_WORDS]
    record = {"generator": settings.ai_generator, "model_identity": identity,
              "documents_asked": n, "documents_kept": len(texts),
              "modes": {m: modes.count(m) for m in sorted(set(modes))},
              "sampling": gen.key(), "prompts": PROMPTS,
              "mode_weights": dict(zip(("continue", "paraphrase", "expand"), MODE_WEIGHTS))}
    return texts, record


@dataclass
class Scorer:
    """The loaded scoring models and how their scores are cached."""

    spec: str
    model: object
    tokenizer: object
    performer: object = None
    pair: tuple[str, str] | None = None
    batch_tokens: int = 2048
    device: str = "cpu"
    precision: str = "auto"

    def key(self) -> str:
        from ..zeroshot.generate import model_identity
        ident = model_identity(self.model, self.tokenizer, self.spec)
        if self.performer is not None:
            ident += "|" + model_identity(self.performer, self.tokenizer, self.pair[1])
        # stats=3: the first prediction left out; log-ranks, squares, rank buckets summed
        key = f"{ident}|max_tokens={MAX_SCORE_TOKENS}|stats=3"
        # float32 scores carry no precision in their key
        return key if self.precision == "float32" else f"{key}|precision={self.precision}"

    def stats(self, texts: list[str]) -> TokenStats:
        """:class:`TokenStats` of ``texts`` (cached per document)."""
        return cached_token_stats(self.model, self.tokenizer, texts, self._key,
                                  _cache_folder("scores"), performer=self.performer,
                                  batch_tokens=self.batch_tokens, max_tokens=MAX_SCORE_TOKENS,
                                  device=self.device, precision=self.precision)

    def scores(self, texts: list[str], combination: Combination | None = None
               ) -> dict[str, np.ndarray]:
        """(N,) per criterion for ``texts`` (and ``combined`` with a combination)."""
        if not texts:
            return {}
        stats = self.stats(texts)
        out = criteria(stats)
        if combination is not None:
            out["combined"] = combination(features(stats))
        return out

    def __post_init__(self) -> None:
        from ..zeroshot.scoring import resolve_precision
        self.precision = resolve_precision(self.precision, self.device)
        self._key = self.key()


@dataclass
class MachineReference:
    """Calibrated zero-shot detectors (module docstring). ``human`` / ``ai``: per criterion
    the (N,) scores of the held-out human and AI reference documents."""

    scorer: Scorer
    calibrations: dict[str, Calibration]
    best: str
    human: dict[str, np.ndarray]
    ai: dict[str, np.ndarray]
    combination: Combination | None = None
    train_docs: int = 0

    def scores(self, texts: list[str]) -> dict[str, np.ndarray]:
        """(N,) per calibrated criterion for ``texts``."""
        return self.scorer.scores(texts, self.combination)

    def as_record(self) -> dict:
        return {"scorer": self.scorer.spec,
                "binoculars": None if self.scorer.pair is None else
                {"observer": self.scorer.pair[0], "performer": self.scorer.pair[1]},
                "best_detector": self.best, "max_tokens": MAX_SCORE_TOKENS,
                "precision": self.scorer.precision,
                "detectors": {k: c.as_record() for k, c in self.calibrations.items()},
                "combination": None if self.combination is None else
                {**self.combination.as_record(), "human_docs_fitted": self.train_docs}}


def load_scorer(settings) -> Scorer | None:
    """The scorer of ``settings`` (None without any model). With a Binoculars pair the
    observer scores every criterion (one forward pass of each model per document);
    otherwise ``scorer`` (default: the generator). UserError when the pair's tokenizers
    differ."""
    from ..zeroshot.model_cache import check_pair, load_lm
    if settings.observer:
        obs, obs_tok = load_lm(settings.observer, settings.device)
        perf, perf_tok = load_lm(settings.performer, settings.device)
        check_pair(settings.observer, obs_tok, settings.performer, perf_tok)
        return Scorer(settings.observer, obs, obs_tok, perf,
                      (settings.observer, settings.performer), settings.lm_batch_tokens,
                      settings.device, settings.lm_precision)
    spec = settings.scorer_spec
    if spec is None:
        return None
    model, tok = load_lm(spec, settings.device)
    return Scorer(spec, model, tok, None, None, settings.lm_batch_tokens, settings.device,
                  settings.lm_precision)


def prepare_machine(scorer: Scorer, human_texts: list[str], ai_texts: list[str],
                    target_fpr: float, rng: np.random.Generator,
                    train_texts: list[str] = ()) -> MachineReference:
    """Score both references and calibrate every criterion (module docstring);
    ``train_texts``: human documents (not ``human_texts``) to fit ``combined`` on."""
    log.info("scoring %d human and %d AI reference documents with %s", len(human_texts),
             len(ai_texts), scorer.spec)
    human_stats, ai_stats = scorer.stats(human_texts), scorer.stats(ai_texts)
    human, ai = criteria(human_stats), criteria(ai_stats)
    cals = {k: calibrate(k, human[k], ai[k], target_fpr, rng) for k in human}
    combination, n_fitted, train = None, 0, list(train_texts)
    x_ai = features(ai_stats)
    if train and np.isfinite(x_ai).all(1).sum() >= Combination.MIN_DOCS:
        if len(train) > TRAIN_DOCS:
            train = [train[i] for i in np.sort(rng.permutation(len(train))[:TRAIN_DOCS])]
        x_train = features(scorer.stats(train))
        fitted = cross_fitted_combination(x_train, features(human_stats), x_ai, target_fpr, rng)
        if fitted is None:
            log.info("combined criterion skipped: too few usable documents to fit it")
        else:
            combination, human["combined"], ai["combined"] = fitted
            cals["combined"] = calibrate("combined", human["combined"], ai["combined"],
                                         target_fpr, rng)
            n_fitted = int(np.isfinite(x_train).all(1).sum())
    best = max(cals, key=lambda k: (np.nan_to_num(cals[k].auroc, nan=0.0), k))
    return MachineReference(scorer, cals, best, human, ai, combination, n_fitted)


@dataclass
class DocScores:
    """Per-document scores of one candidate, filled chunk by chunk (0-based indices in
    reading order), the flag counts, and the most machine-like documents."""

    machine: MachineReference | None
    rows: dict[str, list] = field(default_factory=dict)
    flagged: dict[str, int] = field(default_factory=dict)
    scored: dict[str, int] = field(default_factory=dict)
    _top: list = field(default_factory=list)
    seen: int = 0

    def add(self, texts: list[str], copies: list[bool], occurrence_llr: np.ndarray) -> None:
        """Score one chunk: ``occurrence_llr`` (len(texts),) NaN for copies."""
        n = len(texts)
        index = np.arange(self.seen, self.seen + n)
        self.seen += n
        cols = {"index": index, "copy_of_reference": np.asarray(copies, bool),
                "occurrence_llr": np.asarray(occurrence_llr, float),
                "n_words": np.fromiter((len(t.split()) for t in texts), np.int64, n)}
        if self.machine is not None:
            got = self.machine.scores(texts)
            for name, cal in self.machine.calibrations.items():
                s = np.asarray(got[name], float)
                ok = np.isfinite(s) & ~cols["copy_of_reference"]
                flag = cal.flag(np.where(ok, s, -np.inf))
                cols[name] = s
                cols[f"{name}_flagged"] = flag
                self.flagged[name] = self.flagged.get(name, 0) + int(flag.sum())
                self.scored[name] = self.scored.get(name, 0) + int(ok.sum())
            best = np.where(np.isfinite(cols[self.machine.best]), cols[self.machine.best],
                            -np.inf)
            cols["flagged"] = cols[f"{self.machine.best}_flagged"]
            for i in np.argsort(-best)[:TOP_DOCS]:
                item = (float(best[i]), int(index[i]), texts[i][:TOP_CHARS])
                if len(self._top) < TOP_DOCS:
                    heapq.heappush(self._top, item)
                else:
                    heapq.heappushpop(self._top, item)
        for k, v in cols.items():
            self.rows.setdefault(k, []).append(np.asarray(v))

    def columns(self) -> dict[str, np.ndarray]:
        return {k: np.concatenate(v) for k, v in self.rows.items()}

    def top(self) -> list[dict]:
        """The most machine-like documents, most machine-like first."""
        return [{"score": s, "index": i, "text": t}
                for s, i, t in sorted(self._top, key=lambda x: (-x[0], x[1]))]


HIST_BINS = 30


def summary(docs: DocScores, ref) -> dict:
    """The candidate's ``machine`` block of the JSON: per criterion the histograms of the
    candidate's, the held-out human and the AI reference's scores on shared bins, and the
    most machine-like documents under the best criterion. Empty without a language model."""
    machine = docs.machine
    if machine is None or not docs.rows:
        return {}
    cols = docs.columns()
    hists = {}
    for name in machine.calibrations:
        parts = {"candidate": cols[name], "human_reference": machine.human[name],
                 "ai_reference": machine.ai[name]}
        finite = np.concatenate([v[np.isfinite(v)] for v in parts.values()])
        if finite.size < 2:
            continue
        lo, hi = np.quantile(finite, [0.005, 0.995])
        if not hi > lo:
            hi = lo + 1.0
        edges = np.linspace(lo, hi, HIST_BINS + 1)
        hists[name] = {"edges": edges.tolist(),
                       "threshold": machine.calibrations[name].threshold,
                       **{k: np.histogram(np.clip(v[np.isfinite(v)], lo, hi), edges)[0].tolist()
                          for k, v in parts.items()}}
    return {"scorer": machine.scorer.spec, "best_detector": machine.best,
            "histograms": hists, "most_machine_like": docs.top()}
