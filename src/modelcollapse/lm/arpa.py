"""ARPA files: write a fitted Kneser-Ney model, read one back as a backoff scorer.

An interpolated Kneser-Ney model is exactly a backoff model: every listed n-gram carries
its interpolated probability and every context its backoff weight ``gamma`` (see
:mod:`.smoothing`). The file lists every n-gram seen in training at each order, and every
id of the vocabulary as a unigram (words never seen get the uniform share), so KenLM,
SRILM or :func:`load_arpa` score any text with the model's probabilities. ``<s>`` gets
log10 probability -99 (never predicted). Probabilities and backoffs are log10, written with
10 significant digits.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from ..errors import UserError
from .counts import SPECIAL_TOKENS, UNK, KeyIndex, lookup_rows, prepare
from .smoothing import backoff_logprob

LN10 = math.log(10.0)
NEVER = -99.0


def vocabulary(id_to_token, vocab_size: int) -> list[str]:
    """The token string of every id: ids 0, 1, 2 are always <unk>, <s>, </s>."""
    if callable(id_to_token) and not isinstance(id_to_token, (Mapping, Sequence)):
        words = [str(id_to_token(i)) for i in range(vocab_size)]
    else:
        try:
            words = [str(id_to_token[i]) for i in range(vocab_size)]
        except (KeyError, IndexError):
            raise UserError(f"id_to_token must give a token for every id 0..{vocab_size - 1}"
                            ) from None
    words[:3] = SPECIAL_TOKENS
    for i, w in enumerate(words[3:], start=3):
        if not w or re.search(r"\s", w) or w in SPECIAL_TOKENS:
            raise UserError(f"id_to_token[{i}] = {w!r} cannot be written to an ARPA file: tokens "
                            "must be non-empty, without whitespace, and not <unk>, <s> or </s>")
    if len(set(words)) != len(words):
        dup = Counter(words).most_common(1)[0][0]
        raise UserError(f"id_to_token maps two ids to the same token {dup!r}")
    return words


def _fmt(x: float) -> str:
    return f"{x:.10g}" if x > NEVER else "-99"


def write_arpa(path, tables, logp: list[np.ndarray], bow: list[np.ndarray],
               words: list[str]) -> Path:
    """Write a backoff model (tables of ctx / last, ln p, ln backoff) as an ARPA file."""
    path = Path(path)
    order = len(logp)
    strs = [np.array(words, dtype=object)]
    for t in tables[1:]:
        strs.append(strs[-1][t.ctx] + " " + strs[0][t.last])
    with path.open("w", encoding="utf-8") as f:
        f.write("\\data\\\n")
        for n in range(order):
            f.write(f"ngram {n + 1}={len(logp[n])}\n")
        for n in range(order):
            f.write(f"\n\\{n + 1}-grams:\n")
            lp = np.maximum(logp[n] / LN10, NEVER).tolist()
            if n + 1 < order:
                bw = np.maximum(bow[n] / LN10, NEVER).tolist()
                f.writelines([f"{_fmt(p)}\t{s}\t{_fmt(b)}\n" for p, s, b in zip(lp, strs[n], bw)])
            else:
                f.writelines([f"{_fmt(p)}\t{s}\n" for p, s in zip(lp, strs[n])])
        f.write("\n\\end\\\n")
    return path


class ArpaLM:
    """A backoff language model read from an ARPA file, scoring token-id documents.

    Ids follow ``id_to_token``; ids whose token the file does not list are read as <unk>,
    as KenLM does. Scoring is that of :class:`NGramLM` (one ``<s>``, a final ``</s>``).
    """

    def __init__(self, indexes, logp, bow, vocab_size: int, remap: np.ndarray) -> None:
        # probabilities and weights, each with a trailing entry for index -1 (absent): p 0,
        # weight 1 (see backoff_logprob)
        self.indexes = indexes
        self.prob_pad = [np.append(np.exp(x), 0.0) for x in logp]
        self.gamma_pad = [np.append(np.exp(x), 1.0) for x in bow]
        self.vocab_size, self.order = vocab_size, len(logp)
        self.remap = remap

    def logprob(self, sequences) -> list[np.ndarray]:
        from .counts import as_int_arrays

        seqs = as_int_arrays(sequences, "sequences")
        docs = prepare(seqs, self.vocab_size, strict=False)
        docs.tok, docs.prev = self.remap[docs.tok], self.remap[docs.prev]
        return docs.split(backoff_logprob(self.indexes, self.prob_pad, self.gamma_pad,
                                          self.vocab_size, docs))

    def perplexity(self, sequences) -> float:
        lp = np.concatenate(self.logprob(sequences))
        return float(np.exp(-lp.mean()))


def load_arpa(path, id_to_token) -> ArpaLM:
    """Read an ARPA file; tokens map to ids through ``id_to_token`` (a UserError for a token
    it lacks, or for a malformed file)."""
    path = Path(path)
    tok2id = {w: i for i, w in enumerate(id_to_token)}
    for i, w in enumerate(SPECIAL_TOKENS):
        tok2id[w] = i
    V = len(id_to_token)
    grams: dict[int, tuple[list, list, list]] = {}
    n = 0
    with path.open(encoding="utf-8") as f:
        for lineno, line in enumerate(f, start=1):
            line = line.strip()
            if not line or line.startswith("ngram ") or line == "\\data\\":
                continue
            if line == "\\end\\":
                break
            m = re.fullmatch(r"\\(\d+)-grams:", line)
            if m:
                n = int(m.group(1))
                grams[n] = ([], [], [])
                continue
            parts = line.split()
            if n == 0 or len(parts) not in (n + 1, n + 2):
                raise UserError(f"{path}:{lineno}: not an ARPA {n}-gram line: {line[:60]!r}")
            try:
                ids = [tok2id[w] for w in parts[1:n + 1]]
            except KeyError as e:
                raise UserError(f"{path}:{lineno}: token {e.args[0]!r} is not in id_to_token"
                                ) from None
            g = grams[n]
            g[0].append(ids)
            g[1].append(float(parts[0]))
            g[2].append(float(parts[n + 1]) if len(parts) == n + 2 else 0.0)
    order = max(grams, default=0)
    if order == 0 or sorted(grams) != list(range(1, order + 1)):
        raise UserError(f"{path}: no \\1-grams: .. \\N-grams: sections in order")
    ids1 = np.array(grams[1][0], np.int64).ravel()
    if UNK not in set(ids1.tolist()):
        raise UserError(f"{path}: the unigrams do not list <unk>")
    remap = np.full(V, UNK, np.int64)
    remap[ids1] = ids1
    lp1 = np.full(V, NEVER * LN10)
    bw1 = np.zeros(V)
    lp1[ids1] = np.array(grams[1][1]) * LN10
    bw1[ids1] = np.array(grams[1][2]) * LN10
    indexes, logp, bow = [None], [lp1], [bw1]
    for n in range(2, order + 1):
        rows = np.array(grams[n][0], np.int64).reshape(-1, n)
        prefix = lookup_rows(indexes, V, rows[:, :-1])
        if np.any(prefix < 0):
            bad = rows[np.argmax(prefix < 0)]
            raise UserError(f"{path}: the {n}-gram of ids {bad.tolist()} has no listed prefix")
        k = prefix * V + rows[:, -1]
        o = np.argsort(k)
        k = k[o]
        if np.any(k[1:] == k[:-1]):
            raise UserError(f"{path}: a {n}-gram is listed twice")
        indexes.append(KeyIndex(k))
        logp.append(np.array(grams[n][1])[o] * LN10)
        bow.append(np.array(grams[n][2])[o] * LN10)
    return ArpaLM(indexes, logp, bow, V, remap)
