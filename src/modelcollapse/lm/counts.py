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
``int64`` for any vocabulary and order. A lookup goes order by order, each order keyed by
the ranks the order below found, through :class:`KeyIndex` (a numpy hash index over the
sorted keys). No Python object per n-gram.

Counting
--------
The positions of the corpus are sorted by their n-gram's key with stable least-significant-
digit radix passes on 16-bit digits (numpy's stable argsort of ``uint16`` is a radix sort,
~20x faster than sorting ``int64``): one pass by the token, shared by every order, then per
order the pass(es) by the rank of the context. Each order's distinct keys, counts and the
rank at every position then follow from one comparison of neighbours. Working arrays use
the narrowest unsigned dtype that holds them (``uint16`` below 2^16): on corpora of this
size the time goes to memory traffic, not arithmetic.

Streaming
---------
:func:`merge_counts` adds the counts of two corpora. Ranks change when the order below gains
n-grams, so both sides' keys are re-ranked first (a monotone map: each side stays sorted)
and then merged with ``searchsorted``. Only keys and counts are merged; the derived columns
(context, last token, suffix, ``<s>`` flag, child slices, lookup index) are rebuilt once at
the end by :func:`tables_from_counts`, so a model fitted chunk by chunk is the model fitted
on the concatenation.
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
        if arr.ndim != 1 or arr.dtype.kind not in "iu":
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
    lengths = np.fromiter(map(len, sequences), np.int64, len(sequences))
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
        ends = np.cumsum(sizes)
        word = np.ones(int(ends[-1]) if ends.size else 0, bool)
        word[ends - 1] = False
        tok = np.full(word.size, EOS, np.int64)
        tok[word] = tokens  # a masked copy: cheaper than scattering to computed positions
        first = ends - sizes
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


def narrow_dtype(bound: int) -> type:
    """The narrowest of uint16, uint32, int64 holding the integers ``0 .. bound - 1``."""
    return np.uint16 if bound <= 1 << 16 else np.uint32 if bound <= 1 << 32 else np.int64


def narrow(values: np.ndarray, bound: int) -> np.ndarray:
    """Non-negative ``values`` below ``bound`` in :func:`narrow_dtype` (no copy if already)."""
    return values.astype(narrow_dtype(bound), copy=False)


def argsort_int(x: np.ndarray, bound: int, order: np.ndarray | None = None) -> np.ndarray:
    """A stable argsort of non-negative integers below ``bound`` (of ``x[order]`` when
    ``order`` is given: then ``order`` re-sorted, stably, by the values it points at).

    Least-significant-digit radix sort on 16-bit digits (numpy's stable sort of uint16 is a
    radix sort, ~20x faster than sorting int64) while the values have at most 48 bits,
    numpy's argsort beyond."""
    bits = max(int(bound - 1).bit_length(), 1)
    if bits > 48:
        if order is None:
            return np.argsort(x, kind="stable")
        return order[np.argsort(x[order], kind="stable")]
    for shift in range(0, bits, 16):
        digit = (x.astype(np.uint16, copy=False) if bits <= 16
                 else ((x >> shift) & 0xFFFF).astype(np.uint16))
        if order is None:
            order = np.argsort(digit, kind="stable")
        else:
            order = order[np.argsort(digit[order], kind="stable")]
    return order


_GOLDEN = np.uint64(0x9E3779B97F4A7C15)


