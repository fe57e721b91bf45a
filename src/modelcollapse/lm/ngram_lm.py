"""``NGramLM``: an n-gram language model over token ids, fitted and queried with numpy.

Reserved ids (see :mod:`.counts`): ``UNK = 0``, ``BOS = 1``, ``EOS = 2``; words are
``3 .. vocab_size - 1``. Documents are 1-D integer arrays without ``<s>`` / ``</s>`` (they are
added: one ``<s>``, one ``</s>``); ``<unk>`` may appear in them. When scoring, ids outside
``[0, vocab_size)`` are read as ``<unk>``; when fitting they are an error.

>>> lm = NGramLM(order=3).fit(train_docs, vocab_size)          # doctest: +SKIP
>>> lm = NGramLM(order=3).fit_stream(chunks_of_docs, vocab_size)  # doctest: +SKIP
>>> lm.perplexity(test_docs)                                    # doctest: +SKIP
>>> lm.sample(100, np.random.default_rng(0), max_len=200, top_p=0.9)  # doctest: +SKIP
>>> lm.to_arpa("model.arpa", id_to_token)                       # doctest: +SKIP

Smoothing (details in :mod:`.smoothing`): ``"kneser_ney"`` (interpolated modified Kneser-Ney,
the default, as KenLM estimates it), ``"add_k"`` (``(c + k) / (c(h) + k (V - 1))`` at the
longest available context), ``"mle"`` (``c / c(h)``: log-probability ``-inf`` and perplexity
``inf`` for text with an unseen n-gram or context).

The counts live in sorted ``int64`` key arrays, one per order (rank-encoded: exact for any
vocabulary size and order; see :mod:`.counts`); fitting is a few radix ``argsort`` passes
and elementwise estimates, ``fit_stream`` merges the sorted counts of chunk after chunk,
scoring is one vectorized lookup per order over every position of every document at once,
and sampling advances all documents one token per step (see :mod:`.decode`). ARPA export
and import: :mod:`.arpa`.
"""

from __future__ import annotations

import numbers

import numpy as np

from ..errors import UserError
from . import decode
from .arpa import vocabulary, write_arpa
from .counts import (MAX_ORDER, N_SPECIAL, Counts, Table, as_int_arrays, check_orders,
                     count_tables, link_tables, merge_counts, prepare, tables_from_counts)
from .smoothing import (Fitted, backoff_logprob, check_discounts, count_based,
                        count_logprob, interpolated_logprob, kneser_ney, mixture_index)

SMOOTHINGS = ("kneser_ney", "add_k", "mle")


def _vocab_size(vocab_size) -> int:
    if not isinstance(vocab_size, numbers.Integral) or vocab_size <= N_SPECIAL:
        raise UserError(f"vocab_size must be an integer > {N_SPECIAL} (ids 0, 1, 2 are "
                        f"<unk>, <s>, </s>); got {vocab_size!r}")
    return int(vocab_size)


