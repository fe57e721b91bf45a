"""The built-in audit signals, each registered with its rule, definition and order.

Computation follows the order of this file (model-based signals first, so their caveats come
first); the JSON lists signals by ``order``. Thresholds: see :mod:`.verdicts` for how a rule
turns an interval into ok / watch / alert.
"""

from __future__ import annotations

from ..errors import UserError
from . import counted, diversity, sampled
from .reference import llm_written
from .signals import Context, signal
from .verdicts import Rule

#: Fewer scored documents than this and the perplexity buckets are not compared: a
#: bootstrap of three shares from a handful of documents is degenerate (3 documents in one
#: bucket happen 1 time in 9 by chance, yet every resample repeats them).
MIN_BUCKET_DOCS = 30
MODEL_BASED = ["perplexity_shift", "detector_positive_rate", "ai_share"]

_DIVERSITY = "the reference's value on an equal-size sample (the delta's 0)"
_LEXICAL = tuple(diversity.DEFINITIONS)


def model_gate(ctx: Context) -> bool:
    """Whether the model-based signals can be measured (caveats appended once)."""
    tally = ctx.tally
    if tally.n_copies:
        ctx.caveats.append({"kind": "reference_overlap", "n_docs": tally.n_copies,
                            "message": f"{tally.n_copies} candidate documents are copies of "
                                       f"documents the reference model was trained on; they "
                                       f"are left out of {', '.join(MODEL_BASED)}"})
    if not tally.n_scored:
        ctx.caveats.append({"kind": "signal_unavailable", "signals": MODEL_BASED,
                            "message": "every candidate document is a copy of a reference "
                                       "model training document, so no model-based signal "
                                       "is measured"})
    return bool(tally.n_scored)


@signal("detector_positive_rate",
        rule=Rule("higher", 0.05, 0.20, "absolute",
                  "target_fpr, the rate on human text by calibration"),
        definition="Share of candidate documents whose log-perplexity under the reference "
                   "trigram model is past the threshold that flags target_fpr of the "
                   "reference's held-out human documents.", order=110)
def _detector_rate(ctx: Context):
    ctx.model_scored = model_gate(ctx)   # the first model-based signal runs the gate
    return counted.detector_rate(ctx.tally, ctx.ref) if ctx.model_scored else None


@signal("perplexity_shift",
        rule=Rule("higher", 0.10, 0.25, "absolute", "0: a third of the documents in each "
                                                    "bucket"),
        definition="Total variation distance between the candidate's head / middle / tail "
                   "perplexity-bucket shares (terciles of the held-out reference) and thirds.",
        order=90)
def _perplexity_shift(ctx: Context):
    if not ctx.model_scored:
        return None
    if ctx.tally.n_scored < MIN_BUCKET_DOCS:
        ctx.caveats.append({"kind": "signal_unavailable", "signals": ["perplexity_shift"],
                            "message": f"perplexity_shift needs at least {MIN_BUCKET_DOCS} "
                                       f"scored documents; the candidate has "
                                       f"{ctx.tally.n_scored}"})
        return None
    return counted.perplexity_shift(ctx.tally, ctx.ref, ctx.rng("perplexity"),
                                    ctx.settings.n_boot)


@signal("ai_share", rule=Rule("higher", 0.10, 0.30, "absolute", "0: no AI-written documents"),
        definition="Estimated share of AI-written documents: maximum likelihood of the "
                   "candidate as a human / AI mixture on word-occurrence log-likelihood ratios "
                   "(Liang et al. 2024).", order=1000)
def _ai_share(ctx: Context):
    if not ctx.model_scored:
        return None
    # the AI-share bootstrap draws from the sampled documents that were scored
    sample = [d for t, d in zip(ctx.cand_pool.texts, ctx.ref.vocab.encode(ctx.cand_pool.tokens))
              if t not in ctx.ref.model_texts]
    # Judged only when the AI reference can stand for LLM text (lmsignals' caveat)
    return counted.ai_share(ctx.tally, ctx.ref, sample, ctx.rng("ai_share"),
                            ctx.settings.n_boot, judged=llm_written(ctx.ref, ctx.settings))


@signal("watermark_hit_rate",
        rule=Rule("higher", 0.01, 0.05, "absolute",
                  "the z-test's false-positive rate on unwatermarked text"),
        definition="Share of candidate documents whose green-list z-score (Kirchenbauer et "
                   "al. 2023) reaches the threshold.", order=120)
