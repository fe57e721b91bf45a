"""A corpus of real text: documents, their provenance and their train / validation / test splits.

Corpus specs (the ``spec`` argument):

* ``None`` or ``"embedded"``: the built-in corpus, prose of the Python documentation bundled
  with CPython (:mod:`modelcollapse.data.embedded`), available offline everywhere;
* a path or a glob (``data/*.jsonl.gz``, ``corpus/**/*.txt``): text, JSON Lines, CSV or Parquet
  files, optionally gzip / zstd compressed (:mod:`modelcollapse.data.files`);
* ``hf:NAME[:CONFIG[:SPLIT]]``: a Hugging Face dataset (:mod:`modelcollapse.data.hf`).

:func:`read_documents` streams documents; :func:`load_corpus` collects them into a
:class:`Corpus` with a provenance record fit to store next to results.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import closing
from dataclasses import dataclass
from typing import Literal, Protocol

from ..errors import UserError
from .document import Document, texts_sha256
from .embedded import EMBEDDED, EmbeddedSource
from .readers import UNITS, FileSource
from .splits import Splits, check_fractions, split_documents


class Source(Protocol):
    """Where documents come from: one per kind of corpus spec."""

    def documents(self) -> Iterator[Document]: ...

    def describe(self) -> dict: ...  # description, origin, license

    def predefined(self, documents: list[Document]) -> dict[str, list[str]] | None: ...


def open_source(spec: str | None, text_field: str | None = None,
                unit: Literal["auto", "line", "paragraph"] = "auto") -> Source:
    """The source a spec names; checks the arguments and that the files or dataset exist."""
    if unit not in UNITS:
        raise UserError(f"unknown unit '{unit}'; choose one of: {', '.join(UNITS)}")
    if text_field is not None and (not isinstance(text_field, str) or not text_field):
        raise UserError(f"text_field must be a non-empty column or field name, got {text_field!r}")
    if spec is None or spec == EMBEDDED:
        return EmbeddedSource()
    if not isinstance(spec, str) or not spec.strip():
        raise UserError(f"a corpus spec must be '{EMBEDDED}', a path or glob, or hf:NAME, "
                        f"got {spec!r}")
    if spec.startswith("hf:"):
        from .hf import HfSource  # keeps `datasets` out of the import unless asked for

        return HfSource(spec, text_field)
    return FileSource(spec, text_field, unit)


def _at_least_one(documents: Iterator[Document], name: str) -> Iterator[Document]:
    n_docs = 0
    with closing(documents):
        for doc in documents:
            n_docs += 1
            yield doc
    if n_docs == 0:
        raise UserError(f"the corpus '{name}' has no documents")


def read_documents(spec: str | None = None, *, text_field: str | None = None,
                   unit: Literal["auto", "line", "paragraph"] = "auto") -> Iterator[Document]:
    """Stream the non-empty documents of a corpus spec, never holding the whole corpus.

    ``text_field`` names the JSON field / CSV, Parquet or dataset column with the text
    (default ``"text"``); ``unit`` says how ``.txt`` files are cut: ``"line"``, ``"paragraph"``
    (blank-line separated) or ``"auto"`` (paragraphs when the file has a blank line between
    text, else lines). Whitespace-only documents are skipped; a file, or a corpus, without any
    document is an error. Argument and spec errors are raised at the call, reading errors
    (malformed lines, bad bytes) while iterating, all as :class:`UserError`.
    """
    source = open_source(spec, text_field, unit)
    return _at_least_one(source.documents(), EMBEDDED if spec is None else spec)


@dataclass
class Corpus:
    """Documents of one corpus, with provenance and (for some datasets) predefined splits.

    ``name`` is the spec as given (``"embedded"`` for ``None``). ``provenance`` is JSON-able:
    ``description``, ``origin`` (files, Hugging Face id, or Python version), ``license``,
    ``n_docs``, ``n_chars``, ``sha256`` (of the texts in order, see
    :func:`~modelcollapse.data.document.texts_sha256`), ``max_docs`` and ``truncated``.
    ``predefined`` maps ``train`` / ``validation`` / ``test`` to texts when the dataset ships
    its own splits.
    """

    name: str
    documents: list[Document]
    provenance: dict
    predefined: dict[str, list[str]] | None = None

    def texts(self) -> list[str]:
        """The document texts in corpus order."""
        return [doc.text for doc in self.documents]

    def splits(self, validation: float = 0.1, test: float = 0.1, seed: int = 0) -> Splits:
        """Train / validation / test texts.

        Without predefined splits: :func:`split_documents` over all texts. With them: the
        dataset's own splits, and a missing validation or test split is hashed out of the
        train split with the fraction asked for (a predefined split ignores its fraction).
        """
        check_fractions(validation, test)
        if self.predefined is None:
            return split_documents(self.texts(), validation, test, seed)
        train = self.predefined["train"]
        missing = tuple(name for name in ("validation", "test") if name not in self.predefined)
        filled = split_documents(train, validation if "validation" in missing else 0.0,
                                 test if "test" in missing else 0.0, seed)
        return Splits(
            train=filled.train,
            validation=self.predefined.get("validation", filled.validation),
            test=self.predefined.get("test", filled.test),
            method="predefined", seed=filled.seed, validation_fraction=float(validation),
            test_fraction=float(test), filled=missing)


def load_corpus(spec: str | None = None, *, text_field: str | None = None,
                unit: Literal["auto", "line", "paragraph"] = "auto",
                max_docs: int | None = None) -> Corpus:
    """Read a corpus spec into memory (see :func:`read_documents` for the arguments).

    ``max_docs`` keeps the first documents in reading order (for datasets with predefined
    splits, train comes first, so a small cap may keep train only; the held-out splits are
    then hashed out of it).
    """
    if max_docs is not None and (isinstance(max_docs, bool) or not isinstance(max_docs, int)
                                 or max_docs < 1):
        raise UserError(f"max_docs must be a positive integer or None, got {max_docs!r}")
    name = EMBEDDED if spec is None else spec
    source = open_source(spec, text_field, unit)
    documents: list[Document] = []
    truncated = False
    with closing(_at_least_one(source.documents(), name)) as stream:
        for doc in stream:
            if max_docs is not None and len(documents) == max_docs:
                truncated = True
                break
            documents.append(doc)
    texts = [doc.text for doc in documents]
    provenance = {
        "spec": name,
        **source.describe(),
        "n_docs": len(documents),
        "n_chars": sum(map(len, texts)),
        "sha256": texts_sha256(texts),
        "max_docs": max_docs,
        "truncated": truncated,
    }
    return Corpus(name=name, documents=documents, provenance=provenance,
                  predefined=source.predefined(documents))
