"""Train / validation / test splits of a corpus by a stable hash of each text.

Each text goes to a split by ``u = blake2b(f"{seed}\\0" + text) / 2**64`` in ``[0, 1)``:
``u < test`` -> test, ``u < test + validation`` -> validation, else train. So the split of a
document depends only on its text and the seed: not on corpus order, size or a random state,
it can be computed while streaming, and identical texts always land in the same split (a
duplicated document can never leak from train into test). Within a split, corpus order is kept.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from numbers import Integral, Real

from ..errors import UserError
from .document import texts_sha256

SPLIT_NAMES = ("train", "validation", "test")
_SCALE = 2.0 ** -64  # maps a 64-bit digest to [0, 1)


@dataclass(frozen=True)
class Splits:
    """Texts of the three splits, with how they were made.

    ``method`` is ``"hash"`` (:func:`split_documents`) or ``"predefined"`` (the dataset's own
    splits; ``filled`` names the splits that were missing and were hashed out of its train
    split). ``validation_fraction`` / ``test_fraction`` are the fractions that were asked for.
    """

    train: list[str]
    validation: list[str]
    test: list[str]
    method: str = "hash"
    seed: int = 0
    validation_fraction: float = 0.0
    test_fraction: float = 0.0
    filled: tuple[str, ...] = ()

    def as_record(self) -> dict:
        """JSON-able summary: method, seed, asked and actual fractions, sizes, SHA-256 per split."""
        parts = {name: getattr(self, name) for name in SPLIT_NAMES}
        total = sum(len(texts) for texts in parts.values())
        return {
            "method": self.method,
            "seed": self.seed,
            "requested": {"validation": self.validation_fraction, "test": self.test_fraction},
            "filled_by_hash": list(self.filled),
            "sizes": {name: len(texts) for name, texts in parts.items()},
            "fractions": {name: len(texts) / total if total else 0.0
                          for name, texts in parts.items()},
            "sha256": {name: texts_sha256(texts) for name, texts in parts.items()},
        }


def check_fractions(validation: float, test: float) -> None:
    """UserError unless each fraction is a number in [0, 1) and they sum to less than 1."""
    for name, value in (("validation", validation), ("test", test)):
        if isinstance(value, bool) or not isinstance(value, Real) or not 0 <= value < 1:
            raise UserError(f"the {name} fraction must be a number in [0, 1), got {value!r}")
    if validation + test >= 1:
        raise UserError(f"the validation and test fractions must sum to less than 1 so that "
                        f"training data remains, got {validation} + {test}")


def _check_seed(seed: int) -> None:
    if isinstance(seed, bool) or not isinstance(seed, Integral):
        raise UserError(f"the split seed must be an integer, got {seed!r}")


def split_fraction(text: str, seed: int) -> float:
    """The position in [0, 1) of a text for a seed (the number the split thresholds cut)."""
    digest = hashlib.blake2b(f"{seed}\0{text}".encode("utf-8", "surrogatepass"), digest_size=8)
    return int.from_bytes(digest.digest(), "big") * _SCALE


def split_documents(texts: Sequence[str], validation: float = 0.1, test: float = 0.1,
                    seed: int = 0) -> Splits:
    """Split texts into train / validation / test by a stable hash (see the module docstring).

    ``texts``: the corpus, ``n`` strings. Returns :class:`Splits` whose lists partition the
    texts, each in corpus order, with about ``n * validation`` and ``n * test`` texts held out.
    Raises :class:`UserError` for fractions outside [0, 1) or summing to 1 or more, and when
    the corpus is too small: train empty, or a split asked for (fraction > 0) came out empty.
    """
    check_fractions(validation, test)
    _check_seed(seed)
    seed = int(seed)
    parts: dict[str, list[str]] = {name: [] for name in SPLIT_NAMES}
    cut_test, cut_validation = test, test + validation
    for text in texts:
        u = split_fraction(text, seed)
        name = "test" if u < cut_test else "validation" if u < cut_validation else "train"
        parts[name].append(text)
    asked = {"train": 1.0, "validation": validation, "test": test}
    for name in SPLIT_NAMES:
        if asked[name] > 0 and not parts[name]:
            fraction = "" if name == "train" else f" of fraction {asked[name]}"
            distinct = len(set(texts))
            if 2 * distinct <= len(texts):
                # identical texts hash alike and always share a split: size is not the cause
                raise UserError(f"the corpus's {len(texts):,} documents hold only {distinct} "
                                f"distinct text(s), and identical texts always fall in the same "
                                f"split, which leaves the {name} split{fraction} empty; use a "
                                f"corpus of varied documents")
            raise UserError(f"the corpus is too small: its {len(texts)} documents leave the "
                            f"{name} split{fraction} empty; use a larger corpus"
                            + ("" if name == "train" else f" or set {name} to 0"))
    return Splits(**parts, method="hash", seed=seed, validation_fraction=float(validation),
                  test_fraction=float(test))
