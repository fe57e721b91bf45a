"""Metrics of the text families: fidelity, lexical diversity, tails, semantic diversity.

Every generation g is measured on an *evaluation corpus*: ``n_samples`` documents (or the
family's ``eval_docs``, when set) sampled
from model g with the loop's sampling settings, from the ``evaluate`` random stream (so
measuring never changes what the loop trains on). Lexical diversity is computed on an
equal-size sample of ``eval_tokens`` tokens of it (whole documents in random order, the last
one cut), because distinct-n, vocabulary size, entropy and Zipf fits all grow with the
number of tokens. The reference line of a ``truth`` metric is the same computation on the
real train split (documents drawn without a model).

Fidelity: ``perplexity_real`` is model g's perplexity on the real test split;
``perplexity_gen0`` is the perplexity of generation g's documents under the generation-0
model of the same chain (Shumailov et al. 2024 watch this fall: the samples become ever
more typical of what the first model found likely).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from .. import textmetrics as tm
from ..errors import UserError
from ..randomness import SHARED
from ..textmetrics.sampling import digest
from ..capabilities import GeneratesText, ScoresSequences
from .base import MetricContext, metric

TEXT = (GeneratesText,)
log = logging.getLogger("modelcollapse.textmetrics")


@dataclass
class Evaluation:
    """One replicate's evaluation corpus at one generation.

    docs : the documents (1-D int32 id arrays). equal : ``eval_tokens`` tokens of them as
    lists of ids (whole documents in random order, the last cut). bleu : up to
    ``bleu_docs`` of the documents as text, for self-BLEU.
    """

    docs: list[np.ndarray]
    equal: list[list[int]]
    bleu: list[str]
    equal_text: list[str]


def _build(family, docs: list[np.ndarray], rng: np.random.Generator, what: str) -> Evaluation:
    p = family.params
    lists = [d.tolist() for d in docs]
    have = sum(len(d) for d in lists)
    if have < p.eval_tokens:
        raise UserError(f"{what}: its {len(docs)} documents hold {have} tokens, fewer than "
                        f"eval_tokens = {p.eval_tokens} (lower eval_tokens; with lengths = "
                        f"'model' the model ends its documents early)")
    equal = tm.equal_size_sample(lists, p.eval_tokens, rng).docs
    pick = np.sort(rng.choice(len(docs), size=min(p.bleu_docs, len(docs)), replace=False))
    log.info("%s: self-BLEU on %d of %d documents, digest %s", what, pick.size, len(docs),
             digest(pick))
    render = family.data.detokenize
    return Evaluation(docs, equal, [render(docs[i]) for i in pick],
                      [render(np.asarray(d, dtype=np.int64)) for d in equal])


def evaluations(ctx: MetricContext) -> list[Evaluation]:
    """The evaluation corpora of every replicate in the chunk (cached per generation)."""
    from ..families.text import RealText
    state, family = ctx.state, ctx.family
    n = family.evaluation_size(ctx.n_samples)
    if isinstance(ctx.model, RealText):
        if state.real_evaluations is None:
            rng, train = state.seeds.generator("evaluate", SHARED, "real"), family.data.train
            docs = train if n >= len(train) else [
                train[i] for i in np.sort(rng.choice(len(train), n, replace=False))]
            state.real_evaluations = [_build(family, docs, rng, "the real train split")]
        return state.real_evaluations
    if state.evaluations is None or state.evaluations[0] != ctx.generation:
        out = []   # one generation's corpora at a time
        for lm, r in zip(ctx.model.lms, ctx.model.replicates):
            rng = state.seeds.generator("evaluate", int(r), "docs", ctx.generation)
            out.append(_build(family, family.generate(lm, n, rng, state.sampling), rng,
                              f"generation {ctx.generation} (replicate {int(r)})"))
        state.evaluations = (ctx.generation, out)
    return state.evaluations[1]


def _each(ctx: MetricContext, fn) -> np.ndarray:
    return np.array([fn(e) for e in evaluations(ctx)], dtype=float)


def _defined(fn):
    """``fn`` on a sample, or NaN (no row: the metrics below are sparse) where the sample has
    too little left to define it: a collapsed chain writes one word, or documents shorter
    than an n-gram, and that is a result to record, not an error that stops the run."""
    def safe(e: Evaluation) -> float:
        try:
            return fn(e)
        except UserError:
            return np.nan
    return safe


@metric("train_docs", direction="info", requires=TEXT,
        description="documents in the training set of generation g")
def train_docs(ctx: MetricContext) -> np.ndarray:
    return ctx.train.sizes.astype(float)


@metric("perplexity_real", direction="lower", requires=TEXT,
        description="perplexity of the real test split under generation g's model")
def perplexity_real(ctx: MetricContext) -> np.ndarray:
    test = ctx.family.data.test
    return np.array([lm.perplexity(test) for lm in ctx.model.lms])


PERPLEXITY_GEN0 = "token-level perplexity of generation g's documents under the chain's generation-0 model"


def sequence_nll(ctx: MetricContext) -> list[tuple[np.ndarray, np.ndarray]]:
    """Per replicate, (n,) summed NLL and (n,) predicted tokens of each evaluation document
    of generation g under the chain's generation-0 model: one scoring pass per generation,
    shared by perplexity_gen0 and the neural family's percentiles."""
    state = ctx.state
    if ctx.generation == 0:
        state.gen0 = ctx.model
    if state.sequence_nll is None or state.sequence_nll[0] != ctx.generation:
        state.sequence_nll = (ctx.generation, [
            lm.sequence_nll(e.docs) for lm, e in zip(state.gen0.lms, evaluations(ctx))])
    return state.sequence_nll[1]


