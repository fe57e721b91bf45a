"""The n-gram language-model family: the text collapse loop on a real corpus.

The truth is a real corpus (the embedded Python documentation by default, or the user's
files; see :mod:`modelcollapse.data`), tokenized and split once into train / validation /
test by a stable hash. Generation 0 fits an :class:`~modelcollapse.lm.NGramLM` per
replicate on the real train split; every later generation fits on the documents the policy
built from the previous model's samples. A generation samples ``n_samples`` whole documents
(by default as many as the train split holds), each as long as a length drawn from the real
train split's document lengths (``lengths = "real"``), so that generated corpora have the
real corpus's size and length distribution; ``lengths = "model"`` lets the model end its
documents with ``</s>``, ``"fixed"`` makes every document ``doc_length`` tokens.

Sampling biases come from the loop: ``temperature`` and ``truncation`` (top-p), plus this
family's ``top_k`` and ``decoding`` (greedy or beam search from real prompts).

Randomness: each replicate's documents of generation g come from a generator seeded by
(seed, cell, stage, replicate, generation), so a generation's draws never depend on how many
replicates run together.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from ..capabilities import RefitsOnDocuments, Watermarks
from ..errors import UserError
from ..lm import NGramLM
from ..lm import decode
from ..lm.counts import MAX_ORDER
from ..batches import Documents
from ..randomness import Stream
from .base import Sampling, register
from .text import RealText, TextFamily, TextMetricParams, file_stamp  # noqa: F401  (re-exported)


@dataclass(frozen=True)
class NGramParams(TextMetricParams):
    """corpus: 'embedded', a file path or glob, or 'hf:NAME[:CONFIG]'. text_field: the field
    of .jsonl/.csv/.parquet/hf records. unit: .txt documents per 'line' or 'paragraph'
    ('auto': paragraphs when the file has blank lines). tokenizer: 'word' (regex words and
    punctuation), 'char' or 'bpe' (bpe_vocab tokens, `tokenizers` library). lowercase: fold
    case before tokenizing. min_count: train-split count below which a token is <unk>.
    validation_share, test_share, split_seed: the hash split.
    order: n-gram order 1-6. smoothing: kneser_ney, add_k (pseudo-count k) or mle.
    lengths: 'real' (lengths drawn from the real train split), 'model' (until </s>, at most
    max_len tokens; 0: twice the longest real document) or 'fixed' (doc_length tokens).
    top_k: keep the k most likely next tokens (0: off). decoding: 'sample', 'greedy' or
    'beam' (beam_width; needs lengths = 'model'); greedy and beam continue prompts of
    prompt_tokens real tokens (the prompt is not part of the stored document).
    The text metrics' parameters: see TextMetricParams. watermark: sample with a Kirchenbauer et al. (2023) green-list
    bias (watermark_gamma: green share, watermark_delta: logit boost, watermark_context:
    tokens hashed into the green list, watermark_key: the secret key); greedy decoding is
    biased too, beam search is not."""

    corpus: str = "embedded"
    text_field: str = "text"
    unit: Literal["auto", "line", "paragraph"] = "auto"
    tokenizer: Literal["word", "char", "bpe"] = "word"
    lowercase: bool = False
    bpe_vocab: int = 0
    min_count: int = 1
    validation_share: float = 0.1
    test_share: float = 0.1
    split_seed: int = 0
    order: int = 3
    smoothing: Literal["kneser_ney", "add_k", "mle"] = "kneser_ney"
    k: float = 1.0
    lengths: Literal["real", "model", "fixed"] = "real"
    doc_length: int = 64
    max_len: int = 0
    top_k: int = 0
    decoding: Literal["sample", "greedy", "beam"] = "sample"
    beam_width: int = 5
    prompt_tokens: int = 0
    watermark: bool = False
    watermark_gamma: float = 0.25
    watermark_delta: float = 2.0
    watermark_context: int = 1
    watermark_key: int = 15485863

    def __post_init__(self) -> None:
        checks = [
            (1 <= self.order <= MAX_ORDER, f"order must be from 1 to {MAX_ORDER}", self.order),
            (self.min_count >= 1, "min_count must be >= 1", self.min_count),
            (self.bpe_vocab >= 0, "bpe_vocab must be >= 0", self.bpe_vocab),
            (self.k > 0, "k must be > 0", self.k),
            (self.doc_length >= 1, "doc_length must be >= 1", self.doc_length),
            (self.max_len >= 0, "max_len must be >= 0 (0: twice the longest real document)", self.max_len),
            (self.top_k >= 0, "top_k must be >= 0 (0: off)", self.top_k),
            (self.beam_width >= 1, "beam_width must be >= 1", self.beam_width),
            (self.prompt_tokens >= 0, "prompt_tokens must be >= 0", self.prompt_tokens),
        ]
        for ok, what, value in checks:
            if not ok:
                raise UserError(f"params.{what}; got {value}")
        super().__post_init__()
        if self.watermark:
            self.watermark_scheme()  # validates gamma, delta, context width
        if self.tokenizer == "bpe" and self.bpe_vocab == 0:
            raise UserError("params.bpe_vocab must be set (e.g. 8000) when tokenizer = 'bpe'")
        if self.tokenizer != "bpe" and self.bpe_vocab:
            raise UserError("params.bpe_vocab applies to tokenizer = 'bpe' only")
        if self.decoding == "beam" and self.lengths != "model":
            raise UserError("params.decoding = 'beam' ranks whole documents, so it decides their "
                            "lengths: set lengths = 'model' (max_len caps them)")
        if self.decoding != "sample" and self.prompt_tokens == 0:
            raise UserError(f"params.decoding = '{self.decoding}' without prompt_tokens would "
                            f"make every document identical; set prompt_tokens (e.g. 8)")


    def watermark_scheme(self):
        """The :class:`~modelcollapse.curation.Watermark` of these parameters."""
        from ..curation import Watermark
        try:
            return Watermark(self.watermark_gamma, self.watermark_delta,
                             self.watermark_context, self.watermark_key)
        except UserError as e:
            raise UserError(f"params.{e}") from None


@dataclass
class TextData:
    """A corpus prepared for the loop: token ids per split, the vocabulary, provenance.

    train / validation / test : lists of 1-D int32 arrays (ids; test/validation words
    unseen in train are ``<unk>``). train_lengths : (len(train),) token counts.
    """

    tokenizer: Any
    vocab: Any
    train: list[np.ndarray]
    validation: list[np.ndarray]
    test: list[np.ndarray]
    train_lengths: np.ndarray
    record: dict

    def detokenize(self, doc: np.ndarray) -> str:
        return self.tokenizer.detokenize(self.vocab.decode(doc.tolist()))


@functools.lru_cache(maxsize=4)
def prepare(corpus: str, text_field: str, unit: str, tokenizer: str, lowercase: bool,
            bpe_vocab: int, min_count: int, validation: float, test: float,
            split_seed: int, stamp: tuple = ()) -> TextData:
    """Read, split, tokenize and encode a corpus (cached per process: every cell of a study
    reuses it; ``stamp`` from :func:`file_stamp` makes an edited file a cache miss)."""
    from ..data import Vocabulary, load_corpus, make_tokenizer
    spec = None if corpus == "embedded" else corpus
    loaded = load_corpus(spec, text_field=text_field, unit=unit)
    splits = loaded.splits(validation=validation, test=test, seed=split_seed)
    tok = make_tokenizer(tokenizer, lowercase=lowercase,
                         vocab_size=bpe_vocab or None).fit(splits.train)
    train_tokens = [d for d in tok.tokenize_many(splits.train) if d]
    if not train_tokens:
        raise UserError(f"corpus {corpus}: the train split has no tokens")
    vocab = Vocabulary.build(train_tokens, min_count=min_count)
    encode = lambda texts: [d for d in vocab.encode(tok.tokenize_many(texts)) if d.size]
    train = vocab.encode(train_tokens)
    data = TextData(tok, vocab, train, encode(splits.validation), encode(splits.test),
                    np.array([d.size for d in train], dtype=np.int64), {})
    data.record = {"corpus": loaded.provenance, "splits": splits.as_record(),
                   "tokenizer": tok.as_record(), "vocabulary": vocab.as_record(),
                   "train_tokens": int(data.train_lengths.sum()),
                   "test_tokens": int(sum(d.size for d in data.test))}
    return data


class NGramModels:
    """Fitted n-gram models, one per replicate: ``lms`` (R,), ``replicates`` (R,)."""

    def __init__(self, lms: list[NGramLM], replicates: np.ndarray) -> None:
        self.lms = lms
        self.replicates = replicates


@register
class NGram(TextFamily, Watermarks, RefitsOnDocuments):
    name = "ngram"
    overview = ('perplexity_real', 'tail_coverage', 'vocab_size')   # the report's headline panels
    description = "n-gram language model (order 1-6, Kneser-Ney) on a real corpus: the text collapse loop"
    Params = NGramParams
    default_n_samples = 0  # the train split's number of documents

    # -- data ------------------------------------------------------------------------------
    @property
    def data(self) -> TextData:
        p = self.params
        return prepare(p.corpus, p.text_field, p.unit, p.tokenizer, p.lowercase, p.bpe_vocab,
                       p.min_count, p.validation_share, p.test_share, p.split_seed,
                       file_stamp(p.corpus))

    def validate(self, n_samples: int) -> None:
        super().validate(n_samples)
        p, d = self.params, self.data
        where = f"corpus {p.corpus}"
        if n_samples > len(d.train):
            raise UserError(f"n_samples = {n_samples} documents exceeds the {len(d.train)} "
                            f"documents of the train split of {where}")
        if not d.test:
            raise UserError(f"{where} has no test documents; it is too small (raise test_share "
                            f"or use a larger corpus)")
        longest = int(d.train_lengths.max())
        if p.order > 1 and longest < p.order - 1:
            raise UserError(f"{where}: its longest document has {longest} tokens, too short "
                            f"for an order-{p.order} model")
        per_doc = {"fixed": p.doc_length, "real": float(d.train_lengths.mean())}.get(p.lengths)
        test_tokens = sum(doc.size for doc in d.test)
        if test_tokens < p.eval_tokens:
            raise UserError(f"{where}: the test split holds {test_tokens} tokens, fewer than "
                            f"eval_tokens = {p.eval_tokens} (lower eval_tokens or use a larger corpus)")
        if per_doc is not None and n_samples * per_doc < p.eval_tokens:
            raise UserError(f"{n_samples} documents of about {per_doc:.0f} tokens hold fewer than "
                            f"eval_tokens = {p.eval_tokens} tokens; raise n_samples or lower eval_tokens")
        if p.prompt_tokens and not np.any(d.train_lengths > p.prompt_tokens):
            raise UserError(f"{where}: no train document is longer than prompt_tokens = "
                            f"{p.prompt_tokens}")

    def bytes_per_replicate(self, max_train: int) -> int:
        # Count tables: about order keys of 8 bytes plus a handful of float/index arrays.
        tokens = max_train * max(1.0, float(self.data.train_lengths.mean()))
        return int(64 * self.params.order * tokens) + 2**20

    # -- model -----------------------------------------------------------------------------
    @property
    def watermark(self):
        """The green-list scheme the sampler applies, or None."""
        return self.params.watermark_scheme() if self.params.watermark else None

    def fit_one(self, docs: list[np.ndarray]) -> NGramLM:
        """One model of this family's order and smoothing fitted on ``docs``."""
        p = self.params
        return NGramLM(p.order, p.smoothing, k=p.k).fit(docs, len(self.data.vocab))

    def fit(self, data: Documents, previous, stream: Stream) -> NGramModels:
        return NGramModels([self.fit_one(docs) for docs in data.docs], stream.replicates)

    def generate(self, lm: NGramLM, n: int, rng: np.random.Generator,
                 sampling: Sampling) -> list[np.ndarray]:
        """n documents from one model with this family's lengths and decoding."""
        p, d = self.params, self.data
        if p.lengths == "real":
            lengths = rng.choice(d.train_lengths, size=n)
            floor = lengths
        elif p.lengths == "fixed":
            lengths = np.full(n, p.doc_length, dtype=np.int64)
            floor = lengths
        else:
            lengths = np.full(n, p.max_len or 2 * int(d.train_lengths.max()), dtype=np.int64)
            floor = None
        prompts = None
        if p.prompt_tokens:
            long_enough = np.flatnonzero(d.train_lengths > p.prompt_tokens)
            prompts = [d.train[i][:p.prompt_tokens].astype(np.int64)
                       for i in rng.choice(long_enough, size=n)]
        fit = lm._fitted()
        if p.decoding == "beam":
            docs = decode.beam_search(fit, n, p.beam_width, int(lengths.max()), prompts)
            docs = [doc[:p.prompt_tokens + m] for doc, m in zip(docs, lengths)]
        else:
            temperature = 0.0 if p.decoding == "greedy" else sampling.temperature
            top_p = sampling.truncation if sampling.truncation < 1.0 else None
            docs = decode.generate(fit, n, lengths, rng, temperature, p.top_k or None, top_p,
                                   prompts, floor, self.watermark)
        if prompts is not None:  # the prompt is real text: keep only what the model wrote
            docs = [doc[p.prompt_tokens:] for doc in docs]
        return [doc.astype(np.int32) for doc in docs]