class NGramLM:
    """An n-gram language model of order 1..6 over token ids.

    Parameters
    ----------
    order : int, 1..6.
    smoothing : "kneser_ney" (default), "add_k" or "mle".
    k : float > 0, the pseudo-count of add-k (1.0 is Laplace).
    discounts : Kneser-Ney only: None (estimated per order from count-of-counts), one
        ``(D1, D2, D3+)`` for every order, or one triple per order (``0 <= D_k <= k``).

    Fitted attributes: ``vocab_size_``, ``n_ngrams_`` (distinct n-grams per order; order 1
    is the whole vocabulary), ``discounts_`` ((order, 3), Kneser-Ney), ``discount_fallback_``
    (per order: the estimate was undefined and ``(0.5, 1, 1.5)`` was used).
    """

    def __init__(self, order: int = 3, smoothing: str = "kneser_ney", k: float = 1.0,
                 discounts=None) -> None:
        if not isinstance(order, numbers.Integral) or not 1 <= order <= MAX_ORDER:
            raise UserError(f"order must be an integer from 1 to {MAX_ORDER}; got {order!r}")
        if smoothing not in SMOOTHINGS:
            from ..errors import unknown
            raise unknown("smoothing", str(smoothing), SMOOTHINGS)
        if smoothing == "add_k" and not (isinstance(k, numbers.Real) and np.isfinite(k) and k > 0):
            raise UserError(f"k must be a finite number > 0 for add_k smoothing; got {k!r}")
        if discounts is not None and smoothing != "kneser_ney":
            raise UserError("discounts apply to kneser_ney smoothing only")
        self.order, self.smoothing, self.k = int(order), smoothing, float(k)
        self.discounts = check_discounts(discounts, self.order)
        self._fit: Fitted | None = None

    def __repr__(self) -> str:
        extra = f", k={self.k}" if self.smoothing == "add_k" else ""
        state = f", vocab_size={self.vocab_size_}" if self._fit else ", unfitted"
        return f"NGramLM(order={self.order}, smoothing={self.smoothing!r}{extra}{state})"

    # -- fitting ---------------------------------------------------------------------------
    def fit(self, sequences, vocab_size: int) -> NGramLM:
        """Count the documents (a list of 1-D int arrays) and estimate the model."""
        V = _vocab_size(vocab_size)
        seqs = as_int_arrays(sequences, "sequences")
        if not seqs:
            raise UserError("the training corpus has no documents")
        tables = count_tables(prepare(seqs, V, strict=True), self.order, V)
        return self._estimate(link_tables(tables), sampler=True)

    def fit_stream(self, chunks, vocab_size: int) -> NGramLM:
        """Fit on a corpus given as an iterable of chunks, each a list of documents (1-D int
        arrays), read once, in order: for a corpus larger than memory.

        Each chunk is counted on its own and its counts are merged into the running sorted
        (key, count) tables, so peak memory is about the corpus's distinct n-grams plus one
        chunk. The model is the one ``fit`` gives on all the documents at once (Kneser-Ney's
        continuation counts and discounts are estimated once, from the merged counts). Each
        merge rewrites the running tables: chunks of many documents (say 10^5 to 10^7 tokens)
        keep that cost small. Unlike ``fit``, it leaves the sampler's arrays (8 bytes per
        counted occurrence: about ``order`` per token for add-k and MLE, about one for
        Kneser-Ney) to the first draw, so that scoring a model of a large corpus does not
        need them.
        """
        V = _vocab_size(vocab_size)
        acc: list[Table] | Counts | None = None  # the only chunk's tables, or merged counts
        for c, chunk in enumerate(chunks):
            what = f"chunks[{c}]"
            seqs = as_int_arrays(chunk, what)
            if not seqs:
                continue
            tables = count_tables(prepare(seqs, V, strict=True, what=what), self.order, V)
            if acc is None:
                acc = tables
            else:
                acc = merge_counts(acc if isinstance(acc, Counts) else Counts.of(acc),
                                   Counts.of(tables), V)
            del chunk, seqs, tables  # (the chunk's arrays go before the next one is read)
        if acc is None:
            raise UserError("the training corpus has no documents")
        return self._estimate(tables_from_counts(acc, V) if isinstance(acc, Counts)
                              else link_tables(acc), sampler=False)

    def _estimate(self, tables: list[Table], sampler: bool) -> NGramLM:
        """Estimate the model from complete, linked count tables; ``sampler``: also build
        the sampler's arrays now (else on the first draw: they hold an entry per counted
        occurrence, as many as the corpus's tokens)."""
        check_orders(tables)
        fit = Fitted(self.order, len(tables[0]), self.smoothing, self.k, tables)
        if self.smoothing == "kneser_ney":
            kneser_ney(fit, self.discounts)
        else:
            count_based(fit)
        if sampler:
            mixture_index(fit)
        self._fit = fit
        return self

    def _fitted(self) -> Fitted:
        if self._fit is None:
            raise UserError("this NGramLM is not fitted yet; call fit(sequences, vocab_size)")
        return self._fit

    @property
    def vocab_size_(self) -> int:
        return self._fitted().vocab_size

    @property
    def n_ngrams_(self) -> list[int]:
        return [len(t) for t in self._fitted().tables]

    @property
    def discounts_(self) -> np.ndarray | None:
        return self._fitted().discounts

    @property
    def discount_fallback_(self) -> list[bool]:
        return list(self._fitted().discount_fallback)

    # -- scoring ---------------------------------------------------------------------------
    def _flat_logprob(self, sequences):
        fit = self._fitted()
        docs = prepare(as_int_arrays(sequences, "sequences"), fit.vocab_size, strict=False)
        if fit.smoothing == "kneser_ney" and fit.score_pairs is not None:
            lp = interpolated_logprob(fit, docs)
        elif fit.smoothing == "kneser_ney":
            lp = backoff_logprob([t.index for t in fit.tables], fit.prob_pad, fit.gamma_pad,
                                 fit.vocab_size, docs)
        else:
            lp = count_logprob(fit, docs)
        return lp, docs

    def logprob(self, sequences) -> list[np.ndarray]:
        """Per document, the natural-log probability of each token and of the final
        ``</s>`` (length L + 1), each given its context after one ``<s>``."""
        lp, docs = self._flat_logprob(sequences)
        return docs.split(lp)

    def perplexity(self, sequences) -> float:
        """exp of minus the mean log-probability over all predicted tokens, ``</s>``
        included (``inf`` when a token has probability 0, as MLE gives unseen text)."""
        lp, _ = self._flat_logprob(sequences)
        if lp.size == 0:
            raise UserError("perplexity needs at least one document")
        return float(np.exp(-lp.mean()))

    def next_probs(self, contexts) -> np.ndarray:
        """(len(contexts), V) next-token probabilities after ``<s>`` and each context
        (a list of 1-D id arrays, possibly empty). Column ``<s>`` is 0; rows sum to 1
        (MLE: all zeros for a context it never saw)."""
        fit = self._fitted()
        ctx = as_int_arrays(contexts, "contexts")
        return decode.next_probs(fit, decode.initial_state(fit, len(ctx), ctx))

    # -- decoding --------------------------------------------------------------------------
    def _check_prompts(self, n_docs, max_len, prompts):
        if not isinstance(n_docs, numbers.Integral) or n_docs < 0:
            raise UserError(f"n_docs must be an integer >= 0; got {n_docs!r}")
        if not isinstance(max_len, numbers.Integral) or max_len < 0:
            raise UserError(f"max_len must be an integer >= 0; got {max_len!r}")
        if prompts is None:
            return None
        prompts = as_int_arrays(prompts, "prompts")
        if len(prompts) != n_docs:
            raise UserError(f"prompts must hold n_docs={n_docs} documents; got {len(prompts)}")
        return prompts

    def sample(self, n_docs: int, rng: np.random.Generator, max_len: int,
               temperature: float = 1.0, top_k: int | None = None, top_p: float | None = None,
               prompts=None) -> list[np.ndarray]:
        """``n_docs`` documents drawn from the model, until ``</s>`` (dropped) or ``max_len``
        new tokens. ``temperature`` >= 0 (0 is greedy), ``top_k`` >= 1, ``top_p`` in (0, 1];
        ``prompts`` (optional, one per document) are continued and kept at the front."""
        fit = self._fitted()
        if not isinstance(rng, np.random.Generator):
            raise UserError("rng must be a numpy.random.Generator, e.g. "
                            "numpy.random.default_rng(seed)")
        if not (isinstance(temperature, numbers.Real) and np.isfinite(temperature)
                and temperature >= 0):
            raise UserError(f"temperature must be a finite number >= 0; got {temperature!r}")
        if top_k is not None and (not isinstance(top_k, numbers.Integral) or top_k < 1):
            raise UserError(f"top_k must be None or an integer >= 1; got {top_k!r}")
        if top_p is not None and not (isinstance(top_p, numbers.Real) and 0 < top_p <= 1):
            raise UserError(f"top_p must be None or a number in (0, 1]; got {top_p!r}")
        prompts = self._check_prompts(n_docs, max_len, prompts)
        return decode.generate(fit, int(n_docs), int(max_len), rng, float(temperature),
                               None if top_k is None else int(top_k),
                               None if top_p is None else float(top_p), prompts)

    def greedy(self, n_docs: int, max_len: int, prompts=None) -> list[np.ndarray]:
        """The most probable next token at each step (the lowest id among ties). Without
        prompts every document is the same."""
        fit = self._fitted()
        prompts = self._check_prompts(n_docs, max_len, prompts)
        if prompts is None and n_docs > 1:
            doc = decode.generate(fit, 1, int(max_len), None, 0.0)[0]
            return [doc.copy() for _ in range(n_docs)]
        return decode.generate(fit, int(n_docs), int(max_len), None, 0.0, prompts=prompts)

    def beam(self, n_docs: int, beam_width: int, max_len: int, prompts=None
             ) -> list[np.ndarray]:
        """Beam search of width ``beam_width`` per document for the most probable document
        (``ln p(document + </s>)``) of at most ``max_len`` new tokens. Without prompts every
        document is the same."""
        fit = self._fitted()
        if not isinstance(beam_width, numbers.Integral) or beam_width < 1:
            raise UserError(f"beam_width must be an integer >= 1; got {beam_width!r}")
        prompts = self._check_prompts(n_docs, max_len, prompts)
        return decode.beam_search(fit, int(n_docs), int(beam_width), int(max_len), prompts)

    # -- export ----------------------------------------------------------------------------
    def to_arpa(self, path, id_to_token):
        """Write the model as an ARPA file (Kneser-Ney only: add-k and MLE are not backoff
        models). ``id_to_token``: a sequence, mapping or callable giving each id's token;
        ids 0, 1, 2 are always written as <unk>, <s>, </s>. Returns the path."""
        fit = self._fitted()
        if fit.smoothing != "kneser_ney":
            raise UserError(f"to_arpa writes kneser_ney models only; this one uses "
                            f"{fit.smoothing}, which an ARPA backoff file cannot represent")
        words = vocabulary(id_to_token, fit.vocab_size)
        return write_arpa(path, fit.tables, *fit.log_tables(), words)