@metric("perplexity_gen0", direction="info", requires=(GeneratesText, ScoresSequences),
        description=PERPLEXITY_GEN0)
def perplexity_gen0_scored(ctx: MetricContext) -> np.ndarray:
    return np.array([np.exp(sums.sum() / max(1, counts.sum())) for sums, counts in sequence_nll(ctx)])


@metric("perplexity_gen0", direction="info", requires=TEXT, description=PERPLEXITY_GEN0)
def perplexity_gen0(ctx: MetricContext) -> np.ndarray:
    if ctx.generation == 0:
        ctx.state.gen0 = ctx.model
    return np.array([lm.perplexity(e.docs) for lm, e in zip(ctx.state.gen0.lms, evaluations(ctx))])


def _distinct(n: int):
    @metric(f"distinct_{n}", direction="truth", requires=TEXT, sparse=True,
            description=f"distinct {n}-grams / all {n}-grams in eval_tokens generated tokens")
    def fn(ctx: MetricContext) -> np.ndarray:
        return _each(ctx, _defined(lambda e: tm.distinct_n(e.equal, n)))
    return fn


distinct_1, distinct_2, distinct_3, distinct_4 = (_distinct(n) for n in (1, 2, 3, 4))


@metric("unigram_entropy", direction="truth", requires=TEXT,
        description="unigram entropy of eval_tokens generated tokens, nats")
def unigram_entropy(ctx: MetricContext) -> np.ndarray:
    return _each(ctx, lambda e: tm.unigram_entropy(e.equal))


@metric("vocab_size", direction="truth", requires=TEXT,
        description="distinct tokens in eval_tokens generated tokens")
def vocab_size(ctx: MetricContext) -> np.ndarray:
    return _each(ctx, lambda e: tm.vocab_size(e.equal))


@metric("zipf_exponent", direction="truth", requires=TEXT, sparse=True,
        description="Zipf exponent fitted to the rank-frequency curve of eval_tokens generated tokens")
def zipf_exponent(ctx: MetricContext) -> np.ndarray:
    return _each(ctx, _defined(lambda e: tm.zipf_exponent(e.equal)))


@metric("compression_ratio", direction="truth", requires=TEXT,
        description="gzip compression ratio of eval_tokens generated tokens as text (higher: more repetitive)")
def compression_ratio(ctx: MetricContext) -> np.ndarray:
    return _each(ctx, lambda e: tm.compression_ratio(e.equal_text))


@metric("self_bleu", direction="truth", requires=TEXT, sparse=True,
        description="self-BLEU (sacrebleu sentence BLEU of each document vs the others, 0-100) of bleu_docs generated documents")
def self_bleu(ctx: MetricContext) -> np.ndarray:
    return _each(ctx, _defined(lambda e: tm.self_bleu(e.bleu)))


@metric("repetition_rate", direction="truth", requires=TEXT, sparse=True,
        description="share of 4-gram occurrences repeating one earlier in the same document")
def repetition_rate(ctx: MetricContext) -> np.ndarray:
    return _each(ctx, _defined(lambda e: tm.repetition_rate(e.equal, 4)))


@metric("mean_length", direction="truth", requires=TEXT,
        description="mean tokens per generated document")