class KeyIndex:
    """Exact key -> position lookups into a sorted array of non-negative int64 keys.

    ``numpy.searchsorted`` costs ~60-90 ns a query on tables of ~10^5 keys (a cache-missing
    binary search). Here one vectorized probe of a hash table answers nearly every query: the
    table has ``2^b`` slots for ``n < 2^(b-2)`` keys (at most a quarter full, 4 bytes a slot),
    Fibonacci hashing, and each key is written at its home slot, where one of the keys that
    share a home stays. A slot holds the position of that key, with the sign bit set when
    keys that share the home were left out ("spilled"); those (about 1 in 10 at a quarter
    full, fewer below) and the queries that land on a spilled slot without matching its key
    are answered by ``searchsorted``. Building it is one scatter and one gather, without a
    sort. Full keys are compared (through the sorted array): no false positives. The sorted
    key array stays the model's storage (slices of continuations, ARPA order).
    """

    def __init__(self, keys: np.ndarray) -> None:
        self.keys = keys
        n = keys.size
        bits = max(4, n.bit_length() + 2)
        self.shift = np.uint64(64 - bits)
        dtype = np.int32 if n < 1 << 30 else np.int64
        self.flag = dtype(np.iinfo(dtype).min)  # the sign bit: keys spilled from this slot
        # An empty slot holds position 0: a query landing there cannot equal keys[0], whose
        # home slot is not empty.
        self.slots = np.zeros(1 << bits, dtype)
        at = self.home(keys)
        pos = np.arange(n, dtype=dtype)
        self.slots[at] = pos  # of keys sharing a home, one stays
        spilled = at[self.slots.take(at) != pos]
        self.slots[spilled] |= self.flag

    def home(self, q: np.ndarray) -> np.ndarray:
        h = np.asarray(q, np.int64).view(np.uint64) * _GOLDEN
        h >>= self.shift
        return h.view(np.int64)

    def find(self, q: np.ndarray) -> np.ndarray:
        """Position (int64) of each key of ``q`` in the sorted array, or -1 where absent
        (negative queries are absent)."""
        keys = self.keys
        if keys.size == 0:
            return np.full(np.shape(q), -1, np.int64)
        slot = self.slots.take(self.home(q))
        pos = slot & ~self.flag
        hit = keys.take(pos) == q
        res = np.where(hit, pos, np.int64(-1))
        rest = np.flatnonzero((slot < 0) > hit)  # spilled slot, other key
        if rest.size:
            qr = q[rest]
            i = np.searchsorted(keys, qr)
            np.minimum(i, keys.size - 1, out=i)
            res[rest] = np.where(keys.take(i) == qr, i, -1)
        return res


@dataclass
class Table:
    """The distinct n-grams of one order, sorted by rank key.

    keys: ``rank(context) * V + last``; ctx: ``rank(context)`` (index into the table one
    order down); last: the last token; count: raw occurrences; suffix: index in the table one
    order down of the n-gram minus its first token; bos: the slice of the n-grams that start
    with ``<s>`` (contiguous: the tables are in lexicographic order); child_lo / child_hi:
    the slice of the next order's table continuing this n-gram.
    """

    order: int
    keys: np.ndarray
    ctx: np.ndarray
    last: np.ndarray
    count: np.ndarray
    suffix: np.ndarray
    bos: slice
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


def unigram_table(count: np.ndarray) -> Table:
    """Table 1: dense, every id of the vocabulary (``count``: (V,) occurrences)."""
    V = count.size
    ids = np.arange(V, dtype=np.int64)
    zeros = np.zeros(V, np.int64)
    return Table(1, keys=ids, ctx=zeros, last=ids, count=count, suffix=zeros,
                 bos=slice(BOS, BOS + 1))


def bos_slice(ctx: np.ndarray, below: Table) -> slice:
    """The entries of a table (``ctx``: their sorted contexts) that start with ``<s>``: those
    continuing the ``<s>`` entries of the table below."""
    return slice(*np.searchsorted(ctx, [below.bos.start, below.bos.stop]).tolist())


def count_tables(docs: Docs, order: int, vocab_size: int) -> list[Table]:
    """Tables of orders 1..order of the documents, without lookup indexes and child slices
    (:func:`link_tables` adds them). An order that has no n-gram (a corpus too small) gives
    an empty table, and so do the orders above it (see :func:`check_orders`)."""
    tok, V, T = docs.tok, vocab_size, docs.tok.size
    tables = [unigram_table(np.bincount(tok, minlength=V))]
    tok_n = narrow(tok, V)
    by_tok = argsort_int(tok_n, V)  # the last digit of every order's key: one shared pass
    # Per order: the context of the n-gram ending at each position, as the value sorted on
    # (``ctx_of + base`` is the context's index; 0 with base -1 means no n-gram there), and
    # ``rank``: each position's index in this order's table, plus one (0: none).
    ctx_of, bound, base = narrow(docs.prev, V), V, 0
    rank = None
    for n in range(2, order + 1):
        o = argsort_int(ctx_of, bound, by_tok)
        if base:
            o = o[T - np.count_nonzero(ctx_of):]  # positions without context sort first
        if o.size == 0:
            empty = np.zeros(0, np.int64)
            tables += [Table(m, empty, empty, empty, empty, empty, slice(0, 0))
                       for m in range(n, order + 1)]
            break
        c, w = ctx_of[o], tok_n[o]
        new = np.empty(o.size, bool)
        new[0] = True
        np.not_equal(c[1:], c[:-1], out=new[1:])
        new[1:] |= w[1:] != w[:-1]
        starts = np.flatnonzero(new)
        ctx = c[starts].astype(np.int64)
        if base:
            ctx += base
        last = w[starts].astype(np.int64)
        one = o[starts]  # a position of each distinct n-gram
        suffix = tok[one] if rank is None else rank[one].astype(np.int64) - 1
        tables.append(Table(n, keys=ctx * V + last, ctx=ctx, last=last,
                            count=np.diff(starts, append=o.size), suffix=suffix,
                            bos=bos_slice(ctx, tables[-1])))
        if n < order:
            size = starts.size + 1
            rank = np.zeros(T, narrow_dtype(size))
            rank[o] = np.cumsum(new, dtype=rank.dtype)
            ctx_of = np.empty_like(rank)
            ctx_of[:1] = 0
            ctx_of[1:] = rank[:-1]
            ctx_of[docs.first[docs.first < T]] = 0  # nothing before a document's first token
            bound, base = size, -1
    return tables


