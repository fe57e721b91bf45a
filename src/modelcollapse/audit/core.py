"""``audit``: score one or more candidate corpora against a human reference.

Reads like the audit runs: prepare the reference once (:mod:`.reference`); for each
candidate, in the order given, stream it once (:mod:`.stream`), make the signals of its sums
(:mod:`.counted`) and of its reservoir sample (:mod:`.lexical`, :mod:`.sampled`), and
collect the caveats that apply.
"""

from __future__ import annotations

import logging
import numbers
from collections.abc import Sequence

import numpy as np

from ..curation import Watermark, WatermarkDetector
from ..curation.calibration import check_fpr, check_side
from ..data import Vocabulary, read_documents
from ..errors import UserError
from ..randomness import SeedTree
from . import counted, lexical, sampled
from .reference import Reference, prepare_reference
from .result import EXAMPLE_CHARS, N_EXAMPLES, AuditResult, CandidateAudit, Signal
from .stream import stream_candidate

log = logging.getLogger("modelcollapse.audit")

#: Below this many candidate documents a caveat says the intervals are wide.
RECOMMENDED_CANDIDATE_DOCS = 100
#: Fewer scored documents than this and the perplexity buckets are not compared: a
#: bootstrap of three shares from a handful of documents is degenerate (3 documents in one
#: bucket happen 1 time in 9 by chance, yet every resample repeats them).
MIN_BUCKET_DOCS = 30
#: The watermark z-score at which a document counts as a hit (WatermarkDetector's default:
#: a false-positive rate of about 3e-5 per document on unwatermarked text).
WATERMARK_Z = 4.0


