"""Model families. Importing this package registers every family in ``FAMILIES``."""

from . import categorical, gaussian, gmm, kde, labels, linear_regression, ngram, transformer  # noqa: F401  (registration)
from .base import FAMILIES, Family, Sampling

__all__ = ["FAMILIES", "Family", "Sampling"]