def mean_length(ctx: MetricContext) -> np.ndarray:
    return _each(ctx, lambda e: float(np.mean([d.size for d in e.docs])))


@metric("tail_coverage", direction="truth", requires=TEXT, sparse=True,
        description="share of the real test split's rare tail_n-grams (count at or below the tail_quantile of counts) that generation g produces")
def tail_coverage(ctx: MetricContext) -> np.ndarray:
    p = ctx.family.params
    test = [d.tolist() for d in ctx.family.data.test]
    return _each(ctx, _defined(lambda e: tm.tail_coverage(
        test, [d.tolist() for d in e.docs], n=p.tail_n, quantile=p.tail_quantile)))


@metric("vocab_never_produced", direction="lower", requires=TEXT,
        description="share of the train split's vocabulary that generation g never produces")
def vocab_never_produced(ctx: MetricContext) -> np.ndarray:
    data = ctx.family.data
    known = np.zeros(len(data.vocab), dtype=bool)
    known[np.concatenate(data.train)] = True

    def share(e: Evaluation) -> float:
        ids = np.concatenate(e.docs) if e.docs else np.zeros(0, dtype=np.int64)
        # A checkpoint's embedding table may be wider than its tokenizer (OPT: 50,272 vs
        # 50,265): ids past the vocabulary are made, never known.
        made = np.zeros(max(len(data.vocab), int(ids.max(initial=-1)) + 1), dtype=bool)
        made[ids] = True
        return float((known & ~made[:known.size]).sum() / known.sum())

    return _each(ctx, share)


# -- semantic diversity (extra `embed`) ----------------------------------------------------
def _embeds(ctx: MetricContext) -> tuple[np.ndarray, list[np.ndarray]]:
    """(real test embeddings (n, d), per replicate the generated ones (m, d)), cached: the
    real ones for the chunk, the generated ones per generation. Generated: the first
    embed_docs documents of the evaluation corpus (exchangeable draws); real: embed_docs
    test documents drawn once."""
    p = ctx.family.params
    data = ctx.family.data
    state = ctx.state
    if state.real_embeddings is None:
        rng = state.seeds.generator("evaluate", SHARED, "embed")
        pick = np.sort(rng.choice(len(data.test), size=min(p.embed_docs, len(data.test)),
                                  replace=False))
        state.real_embeddings = tm.embed([data.detokenize(data.test[i]) for i in pick])
    if state.embeddings is None or state.embeddings[0] != ctx.generation:
        state.embeddings = (ctx.generation, [tm.embed([data.detokenize(d) for d in e.docs[:p.embed_docs]])
                                             for e in evaluations(ctx)])
    return state.real_embeddings, state.embeddings[1]


def _with_embeddings(params) -> bool:
    return bool(params.embeddings)


@metric("vendi_score", direction="truth", requires=TEXT, applies=_with_embeddings,
        description="Vendi score (effective number of distinct documents) of embed_docs generated documents' embeddings")
def vendi_score(ctx: MetricContext) -> np.ndarray:
    return np.array([tm.vendi_score(x) for x in _embeds(ctx)[1]])


@metric("cosine_distance", direction="truth", requires=TEXT, applies=_with_embeddings,
        description="mean pairwise cosine distance of embed_docs generated documents' embeddings")
def cosine_distance(ctx: MetricContext) -> np.ndarray:
    return np.array([tm.mean_pairwise_cosine_distance(x) for x in _embeds(ctx)[1]])


def _knn(part: str):
    @metric(f"embedding_{part}", direction="higher", requires=TEXT, applies=_with_embeddings,
            description=f"k-NN {part} (k=5, Naeem et al. 2020) of the real test split's embeddings by the generated ones")
    def fn(ctx: MetricContext) -> np.ndarray:
        real, fakes = _embeds(ctx)
        return np.array([tm.knn_precision_recall_density_coverage(real, x)[part] for x in fakes])
    return fn


embedding_recall, embedding_coverage = _knn("recall"), _knn("coverage")


@metric("mauve", direction="higher", requires=TEXT, applies=_with_embeddings,
        description="MAUVE (mauve-text) of generated vs real test embeddings, seed mauve_seed, mauve_clusters clusters")
def mauve(ctx: MetricContext) -> np.ndarray:
    p = ctx.family.params
    real, fakes = _embeds(ctx)
    return np.array([tm.mauve_score(real, x, seed=p.mauve_seed,
                                    num_clusters=p.mauve_clusters or None)["mauve"]
                     for x in fakes])
