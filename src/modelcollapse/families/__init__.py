"""Model families. Importing this package registers every family in ``FAMILIES``."""

from . import categorical, gaussian, gmm, kde, labels, linear_regression, ngram, transformer  # noqa: F401  (registration)
from . import images  # noqa: F401  (registration: vae, diffusion, pca_gmm, image_kde)
from .base import FAMILIES, Family, Sampling

__all__ = ["FAMILIES", "Family", "Sampling"]
