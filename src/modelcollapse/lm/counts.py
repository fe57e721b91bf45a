"""Token ids, document padding and the sorted integer n-gram tables (the counting hot path).

Reserved ids
------------
``UNK = 0`` (``<unk>``), ``BOS = 1`` (``<s>``) and ``EOS = 2`` (``</s>``): the ids KenLM gives
them too. Word ids are ``3 .. vocab_size - 1``. A model predicts every id except ``BOS``, so
its distributions have ``vocab_size - 1`` outcomes.

Padding
-------
A document ``w1 .. wL`` is read as ``<s> w1 .. wL </s>`` with a single ``<s>``: the context
of a token is the up to ``order - 1`` tokens before it, cut at ``<s>`` (the KenLM and SRILM
convention, so the first word is predicted from the bigram context ``<s>``). Every token
and the final ``</s>`` is predicted; ``<s>`` is not.

Rank-encoded tables
-------------------
Table ``n`` holds the distinct n-grams of order ``n`` as one sorted ``int64`` array of keys

    key(h w) = rank(h) * V + w,

where ``rank(h)`` is the index of the context ``h`` (the n-gram minus its last token) in table
``n - 1``, and table 1 is dense (the rank of a unigram is its id). Table ``n - 1`` is in
lexicographic order, so table ``n`` is too, and the continuations of one context form one
contiguous slice. Unlike packing ``n`` ids in base ``V``, which overflows 64 bits once
``V ** n >= 2 ** 63`` (order 5 at ``V = 10,000``), a rank key is below ``U(n-1) * V`` and fits
``int64`` for any vocabulary and order. Counting is a sort (``np.unique``-style, with a
16-bit radix argsort); a lookup goes order by order, each order keyed by the ranks the order
below found, through :class:`KeyIndex` (a numpy hash index over the sorted keys, falling back
to ``searchsorted``). No Python object per n-gram.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np

from ..errors import UserError

UNK, BOS, EOS = 0, 1, 2
N_SPECIAL = 3
MAX_ORDER = 6
SPECIAL_TOKENS = ("<unk>", "<s>", "</s>")


@dataclass
class Docs:
    """Documents as the arrays of their predicted tokens, all documents end to end.

    tok: each document's tokens then ``</s>`` (without ``</s>`` for prompts); prev: the token
    before each (``<s>`` for a document's first); first: the index in ``tok`` of each
    document's first predicted token; lengths: the documents' lengths without padding.
    """

    tok: np.ndarray
    prev: np.ndarray
    first: np.ndarray
    lengths: np.ndarray

    def split(self, values: np.ndarray) -> list[np.ndarray]:
        """Per-document pieces of an array aligned with ``tok``."""
        return np.split(values, self.first[1:]) if self.first.size else []


def as_int_arrays(sequences: Iterable, what: str) -> list[np.ndarray]:
    """The documents as 1-D int64 arrays (a UserError for anything that is not integers)."""
    if isinstance(sequences, np.ndarray) and sequences.ndim == 1 and sequences.dtype != object:
        raise UserError(f"{what} must be a list of token-id arrays (one per document), "
                        "not one flat array")
    out = []
    for i, seq in enumerate(sequences):
        arr = np.asarray(seq)
        if arr.size == 0:
            out.append(np.zeros(0, np.int64))
            continue
        if arr.ndim != 1 or not np.issubdtype(arr.dtype, np.integer):
            raise UserError(f"{what}[{i}] must be a 1-D array of integer token ids; "
                            f"got shape {arr.shape} and dtype {arr.dtype}")
        out.append(arr.astype(np.int64, copy=False))
    return out


def prepare(sequences: Sequence[np.ndarray], vocab_size: int, *, strict: bool,
            what: str = "sequences", eos: bool = True) -> Docs:
    """Lay ``sequences`` out as :class:`Docs` (``<s>`` before, ``</s>`` after each, unless
    ``eos`` is False).

    ``strict`` (fitting): an id outside ``[0, vocab_size)`` is a UserError. Otherwise
    (scoring) such ids are read as ``<unk>``. ``<s>`` or ``</s>`` inside a document is
    always a UserError: they are added here.
    """
    lengths = np.fromiter((len(s) for s in sequences), np.int64, len(sequences))
    tokens = np.concatenate(sequences) if len(sequences) else np.zeros(0, np.int64)
    as_unsigned = tokens.view(np.uint64)  # negative ids become huge
    oov = as_unsigned >= vocab_size
    bad = (as_unsigned - np.uint64(BOS)) < 2  # BOS = 1 or EOS = 2
    if strict:
        bad |= oov
    if bad.any():
        at = int(np.argmax(bad))
        doc = int(np.searchsorted(np.cumsum(lengths), at, side="right"))
        tok = int(tokens[at])
        why = (f"outside [0, vocab_size={vocab_size})" if oov[at]
               else f"reserved for {'<s>' if tok == BOS else '</s>'} (added automatically)")
        raise UserError(f"{what}[{doc}] holds token id {tok}, which is {why}")
    if oov.any():
        tokens = np.where(oov, UNK, tokens)
    if eos:
        sizes = lengths + 1
        tok = np.full(int(sizes.sum()), EOS, np.int64)
        tok[np.arange(tokens.size) + np.repeat(np.arange(lengths.size), lengths)] = tokens
    else:
        sizes, tok = lengths, tokens
    first = np.cumsum(sizes) - sizes
    prev = np.empty_like(tok)
    prev[1:] = tok[:-1]
    prev[first[sizes > 0]] = BOS
    return Docs(tok=tok, prev=prev, first=first, lengths=lengths)


def _shifted(rank: np.ndarray, docs: Docs) -> np.ndarray:
    """The value at the previous predicted token (-1 at each document's first)."""
    out = np.empty_like(rank)
    out[:1] = -1
    out[1:] = rank[:-1]
    out[docs.first[docs.first < out.size]] = -1
    return out


def argsort_int(x: np.ndarray, bound: int) -> np.ndarray:
    """A stable argsort of non-negative integers below ``bound``: least-significant-digit
    radix sort on 16-bit digits (numpy's stable sort of uint16 is a radix sort, ~20x faster
    than sorting int64) while the keys have at most 48 bits, numpy's argsort beyond."""
    bits = max(int(bound - 1).bit_length(), 1)
    if bits > 48:
        return np.argsort(x, kind="stable")
    order = None
    for shift in range(0, bits, 16):
        digit = ((x >> shift) & 0xFFFF).astype(np.uint16)
        if order is None:
            order = np.argsort(digit, kind="stable")
        else:
            order = order[np.argsort(digit[order], kind="stable")]
    return order


def unique_inverse(keys: np.ndarray, bound: int, inverse: bool = True
                   ) -> tuple[np.ndarray, np.ndarray | None, np.ndarray, np.ndarray]:
    """Sorted distinct keys (all below ``bound``), the inverse (key -> distinct index;
    None unless asked), counts, and one index of an occurrence of each distinct key."""
    order = argsort_int(keys, bound)
    sk = keys[order]
    new = np.empty(sk.size, bool)
    new[:1] = True
    np.not_equal(sk[1:], sk[:-1], out=new[1:])
    starts = np.flatnonzero(new)
    inv = None
    if inverse:
        inv = np.empty(keys.size, np.int64)
        inv[order] = np.cumsum(new) - 1
    counts = np.diff(np.append(starts, sk.size))
    return sk[starts], inv, counts, order[starts]


_GOLDEN = np.uint64(0x9E3779B97F4A7C15)


class KeyIndex:
    """Exact key -> position lookups into a sorted array of non-negative int64 keys.

    ``numpy.searchsorted`` costs ~60-80 ns a query on tables of ~10^5 keys (a cache-missing
    binary search). Here one vectorized probe of an open-addressing table (Fibonacci
    hashing, linear probing; at most 1/8 full up to 2^16 keys, 1/4 up to 2^20, 1/2 beyond)
    answers most queries; the rest fall back to ``searchsorted``. The table is built without
    a Python loop: keys sorted by home slot ``h`` take slot ``pos_i = max(h_i, pos_(i-1) + 1)``,
    i.e. ``i + cummax(h_i - i)``, and the table ends with an empty slot instead of wrapping
    around. Full keys are compared: no false positives. The sorted key array stays the
    model's storage (slices of continuations, ARPA order).
    """

    def __init__(self, keys: np.ndarray) -> None:
        self.keys = keys
        n = keys.size
        spare = 3 if n <= 1 << 16 else 2 if n <= 1 << 20 else 1  # load <= 1/8, 1/4, 1/2
        bits = max(4, int(n - 1).bit_length() + spare)
        self.shift = np.uint64(64 - bits)
        home = self.home(keys)
        order = argsort_int(home, 1 << bits)
        i = np.arange(n)
        pos = i + np.maximum.accumulate(home[order] - i) if n else i
        size = max(int(pos[-1]) + 2 if n else 2, (1 << bits) + 1)
        self.slot_key = np.full(size, -1, np.int64)
        self.slot_val = np.full(size, -1, np.int32 if n < 1 << 31 else np.int64)
        self.slot_key[pos] = keys[order]
        self.slot_val[pos] = order

    def home(self, q: np.ndarray) -> np.ndarray:
        h = q.astype(np.uint64)
        h *= _GOLDEN
        h >>= self.shift
        return h.view(np.int64)

    def find(self, q: np.ndarray) -> np.ndarray:
        """Position of each key of ``q`` in the sorted array, or -1 where absent (negative
        queries are absent)."""
        if self.keys.size == 0:
            return np.full(q.shape, -1, np.int64)
        pos = self.home(q)
        sk = self.slot_key[pos]
        hit = sk == q
        res = np.where(hit, self.slot_val[pos], -1)
        rest = np.flatnonzero(~hit & (sk >= 0))
        if rest.size:
            qr = q[rest]
            i = np.searchsorted(self.keys, qr)
            np.minimum(i, self.keys.size - 1, out=i)
            res[rest] = np.where(self.keys[i] == qr, i, -1)
        return res


@dataclass
class Table:
    """The distinct n-grams of one order, sorted by rank key.

    keys: ``rank(context) * V + last``; ctx: ``rank(context)`` (index into the table one
    order down); last: the last token; count: raw occurrences; suffix: index in the table one
    order down of the n-gram minus its first token; bos: whether the n-gram starts with
    ``<s>``; child_lo / child_hi: the slice of the next order's table continuing this n-gram.
    """

    order: int
    keys: np.ndarray
    ctx: np.ndarray
    last: np.ndarray
    count: np.ndarray
    suffix: np.ndarray
    bos: np.ndarray
    child_lo: np.ndarray = field(default=None)
    child_hi: np.ndarray = field(default=None)
    index: KeyIndex | None = field(default=None)  # lookups (orders >= 2; order 1 is dense)

    def __len__(self) -> int:
        return self.keys.size


def link_children(parent_size: int, child: Table) -> tuple[np.ndarray, np.ndarray]:
    """For each entry of a table, the slice ``[lo, hi)`` of ``child`` that continues it."""
    n = np.bincount(child.ctx, minlength=parent_size)
    hi = np.cumsum(n)
    return hi - n, hi


def count_tables(docs: Docs, order: int, vocab_size: int) -> list[Table]:
    """Tables of orders 1..order from the training documents.

    A UserError when some order has no n-gram at all (the corpus is too small).
    """
    tok, V = docs.tok, vocab_size
    ids = np.arange(V, dtype=np.int64)
    tables = [Table(1, keys=ids, ctx=np.zeros(V, np.int64), last=ids,
                    count=np.bincount(tok, minlength=V).astype(np.int64),
                    suffix=np.zeros(V, np.int64), bos=ids == BOS)]
    rank_below = tok    # index in the table one order down of the n-gram ending at each token
    ctx = docs.prev     # ... and of the n-gram ending just before (the context), -1: none
    for n in range(2, order + 1):
        at = np.flatnonzero(ctx >= 0)
        if at.size == 0:
            raise UserError(
                f"the training corpus is too small for an order-{order} model: it has no "
                f"{n}-grams (a document yields {n}-grams only with at least {n - 2} tokens, "
                "<s> and </s> added)")
        keys = ctx[at] * V + tok[at]
        top = n == order  # no order above needs this order's ranks
        uniq, inverse, counts, one = unique_inverse(keys, len(tables[-1]) * V, not top)
        parent = uniq // V
        below = tables[-1]
        tables.append(Table(n, keys=uniq, ctx=parent, last=uniq % V, count=counts,
                            suffix=rank_below[at[one]], bos=below.bos[parent],
                            index=KeyIndex(uniq)))
        below.child_lo, below.child_hi = link_children(len(below), tables[-1])
        if not top:
            rank_below = np.full(tok.size, -1, np.int64)
            rank_below[at] = inverse
            ctx = _shifted(rank_below, docs)
    return tables


@dataclass
class Positions:
    """The n-grams at every predicted token of :class:`Docs` (all orders at once).

    rank[n - 1]: the index in table n of the n-gram ending at the token (-1: absent);
    ctx[n - 1]: the index in table n - 1 of that n-gram's context, the (n-1)-gram ending just
    before (-1: absent; ctx[0] is None).
    """

    rank: list[np.ndarray]
    ctx: list[np.ndarray | None]


def positions(indexes: Sequence[KeyIndex | None], vocab_size: int, docs: Docs,
              max_order: int) -> Positions:
    """Look up the n-grams of orders 1..max_order ending at every predicted token: one
    vectorized lookup per order, each keyed by the ranks the order below found."""
    tok = docs.tok
    rank, ctx = [tok], [None, docs.prev]
    for n in range(2, max_order + 1):
        r = indexes[n - 1].find(ctx[n - 1] * vocab_size + tok)  # ctx -1: negative, absent
        rank.append(r)
        if n < max_order:
            ctx.append(_shifted(r, docs))
    return Positions(rank, ctx)


def lookup_rows(indexes: Sequence[KeyIndex | None], vocab_size: int,
                rows: np.ndarray) -> np.ndarray:
    """Index in table ``n`` of each row of the (m, n) id matrix ``rows`` (-1 if absent)."""
    idx = rows[:, 0].astype(np.int64)
    for j in range(1, rows.shape[1]):
        ok = idx >= 0
        nxt = np.full(idx.size, -1, np.int64)
        nxt[ok] = indexes[j].find(idx[ok] * vocab_size + rows[ok, j])
        idx = nxt
    return idx
