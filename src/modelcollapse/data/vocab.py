"""A token <-> id mapping for the n-gram language models.

Ids 0, 1, 2 are ``<unk>``, ``<s>``, ``</s>`` (:mod:`modelcollapse.lm`'s ``UNK``, ``BOS``,
``EOS``); tokens get ids 3, 4, ... by descending training frequency, ties broken by the token
string, so the same training tokens always give the same ids. Tokens outside the vocabulary
encode as ``<unk>``; so do the strings ``<s>`` and ``</s>`` when they occur in text, because
the models add ids 1 and 2 themselves at document boundaries.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence

import numpy as np

from ..errors import UserError
from ..lm import N_SPECIAL, SPECIAL_TOKENS, UNK


class _Ids(dict):
    """token -> id with UNK for anything absent (one C-level lookup per token)."""

    def __missing__(self, token: str) -> int:
        return UNK


class Vocabulary:
    """``tokens[i]`` is the token of id ``i``; the first three are the special tokens.

    Build one from training tokens with :meth:`build`. ``min_count``, ``max_size``,
    ``n_tokens_counted`` and ``n_types_counted`` describe how it was built (for the record).
    """

    def __init__(self, tokens: Sequence[str], *, min_count: int = 1, max_size: int | None = None,
                 n_tokens_counted: int = 0, n_types_counted: int = 0, n_tokens_covered: int = 0):
        if tuple(tokens[:N_SPECIAL]) != SPECIAL_TOKENS:
            raise ValueError(f"a vocabulary starts with {SPECIAL_TOKENS}")
        self.tokens = list(tokens)
        self.min_count = min_count
        self.max_size = max_size
        self.n_tokens_counted = n_tokens_counted
        self.n_types_counted = n_types_counted
        self.n_tokens_covered = n_tokens_covered
        # Only words are looked up from text: the special strings map to UNK (module docstring).
        self._ids = _Ids((token, i) for i, token in enumerate(self.tokens) if i >= N_SPECIAL)
        self._ids[SPECIAL_TOKENS[UNK]] = UNK

    @classmethod
    def build(cls, token_docs: Iterable[Sequence[str]], min_count: int = 1,
              max_size: int | None = None) -> Vocabulary:
        """Count tokens over documents and keep those seen ``min_count`` times or more.

        ``token_docs``: documents as token lists (e.g. ``Tokenizer.tokenize_many(train)``).
        ``max_size`` caps the whole vocabulary, the 3 special ids included, keeping the most
        frequent tokens. The special strings in the data are not counted (they are reserved).
        """
        if isinstance(min_count, bool) or not isinstance(min_count, int) or min_count < 1:
            raise UserError(f"min_count must be a positive integer, got {min_count!r}")
        if max_size is not None and (isinstance(max_size, bool) or not isinstance(max_size, int)
                                     or max_size <= N_SPECIAL):
            raise UserError(f"max_size must be an integer above {N_SPECIAL} (the special tokens "
                            f"take ids 0-{N_SPECIAL - 1}) or None, got {max_size!r}")
        counts: Counter[str] = Counter()
        for doc in token_docs:
            counts.update(doc)
        for special in SPECIAL_TOKENS:
            counts.pop(special, None)
        kept = sorted((item for item in counts.items() if item[1] >= min_count),
                      key=lambda item: (-item[1], item[0]))
        if max_size is not None:
            kept = kept[:max_size - N_SPECIAL]
        return cls([*SPECIAL_TOKENS, *(token for token, _ in kept)], min_count=min_count,
                   max_size=max_size, n_tokens_counted=sum(counts.values()),
                   n_types_counted=len(counts), n_tokens_covered=sum(n for _, n in kept))

    def __len__(self) -> int:
        return len(self.tokens)

    def id(self, token: str) -> int:
        """The id of a token, ``UNK`` (0) for one outside the vocabulary."""
        return self._ids[token]

    def encode(self, token_docs: Sequence[Sequence[str]]) -> list[np.ndarray]:
        """One int32 array of ids per document (shape ``(len(doc),)``); unknown tokens -> 0."""
        lookup = self._ids.__getitem__
        return [np.fromiter(map(lookup, doc), dtype=np.int32, count=len(doc))
                for doc in token_docs]

    def decode(self, ids: Sequence[int]) -> list[str]:
        """The tokens of ids (special ids give their strings, e.g. ``<unk>``)."""
        size = len(self.tokens)
        tokens = []
        for i in ids:
            if not 0 <= i < size:
                raise UserError(f"token id {i} is outside this vocabulary of {size} tokens")
            tokens.append(self.tokens[i])
        return tokens

    def as_record(self) -> dict:
        """JSON-able summary of the vocabulary and how it was built."""
        counted = self.n_tokens_counted
        return {
            "size": len(self.tokens),
            "special_tokens": list(SPECIAL_TOKENS),
            "min_count": self.min_count,
            "max_size": self.max_size,
            "n_tokens_counted": counted,
            "n_types_counted": self.n_types_counted,
            "train_coverage": self.n_tokens_covered / counted if counted else None,
            "oov": "tokens outside the vocabulary, and the strings <s> and </s> in text, "
                   "encode as <unk> (id 0)",
        }

    def __repr__(self) -> str:
        return f"Vocabulary(size={len(self.tokens)}, min_count={self.min_count})"
