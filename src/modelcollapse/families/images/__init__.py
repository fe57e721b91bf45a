"""Image families: vae, diffusion (torch, batched across replicates), pca_gmm and image_kde
(numpy). Importing this package registers them."""

from . import diffusion, mixtures, vae  # noqa: F401  (registration)
