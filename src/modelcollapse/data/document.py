"""One document of a text corpus, and the fingerprint of a list of texts."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True)
class Document:
    """A non-empty text with the place it came from.

    ``source`` is the file path, ``"embedded:<topic>"`` for the built-in corpus, or
    ``"hf:<name>:<config>:<split>"`` for a Hugging Face dataset. ``index`` is the 1-based line
    number for ``.txt`` / ``.jsonl`` / ``.csv`` files (the first line of the paragraph in
    paragraph mode, the first line of the row for CSV), the 0-based row for Parquet and
    Hugging Face datasets, and the 0-based paragraph number within a topic for the embedded
    corpus. Together they point a user at the exact record.
    """

    text: str
    source: str
    index: int


def texts_sha256(texts: Iterable[str]) -> str:
    """Hex SHA-256 of the UTF-8 texts, each followed by a NUL byte.

    The separator makes the hash tell ``["ab", "c"]`` from ``["a", "bc"]``; the order of the
    texts matters.
    """
    digest = hashlib.sha256()
    for text in texts:
        digest.update(text.encode("utf-8", "surrogatepass"))
        digest.update(b"\0")
    return digest.hexdigest()