def _positive_int(name: str, value, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
        raise UserError(f"{name} must be an integer >= {minimum}; got {value!r}")
    return int(value)


def _watermark_vocabulary(reference: str, text_field: str | None) -> Vocabulary:
    """The vocabulary the loop's n-gram family builds for ``reference`` with its default
    parameters: its token ids are the ones a watermarked loop hashed."""
    from ..models.ngram import NGramParams, file_stamp, prepare
    p = NGramParams(corpus=reference, text_field=text_field or "text")
    return prepare(p.corpus, p.text_field, p.unit, p.tokenizer, p.lowercase, p.bpe_vocab,
                   p.min_count, p.validation_share, p.test_share, p.split_seed,
                   file_stamp(p.corpus)).vocab


def _first_document(spec: str, text_field: str | None) -> None:
    """Read a corpus's first document: a missing, empty, binary or undecodable start raises
    its UserError here (errors further in surface while streaming)."""
    documents = read_documents(spec, text_field=text_field)
    try:
        next(documents)
    finally:
        documents.close()


def audit_settings(*, text_field: str | None = None, ai_reference: str | None = None,
                   sample_tokens: int = 20_000, n_boot: int = 200,
                   lexical_replicates: int | None = None, target_fpr: float = 0.01,
                   watermark: Watermark | None = None, embed: bool = False, seed: int = 0,
                   detector_side: str = "low", chunk_docs: int = 10_000,
                   max_sample_docs: int = 20_000, max_reference_docs: int = 50_000,
                   bleu_docs: int = 200, dedup_docs: int = 10_000, embed_docs: int = 256
                   ) -> dict:
    """The options of :func:`audit`, checked, as the JSON's ``settings`` records them."""
    if watermark is not None and not isinstance(watermark, Watermark):
        raise UserError(f"watermark must be a modelcollapse.curation.Watermark; "
                        f"got {type(watermark).__name__}")
    for name, value in (("text_field", text_field), ("ai_reference", ai_reference)):
        if value is not None and not isinstance(value, str):
            raise UserError(f"{name} must be a string; got {value!r}")
    return {
        "sample_tokens": _positive_int("sample_tokens", sample_tokens, lexical.MIN_SAMPLE_TOKENS),
        "n_boot": _positive_int("n_boot", n_boot, 20),
        "lexical_replicates": _positive_int("lexical_replicates", lexical.REPLICATES
                                            if lexical_replicates is None
                                            else lexical_replicates, 10),
        "target_fpr": check_fpr(target_fpr), "seed": _positive_int("seed", seed, 0),
        "detector_side": check_side(detector_side),
        "chunk_docs": _positive_int("chunk_docs", chunk_docs),
        "max_sample_docs": _positive_int("max_sample_docs", max_sample_docs, 10),
        "max_reference_docs": _positive_int("max_reference_docs", max_reference_docs),
        "bleu_docs": _positive_int("bleu_docs", bleu_docs, 2),
        "dedup_docs": _positive_int("dedup_docs", dedup_docs, 2),
        "embed_docs": _positive_int("embed_docs", embed_docs, 10), "embed": bool(embed),
        "text_field": text_field, "ai_reference": ai_reference,
        "watermark": None if watermark is None else watermark.as_record(),
    }


def audit(candidates: Sequence[str] | str, reference: str, *, text_field: str | None = None,
          ai_reference: str | None = None, sample_tokens: int = 20_000, n_boot: int = 200,
          lexical_replicates: int | None = None, target_fpr: float = 0.01,
          watermark: Watermark | None = None,
          watermark_vocabulary: Vocabulary | None = None, embed: bool = False,
          seed: int = 0, detector_side: str = "low", chunk_docs: int = 10_000,
          max_sample_docs: int = 20_000, max_reference_docs: int = 50_000,
          bleu_docs: int = 200, dedup_docs: int = 10_000, embed_docs: int = 256,
          executor: str = "local", workers: int = 1, address: str | None = None
          ) -> AuditResult:
    """Audit ``candidates`` (corpus specs, a trend in the order given) against the human
    ``reference`` (a corpus spec; see :func:`modelcollapse.data.read_documents`).

    text_field : the field / column of the text in .jsonl, .csv, .parquet and hf: corpora.
    ai_reference : a corpus of AI-written text for the AI share; default: generated by the
        reference's trigram model. sample_tokens : tokens per equal-size sample of the
        lexical signals. n_boot : bootstrap replicates (perplexity shift, AI share).
        lexical_replicates : equal-size sample pairs of the lexical signals (default 50:
        each recomputes every lexical metric, ~0.15 s at 20,000 tokens, and the interval
        needs only their mean and spread). target_fpr : the detector's false-positive
        rate on human text. watermark : green-list parameters;
        adds ``watermark_hit_rate``. watermark_vocabulary : the vocabulary whose ids the
        watermark hashed (default: the loop's n-gram vocabulary of ``reference``). embed :
        add ``semantic_coverage`` (needs the ``embed`` extra). seed : every random choice.
        detector_side : "low" (too-typical text, the default), "high" or "two-sided".
        chunk_docs : documents read at once. max_sample_docs : the reservoir sample per
        candidate (and the reference's lexical pool). max_reference_docs : reference
        documents read. bleu_docs, dedup_docs, embed_docs : documents per self-BLEU, near
        duplicate and embedding sample. executor, workers, address : audit the candidates in
        parallel, one task each, with a sweep executor ('local': a process pool of
        ``workers``; 'ray': a local Ray cluster on 127.0.0.1 or the one at ``address``).
        Every candidate's numbers depend only on its spec and the seed, so they are the
        same whatever the executor.

    Unusable input (unreadable, empty, binary or non-UTF-8 files; a reference below the
    minimum size) raises :class:`~modelcollapse.errors.UserError`.
    """
    specs = [candidates] if isinstance(candidates, str) else list(candidates)
    if not specs:
        raise UserError("give at least one candidate corpus to audit")
    from ..sweep.executors import make_executor
    runner = make_executor(executor, workers, address)   # bad names fail before any work
    settings = audit_settings(
        text_field=text_field, ai_reference=ai_reference, sample_tokens=sample_tokens,
        n_boot=n_boot, lexical_replicates=lexical_replicates, target_fpr=target_fpr,
        watermark=watermark, embed=embed, seed=seed, detector_side=detector_side,
        chunk_docs=chunk_docs, max_sample_docs=max_sample_docs,
        max_reference_docs=max_reference_docs, bleu_docs=bleu_docs, dedup_docs=dedup_docs,
        embed_docs=embed_docs)
    for spec in specs:   # unusable candidates fail now, before the reference is modelled
        _first_document(spec, text_field)
    ref = prepare_reference(reference, text_field=text_field, ai_reference=ai_reference,
                            target_fpr=settings["target_fpr"],
                            detector_side=settings["detector_side"], seed=settings["seed"],
                            max_reference_docs=settings["max_reference_docs"])
    wm = None
    if watermark is not None:
        wm = WatermarkDetector(watermark, WATERMARK_Z)
        if watermark_vocabulary is None:
            watermark_vocabulary = _watermark_vocabulary(reference, text_field)
    return audit_prepared(specs, ref, settings, wm, watermark_vocabulary, runner)


def audit_prepared(specs: list[str], ref: Reference, settings: dict,
                   watermark: WatermarkDetector | None = None,
                   watermark_vocabulary: Vocabulary | None = None,
                   runner=None) -> AuditResult:
    """The audit of candidates against an already prepared reference (``settings`` as
    :func:`audit` records them); the calibration study uses it to share one reference.
    ``runner``: a sweep executor (default: this process) that audits the candidates as
    parallel tasks."""
    seeds = SeedTree(settings["seed"], "audit")
    rng = np.random.default_rng(seeds.sequence("reference-pool"))
    pick = np.sort(rng.permutation(len(ref.texts))[:settings["max_sample_docs"]])
    ref_pool = lexical.pool([ref.texts[i] for i in pick], ref.tokenizer)
    if runner is None:
        from ..sweep.executors import LocalExecutor
        runner = LocalExecutor(1)
    shared = (ref, ref_pool, settings, seeds, watermark, watermark_vocabulary)
    results = runner.map(_audit_shared, specs, shared)
    record = ref.as_record()
    record["lexical_pool_docs"] = len(ref_pool.texts)
    return AuditResult(record, results, settings)


def _audit_shared(spec: str, shared: tuple) -> CandidateAudit:
    """One candidate's audit as an executor task (``shared``: what every task needs)."""
    return _audit_one(spec, *shared)


def _audit_one(spec: str, ref: Reference, ref_pool: lexical.Pool, settings: dict,
               seeds: SeedTree, watermark: WatermarkDetector | None,
               watermark_vocabulary: Vocabulary | None) -> CandidateAudit:
    # Every random choice for a candidate is seeded by its spec, not its position, so its
    # numbers do not depend on which other candidates are audited with it.
    def rng(stage: str) -> np.random.Generator:
        return np.random.default_rng(seeds.sequence(stage, spec))

    tally, reservoir = stream_candidate(
        spec, ref, text_field=settings["text_field"], chunk_docs=settings["chunk_docs"],
        max_sample_docs=settings["max_sample_docs"], rng=rng("reservoir"),
        watermark=watermark, watermark_vocab=watermark_vocabulary)
    if tally.n_docs > len(reservoir.items):
        log.info("%s: sample-based signals use %d of %d documents", spec,
                 len(reservoir.items), tally.n_docs)
    cand_pool = lexical.pool(reservoir.items, ref.tokenizer)
    domain, caveats = counted.domain_check(tally, ref)
    caveats = ref.caveats + caveats
    if tally.n_docs < RECOMMENDED_CANDIDATE_DOCS:
        caveats.append({"kind": "candidate_small", "n_docs": tally.n_docs,
                        "recommended": RECOMMENDED_CANDIDATE_DOCS,
                        "message": f"the candidate has {tally.n_docs} documents, fewer than "
                                   f"{RECOMMENDED_CANDIDATE_DOCS}; its intervals are wide, so "
                                   f"few signals can leave ok"})
    signals, ai = _model_signals(tally, ref, cand_pool, settings["n_boot"], rng, caveats)
    if watermark is not None:
        signals["watermark_hit_rate"] = counted.watermark_rate(tally, watermark)
    signals.update(_sample_signals(cand_pool, ref_pool, settings, rng, caveats))
    return CandidateAudit(spec, tally.n_docs, tally.n_tokens,
                          {name: signals[name] for name in _ORDER if name in signals}, ai,
                          caveats, {**domain, "copies_of_reference_docs": tally.n_copies,
                                    "sample_docs": len(reservoir.items)},
                          [t[:EXAMPLE_CHARS] for t in reservoir.items[:N_EXAMPLES]])


def _model_signals(tally, ref: Reference, cand_pool: lexical.Pool, n_boot: int, rng,
                   caveats: list[dict]) -> tuple[dict[str, Signal], Signal | None]:
    """perplexity_shift, detector_positive_rate and ai_share (caveats appended in place)."""
    model_based = ["perplexity_shift", "detector_positive_rate", "ai_share"]
    if tally.n_copies:
        caveats.append({"kind": "reference_overlap", "n_docs": tally.n_copies,
                        "message": f"{tally.n_copies} candidate documents are copies of "
                                   f"documents the reference model was trained on; they are "
                                   f"left out of {', '.join(model_based)}"})
    if not tally.n_scored:
        caveats.append({"kind": "signal_unavailable", "signals": model_based,
                        "message": "every candidate document is a copy of a reference model "
                                   "training document, so no model-based signal is measured"})
        return {}, None
    signals = {"detector_positive_rate": counted.detector_rate(tally, ref)}
    if tally.n_scored >= MIN_BUCKET_DOCS:
        signals["perplexity_shift"] = counted.perplexity_shift(tally, ref, rng("perplexity"),
                                                               n_boot)
    else:
        caveats.append({"kind": "signal_unavailable", "signals": ["perplexity_shift"],
                        "message": f"perplexity_shift needs at least {MIN_BUCKET_DOCS} scored "
                                   f"documents; the candidate has {tally.n_scored}"})
    # the AI-share bootstrap draws from the sampled documents that were scored
    sample = [d for t, d in zip(cand_pool.texts, ref.vocab.encode(cand_pool.tokens))
              if t not in ref.model_texts]
    return signals, counted.ai_share(tally, ref, sample, rng("ai_share"), n_boot)


def _sample_signals(cand_pool: lexical.Pool, ref_pool: lexical.Pool, settings: dict, rng,
                    caveats: list[dict]) -> dict[str, Signal]:
    """The lexical signals, near duplicates and semantic coverage (caveats appended)."""
    signals: dict[str, Signal] = {}
    size = lexical.sample_size(settings["sample_tokens"], cand_pool, ref_pool)
    if size < lexical.MIN_SAMPLE_TOKENS:
        caveats.append({"kind": "signal_unavailable", "signals": ["lexical"],
                        "message": f"the lexical signals need samples of at least "
                                   f"{lexical.MIN_SAMPLE_TOKENS} tokens; the candidate sample "
                                   f"holds {cand_pool.n_tokens} tokens (a sample may take half) "
                                   f"and the reference pool {ref_pool.n_tokens} (a third)"})
    else:
        if size < settings["sample_tokens"]:
            caveats.append({"kind": "sample_reduced", "sample_tokens": size,
                            "message": f"lexical samples hold {size} tokens, not "
                                       f"{settings['sample_tokens']}: a sample may take half "
                                       f"of the candidate's {cand_pool.n_tokens} sampled tokens "
                                       f"and a third of the reference's {ref_pool.n_tokens}"})
        lex, missing = lexical.lexical_signals(cand_pool, ref_pool, size,
                                               settings["lexical_replicates"], rng("lexical"),
                                               settings["bleu_docs"])
        signals.update(lex)
        if missing:
            caveats.append({"kind": "signal_unavailable", "signals": missing,
                            "message": f"{', '.join(missing)} could not be measured: a sample "
                                       f"lacks the n-grams or sentences they need (documents "
                                       f"too short)"})
    # Both need optional packages (datasketch; sentence-transformers): without them the
    # signal is absent and a caveat says what to install, the rest of the audit stands.
    optional = [("near_duplicate_rate", sampled.near_duplicate_rate, settings["dedup_docs"])]
    if settings["embed"]:
        optional.append(("semantic_coverage", sampled.semantic_coverage, settings["embed_docs"]))
    for name, measure, max_docs in optional:
        try:
            signals[name] = measure(cand_pool, ref_pool, max_docs, rng(name))
        except UserError as e:
            caveats.append({"kind": "signal_unavailable", "signals": [name],
                            "message": f"{name} is absent: {e}"})
    return signals


_ORDER = ("distinct_1_delta", "distinct_2_delta", "distinct_3_delta", "distinct_4_delta",
          "entropy_delta", "compression_ratio_delta", "self_bleu_delta", "tail_coverage",
          "perplexity_shift", "near_duplicate_rate", "detector_positive_rate",
          "watermark_hit_rate", "semantic_coverage")
