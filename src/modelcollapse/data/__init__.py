"""Real text for the loops: corpora, splits, tokenizers and vocabularies.

``load_corpus(spec)`` reads the built-in corpus (``None`` / ``"embedded"``), files (a path or
glob of .txt / .jsonl / .csv / .parquet, optionally .gz / .zst) or a Hugging Face dataset
(``hf:NAME[:CONFIG[:SPLIT]]``) into a :class:`Corpus` with provenance; ``read_documents``
streams the same documents. ``Corpus.splits`` / ``split_documents`` hash documents into
train / validation / test. ``make_tokenizer`` gives word, char or BPE tokens, and
``Vocabulary`` maps tokens to the ids the n-gram models use.
"""

from .corpus import Corpus, load_corpus, read_documents
from .document import Document
from .embedded import EMBEDDED
from .splits import Splits, split_documents
from .tokenize import Tokenizer, make_tokenizer
from .vocab import Vocabulary

__all__ = ["Document", "Corpus", "Splits", "load_corpus", "read_documents", "split_documents",
           "Tokenizer", "make_tokenizer", "Vocabulary", "EMBEDDED"]