def check_orders(tables: list[Table]) -> None:
    """A UserError when some order has no n-gram at all (the corpus is too small)."""
    order = len(tables)
    for t in tables[1:]:
        if len(t) == 0:
            n = t.order
            raise UserError(
                f"the training corpus is too small for an order-{order} model: it has no "
                f"{n}-grams (a document yields {n}-grams only with at least {n - 2} tokens, "
                "<s> and </s> added)")


def link_tables(tables: list[Table]) -> list[Table]:
    """Add each table's lookup index (orders >= 2) and child slices (all but the top)."""
    for below, t in zip(tables, tables[1:]):
        if t.index is None:
            t.index = KeyIndex(t.keys)
        below.child_lo, below.child_hi = link_children(len(below), t)
    return tables


@dataclass
class Counts:
    """Raw counts of orders 1..N, what a stream of chunks accumulates: ``unigram`` (V,)
    occurrences of each id; ``keys[n - 2]`` / ``count[n - 2]``: the sorted rank keys of the
    distinct n-grams of order n and their occurrences."""

    unigram: np.ndarray
    keys: list[np.ndarray]
    count: list[np.ndarray]

    @classmethod
    def of(cls, tables: list[Table]) -> Counts:
        return cls(tables[0].count, [t.keys for t in tables[1:]], [t.count for t in tables[1:]])


def union_sorted(a: np.ndarray, b: np.ndarray
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The sorted union of two sorted arrays of distinct keys, and the position in it of
    each key of ``a`` and of ``b``."""
    j = np.searchsorted(a, b)  # a's keys below each key of b
    dup = np.zeros(b.size, bool)
    inside = np.flatnonzero(j < a.size)
    dup[inside] = a[j[inside]] == b[inside]
    fresh = np.flatnonzero(~dup)
    at_b = np.empty(b.size, np.int64)
    at_b[fresh] = j[fresh] + np.arange(fresh.size)  # after those, and the new keys below it
    from_a = np.ones(a.size + fresh.size, bool)
    from_a[at_b[fresh]] = False
    at_a = np.flatnonzero(from_a)
    at_b[dup] = at_a[j[dup]]
    out = np.empty(from_a.size, np.int64)
    out[from_a] = a
    out[at_b[fresh]] = b[fresh]
    return out, at_a, at_b


def merge_counts(a: Counts, b: Counts, vocab_size: int) -> Counts:
    """The counts of two corpora together (the same vocabulary and order)."""
    V = vocab_size
    keys, count = [], []
    new_a = new_b = None  # each side's index -> merged index, in the order below
    for ka, ca, kb, cb in zip(a.keys, a.count, b.keys, b.count):
        if new_a is not None:  # re-rank the contexts: monotone, so both stay sorted
            ka = _rerank(ka, new_a, V)
            kb = _rerank(kb, new_b, V)
        k, new_a, new_b = union_sorted(ka, kb)
        c = np.zeros(k.size, np.int64)
        c[new_a] = ca
        c[new_b] += cb
        keys.append(k)
        count.append(c)
    return Counts(a.unigram + b.unigram, keys, count)


def _rerank(keys: np.ndarray, new_rank: np.ndarray, vocab_size: int) -> np.ndarray:
    ctx = keys // vocab_size
    return keys + (new_rank[ctx] - ctx) * vocab_size


def tables_from_counts(counts: Counts, vocab_size: int) -> list[Table]:
    """Complete, linked tables from raw counts (see :class:`Counts`)."""
    V = vocab_size
    tables = [unigram_table(counts.unigram)]
    for n, (k, c) in enumerate(zip(counts.keys, counts.count), start=2):
        below = tables[-1]
        ctx = k // V  # (numpy's divmod is ~10x slower than floor division by a scalar)
        last = k - ctx * V
        if n == 2:
            suffix = last.copy()
        else:  # (w2 .. wn) is listed: it ends wherever (w1 .. wn) does
            suffix = below.index.find(below.suffix[ctx] * V + last)
        tables.append(Table(n, keys=k, ctx=ctx, last=last, count=c, suffix=suffix,
                            bos=bos_slice(ctx, below), index=KeyIndex(k)))
    return link_tables(tables)


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
