"""The ``vae`` family: an MLP variational autoencoder, R replicates trained as one batched model.

Shumailov et al. (Nature 2024) retrain a VAE on MNIST generation after generation (latent 20,
30 epochs, batch 256, lr 1e-3) and watch the digits blur into a few prototypes. Here: an
encoder pixels -> ``hidden`` -> (mu, log sigma^2) of a ``latent``-dimensional Gaussian, a
decoder latent -> ``hidden`` -> pixel logits, Bernoulli likelihood (binary cross-entropy on
the [0, 1] intensities) and a ``beta``-weighted KL term (beta = 1: the ELBO). Each generation
starts from a fresh initialization (seeded per replicate and generation) and trains
``epochs`` epochs with Adam. A sample is the decoder's mean image at z ~ N(0, temperature^2 I)
(truncated to the central ``truncation`` mass per coordinate): temperature < 1 is MAD's
sampling bias. Weights are not persisted (a generation takes seconds on a CPU); the chain's
metrics and sample grids are what a run keeps.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from ...errors import UserError
from ...batches import Samples
from ...randomness import Stream
from ..base import Sampling, register
from . import batched
from .base import (ImageFamily, ImageParams, _torch, torch_generators, train_batched,
                   truncated_normal)


@dataclass(frozen=True)
class VAEParams(ImageParams):
    """latent: latent dimensions. hidden: units of the encoder's and decoder's hidden layer.
    beta: weight of the KL term. epochs, batch_size, lr: Adam training per generation
    (batch_size a multiple of 32 and hidden of 16, the last partial batch of an epoch
    dropped: see families/images/batched.py). Plus the image corpus and metric parameters."""

    latent: int = 8
    hidden: int = 128
    beta: float = 1.0
    epochs: int = 30
    batch_size: int = 64
    lr: float = 1e-3
    trained: ClassVar[bool] = True

    def __post_init__(self) -> None:
        super().__post_init__()
        for name in ("latent", "hidden", "epochs", "batch_size"):
            if getattr(self, name) < 1:
                raise UserError(f"params.{name} must be >= 1; got {getattr(self, name)}")
        if self.batch_size % 32 or self.hidden % 16:
            raise UserError(f"params.batch_size must be a multiple of 32 and params.hidden of 16 "
                            f"(bit-identical chunks); got {self.batch_size} and {self.hidden}")
        if not (self.beta >= 0 and self.lr > 0):
            raise UserError(f"params.beta must be >= 0 and params.lr > 0; got {self.beta}, {self.lr}")


class VAEModels:
    """R fitted decoders: ``decoder`` stacked weights, ``loss_`` (R,) last-epoch mean
    training loss (negative ELBO per image, nats), ``generation``."""

    def __init__(self, decoder: list, loss: np.ndarray, generation: int) -> None:
        self.decoder = decoder
        self.loss_ = loss
        self.generation = generation


def train_vae(x, p: VAEParams, init_gens, batch_rngs, noise_gens):
    """Train R VAEs on x (R, N, D) float32 in one batched model; returns (decoder weights,
    (R,) mean loss over the last epoch)."""
    torch = _torch()
    R, N, D = x.shape
    encoder = batched.init_stacked(init_gens, [D, p.hidden, 2 * p.latent])
    decoder = batched.init_stacked(init_gens, [p.latent, p.hidden, D])
    opt = batched.adam(encoder + decoder, p.lr)
    encoder, decoder = opt.params[:len(encoder)], opt.params[len(encoder):]
    b = min(p.batch_size, N)
    steps_per_epoch = N // b
    last = torch.zeros(R)
    noise = torch.empty(R, b, p.latent)
    for step, rows in enumerate(batched.batch_orders(batch_rngs, N, p.batch_size, p.epochs)):
        xb = batched.gather(x, rows)                                     # (R, b, D)
        mu, logvar = batched.mlp(encoder, xb).chunk(2, dim=-1)           # (R, b, L) each
        z = mu + torch.exp(0.5 * logvar) * batched.stacked_randn(noise_gens, (b, p.latent), noise)
        logits = batched.mlp(decoder, z)
        rec = torch.nn.functional.binary_cross_entropy_with_logits(logits, xb, reduction="none").sum(-1)
        kl = 0.5 * (mu * mu + logvar.exp() - 1.0 - logvar).sum(-1)
        per_replicate = (rec + p.beta * kl).mean(dim=1)                  # (R,)
        opt.zero_grad()
        per_replicate.sum().backward()   # a sum of independent losses: each gradient is its own
        opt.step()
        if step >= (p.epochs - 1) * steps_per_epoch:
            last += per_replicate.detach() / steps_per_epoch
    return batched.detach(decoder), last.numpy().astype(float)


@register
class VAE(ImageFamily):
    name = "vae"
    description = "MLP variational autoencoder on images, R replicates trained as one batched model (torch)"
    Params = VAEParams

    def train(self, data: Samples, previous: VAEModels | None, stream: Stream, g: int) -> VAEModels:
        decoder, loss = train_batched(train_vae, data, self.params, stream, g)
        return VAEModels(decoder, loss, g)

    def generate(self, model: VAEModels, n: int, generation: int, stream: Stream,
                 sampling: Sampling) -> np.ndarray:
        torch = _torch()
        gens = torch_generators(stream, "latent", generation)
        rows = batched.padded(n)   # aligned slices (see batched); the extra rows are dropped
        z = torch.stack([truncated_normal(g, (rows, self.params.latent), sampling.truncation)
                         for g in gens]) * sampling.temperature
        with torch.no_grad(), batched.one_thread():
            return torch.sigmoid(batched.mlp(model.decoder, z)).numpy()[:, :n]