def _watermark(ctx: Context):
    detector = ctx.extras.get("watermark")
    return None if detector is None else counted.watermark_rate(ctx.tally, detector)


@signal(*_LEXICAL,
        rule={**{f"distinct_{n}_delta": Rule("lower", 0.10, 0.25, "relative", _DIVERSITY)
                 for n in (1, 2, 3, 4)},
              # Entropy is in nats, a log scale: 5% of ~7 nats is ~30% fewer word types.
              "entropy_delta": Rule("lower", 0.05, 0.15, "relative", _DIVERSITY),
              "compression_ratio_delta": Rule("higher", 0.10, 0.25, "relative", _DIVERSITY),
              # self-BLEU is on sacrebleu's 0-100 scale; human prose scores ~5-30.
              "self_bleu_delta": Rule("higher", 5.0, 15.0, "absolute",
                                      "0 (no change), BLEU points"),
              "tail_coverage": Rule("lower", 0.10, 0.25, "relative",
                                    "the share a second, disjoint reference sample of the "
                                    "same size covers (the human baseline)")},
        # Relative thresholds of diversity: a fall of 10% of the reference's own value is
        # already outside what fresh human samples show at the sizes audited; 25% is a
        # collapsed text.
        definition=diversity.DEFINITIONS,
        order={name: 10 + i for i, name in enumerate(_LEXICAL)})
def _lexical(ctx: Context):
    settings, cand_pool, ref_pool = ctx.settings, ctx.cand_pool, ctx.ref_pool
    size = diversity.sample_size(settings.sample_tokens, cand_pool, ref_pool)
    if size < diversity.MIN_SAMPLE_TOKENS:
        ctx.caveats.append({"kind": "signal_unavailable", "signals": ["lexical"],
                            "message": f"the lexical signals need samples of at least "
                                       f"{diversity.MIN_SAMPLE_TOKENS} tokens; the candidate "
                                       f"sample holds {cand_pool.n_tokens} tokens (a sample "
                                       f"may take half) and the reference pool "
                                       f"{ref_pool.n_tokens} (a third)"})
        return None
    if size < settings.sample_tokens:
        ctx.caveats.append({"kind": "sample_reduced", "sample_tokens": size,
                            "message": f"lexical samples hold {size} tokens, not "
                                       f"{settings.sample_tokens}: a sample may take half "
                                       f"of the candidate's {cand_pool.n_tokens} sampled "
                                       f"tokens and a third of the reference's "
                                       f"{ref_pool.n_tokens}"})
    lex, missing = diversity.lexical_signals(cand_pool, ref_pool, size,
                                           settings.lexical_replicates, ctx.rng("lexical"),
                                           settings.bleu_docs)
    if missing:
        ctx.caveats.append({"kind": "signal_unavailable", "signals": missing,
                            "message": f"{', '.join(missing)} could not be measured: a sample "
                                       f"lacks the n-grams or sentences they need (documents "
                                       f"too short)"})
    return lex


def _optional(ctx: Context, name: str, measure, max_docs: int):
    """A signal that needs an optional package: absent with a caveat saying what to
    install when it is missing; the rest of the audit stands."""
    try:
        return measure(ctx.cand_pool, ctx.ref_pool, max_docs, ctx.rng(name))
    except UserError as e:
        ctx.caveats.append({"kind": "signal_unavailable", "signals": [name],
                            "message": f"{name} is absent: {e}"})
        return None


@signal("near_duplicate_rate",
        rule=Rule("higher", 0.05, 0.20, "absolute", "the reference's rate on as many documents"),
        definition="Share of sampled candidate documents that near-duplicate an earlier one "
                   "(MinHash, Jaccard >= 0.8 on word 3-grams), against the reference's rate.",
        order=100)
def _near_duplicates(ctx: Context):
    return _optional(ctx, "near_duplicate_rate", sampled.near_duplicate_rate,
                     ctx.settings.dedup_docs)


@signal("semantic_coverage",
        rule=Rule("lower", 0.10, 0.25, "relative",
                  "the coverage a second, disjoint reference sample reaches"),
        definition="Share of reference documents whose nearest-neighbour embedding ball holds "
                   "a candidate document (coverage, Naeem et al. 2020).", order=130)
def _semantic(ctx: Context):
    if not ctx.settings.embed:
        return None
    return _optional(ctx, "semantic_coverage", sampled.semantic_coverage,
                     ctx.settings.embed_docs)
