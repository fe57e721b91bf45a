"""The built-in corpus: prose paragraphs of the Python documentation that ships with CPython.

``pydoc_data.topics.topics`` maps ~80 help topics (``"assert"``, ``"typesseq"``, ...) to the
plain-text rendering of their reference pages. It is installed with every CPython, needs no
network, and is a few hundred thousand characters of edited English prose: large enough for
n-gram experiments, small enough to load in a blink.

A document is one paragraph (a blank-line-separated block) of one topic, in topic-name order,
with its whitespace collapsed to single spaces. The reference pages interleave prose with
code, grammar rules and headings; :func:`is_prose` keeps a paragraph only when

1. it is not a heading (its second line is not an underline of ``* = - ^ ~ #``),
2. no line starts with ``>>>`` or ``...`` (interactive examples) and none holds ``::=``
   (grammar rules),
3. it has at least 4 words and ends like a sentence (``. : ; , ? ! ) "``),
4. letters make at least 70% of its non-space characters (code is heavy in symbols),
5. it is not a repeat of an earlier kept paragraph (boilerplate such as "New in version 3.2."
   would otherwise sit in several splits at once).

The text is generated from the CPython docs for each release: it is the same on every machine
with the same Python version, and may change slightly between patch releases (the provenance
records the version and the SHA-256 of the texts, so runs can be compared).
"""

from __future__ import annotations

import re
import sys
from collections.abc import Iterator

from ..errors import UserError
from .document import Document

EMBEDDED = "embedded"

_PARAGRAPH_BREAK = re.compile(r"\n[ \t]*\n")
_UNDERLINE_CHARS = frozenset("*=-^~#")
_SENTENCE_END = frozenset('.:;,?!)"')
MIN_WORDS = 4
MIN_LETTER_SHARE = 0.7


def is_prose(paragraph: str) -> bool:
    """Whether a raw paragraph of the documentation is prose (rules 1-4 of the module docstring)."""
    lines = [line.strip() for line in paragraph.splitlines() if line.strip()]
    if not lines:
        return False
    if len(lines) > 1 and set(lines[1]) <= _UNDERLINE_CHARS:
        return False
    if any(line.startswith((">>>", "...")) or "::=" in line for line in lines):
        return False
    words = " ".join(lines).split()
    if len(words) < MIN_WORDS or words[-1][-1] not in _SENTENCE_END:
        return False
    chars = "".join(words)
    return sum(c.isalpha() for c in chars) >= MIN_LETTER_SHARE * len(chars)


def _topics() -> dict[str, str]:
    try:
        from pydoc_data.topics import topics
    except ImportError:
        raise UserError("this Python installation has no pydoc_data module (some distributions "
                        "strip it), so the embedded corpus is unavailable; pass a text file "
                        "instead") from None
    return topics


class EmbeddedSource:
    """The prose paragraphs of ``pydoc_data.topics``, topics sorted by name.

    ``Document.source`` is ``"embedded:<topic>"`` and ``index`` the 0-based position of the
    paragraph among all paragraphs of that topic (prose or not), so it points at the original.
    """

    def documents(self) -> Iterator[Document]:
        topics = _topics()
        seen: set[str] = set()
        for topic in sorted(topics):
            paragraphs = _PARAGRAPH_BREAK.split(topics[topic])
            for index, paragraph in enumerate(paragraphs):
                if is_prose(paragraph):
                    text = " ".join(paragraph.split())
                    if text not in seen:
                        seen.add(text)
                        yield Document(text, f"embedded:{topic}", index)

    def describe(self) -> dict:
        version = ".".join(map(str, sys.version_info[:3]))
        return {
            "description": f"Python {version} documentation (pydoc_data.topics), PSF license",
            "origin": {
                "module": "pydoc_data.topics",
                "python_version": version,
                "python_implementation": sys.implementation.name,
                "n_topics": len(_topics()),
                "selection": "distinct prose paragraphs, whitespace collapsed "
                             "(modelcollapse.data.embedded.is_prose)",
            },
            "license": "Python Software Foundation License Version 2 (PSF-2.0)",
            "reproducibility": f"identical on every machine with Python {version}; the text "
                               f"is regenerated for each CPython release, compare sha256",
        }

    def predefined(self, documents: list[Document]) -> dict[str, list[str]] | None:
        return None
