"""Tokenizers that turn texts into token strings: ``word`` (default), ``char`` and ``bpe``.

* ``word``: the regex :data:`WORD_PATTERN`: a run of word characters (``\\w``: letters, digits,
  underscore) with inner apostrophes or hyphens kept (``don't``, ``self-consuming``,
  ``l’homme``), or any single other non-space character (punctuation, symbols) on its own.
  :meth:`Tokenizer.detokenize` joins tokens with spaces, except before closing punctuation
  ``. , ; : ! ? ) ] } %`` and after opening brackets ``( [ {``. Whitespace is not kept, so
  ``detokenize(tokenize(t))`` is a readable normalisation of ``t``, not ``t`` itself.
* ``char``: every character is a token, runs of whitespace become one space; detokenize
  concatenates.
* ``bpe``: byte-level BPE trained by the ``tokenizers`` library (extra ``bpe``) on the texts
  given to :meth:`Tokenizer.fit`, merging up to ``vocab_size`` symbols (GPT-2 style
  pre-tokenization, a space is part of the following token as ``Ġ``). The base alphabet is
  the bytes seen in training; a byte never seen becomes ``<unk>``. Detokenize restores the
  text exactly when no ``<unk>`` occurs. Training is deterministic for the same texts.

``lowercase`` lowercases texts before tokenizing (all kinds).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from typing import Literal

from ..errors import UserError

KINDS = ("word", "char", "bpe")
WORD_PATTERN = r"\w+(?:['’-]\w+)*|[^\w\s]"
NO_SPACE_BEFORE = frozenset(".,;:!?)]}%")
NO_SPACE_AFTER = frozenset("([{")
MIN_BPE_VOCAB = 10
UNK_TOKEN = "<unk>"  # the same string as modelcollapse.lm's id 0

_WORD_RE = re.compile(WORD_PATTERN)


class Tokenizer:
    """A tokenizer of one ``kind``; made by :func:`make_tokenizer`.

    ``fit(texts)`` trains BPE and is a no-op for word / char. ``tokenize`` maps a text to a
    list of token strings, ``tokenize_many`` does so for a list of texts (one list each, BPE
    batched in Rust), ``detokenize`` maps tokens back to a readable text.
    """

    def __init__(self, kind: str, lowercase: bool, vocab_size: int | None):
        self.kind = kind
        self.lowercase = lowercase
        self.vocab_size = vocab_size
        self._bpe = None  # the trained tokenizers.Tokenizer (kind "bpe" after fit)

    def fit(self, texts: Sequence[str]) -> Tokenizer:
        """Train BPE on ``texts`` (deterministic); word and char have nothing to learn."""
        if self.kind != "bpe":
            return self
        if len(texts) == 0:
            raise UserError("the bpe tokenizer needs at least one text to train on")
        tokenizers = _import_tokenizers()
        bpe = tokenizers.Tokenizer(tokenizers.models.BPE(unk_token=UNK_TOKEN))
        if self.lowercase:
            bpe.normalizer = tokenizers.normalizers.Lowercase()
        bpe.pre_tokenizer = tokenizers.pre_tokenizers.ByteLevel(add_prefix_space=False)
        bpe.decoder = tokenizers.decoders.ByteLevel()
        trainer = tokenizers.trainers.BpeTrainer(vocab_size=self.vocab_size,
                                                 special_tokens=[UNK_TOKEN], show_progress=False)
        bpe.train_from_iterator(texts, trainer=trainer, length=len(texts))
        self._bpe = bpe
        return self

    def _trained(self):
        if self._bpe is None:
            raise RuntimeError("call fit(texts) on a bpe tokenizer before tokenizing")
        return self._bpe

    def tokenize(self, text: str) -> list[str]:
        """The tokens of one text (see the module docstring for each kind)."""
        if self.kind == "bpe":
            return self._trained().encode(text).tokens
        if self.lowercase:
            text = text.lower()
        if self.kind == "word":
            return _WORD_RE.findall(text)
        return list(" ".join(text.split()))

    def tokenize_many(self, texts: Sequence[str]) -> list[list[str]]:
        """``[tokenize(t) for t in texts]``, faster (BPE encodes the batch in parallel)."""
        if self.kind == "bpe":
            return [encoding.tokens for encoding in self._trained().encode_batch(list(texts))]
        if self.lowercase:
            texts = [text.lower() for text in texts]
        if self.kind == "word":
            findall = _WORD_RE.findall
            return [findall(text) for text in texts]
        return [list(" ".join(text.split())) for text in texts]

    def detokenize(self, tokens: Sequence[str]) -> str:
        """A readable text from tokens (word: spacing rule above; char: concatenation)."""
        if self.kind == "bpe":
            return self._trained().decoder.decode(list(tokens))
        if self.kind == "char":
            return "".join(tokens)
        parts: list[str] = []
        for token in tokens:
            if parts and token not in NO_SPACE_BEFORE and parts[-1] not in NO_SPACE_AFTER:
                parts.append(" ")
            parts.append(token)
        return "".join(parts)

    def as_record(self) -> dict:
        """JSON-able description; for a trained BPE also its actual size and model SHA-256."""
        record: dict = {"kind": self.kind, "lowercase": self.lowercase,
                        "vocab_size": self.vocab_size}
        if self.kind == "word":
            record["pattern"] = WORD_PATTERN
        elif self.kind == "char":
            record["pattern"] = "one token per character, whitespace runs as one space"
        else:
            record["pattern"] = "byte-level BPE (tokenizers), GPT-2 pre-tokenization"
            if self._bpe is not None:
                import tokenizers

                record["trained_vocab_size"] = self._bpe.get_vocab_size()
                record["model_sha256"] = hashlib.sha256(self._bpe.to_str().encode()).hexdigest()
                record["tokenizers_version"] = tokenizers.__version__
        return record

    def __repr__(self) -> str:
        return (f"Tokenizer(kind={self.kind!r}, lowercase={self.lowercase}, "
                f"vocab_size={self.vocab_size})")


def _import_tokenizers():
    try:
        import tokenizers
        import tokenizers.decoders
        import tokenizers.models
        import tokenizers.normalizers
        import tokenizers.pre_tokenizers
        import tokenizers.trainers
    except ImportError:
        raise UserError("the bpe tokenizer needs the tokenizers package; install "
                        "modelcollapse[bpe]") from None
    return tokenizers


def make_tokenizer(kind: Literal["word", "char", "bpe"] = "word", lowercase: bool = False,
                   vocab_size: int | None = None) -> Tokenizer:
    """A tokenizer; ``vocab_size`` (an int >= 10) is required for ``bpe`` and refused otherwise."""
    if kind not in KINDS:
        raise UserError(f"unknown tokenizer '{kind}'; choose one of: {', '.join(KINDS)}")
    if not isinstance(lowercase, bool):
        raise UserError(f"lowercase must be true or false, got {lowercase!r}")
    if kind == "bpe":
        if vocab_size is None:
            raise UserError("the bpe tokenizer needs a vocab_size (an integer, at least "
                            f"{MIN_BPE_VOCAB})")
        if isinstance(vocab_size, bool) or not isinstance(vocab_size, int) \
                or vocab_size < MIN_BPE_VOCAB:
            raise UserError(f"vocab_size must be an integer of at least {MIN_BPE_VOCAB}, "
                            f"got {vocab_size!r}")
        _import_tokenizers()  # fail at configuration time, not after loading a corpus
    elif vocab_size is not None:
        raise UserError(f"vocab_size applies to learned vocabularies only; use kind='bpe' "
                        f"or drop vocab_size for the {kind} tokenizer")
    return Tokenizer(kind, lowercase, vocab_size)
