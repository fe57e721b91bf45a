"""The ``vae`` family: an MLP or convolutional VAE, R replicates trained as one batched model.

Shumailov et al. (Nature 2024) retrain a VAE on MNIST generation after generation (latent 20,
30 epochs, batch 256, lr 1e-3) and watch the digits blur into a few prototypes. Here: an
encoder pixels -> ``hidden`` -> (mu, log sigma^2) of a ``latent``-dimensional Gaussian, a
decoder latent -> ``hidden`` -> pixel logits, Bernoulli likelihood (binary cross-entropy on
the [0, 1] intensities) and a ``beta``-weighted KL term (beta = 1: the ELBO). ``arch = "conv"``
replaces the MLPs by a small convolutional encoder and decoder (two 3x3 convolutions of
``channels`` and 2 x ``channels`` each: see ``conv``), batched across replicates the same way.
Each generation
starts from a fresh initialization (seeded per replicate and generation) and trains
``epochs`` epochs with Adam. A sample is the decoder's mean image at z ~ N(0, temperature^2 I)
(truncated to the central ``truncation`` mass per coordinate): temperature < 1 is MAD's
sampling bias. Weights are not persisted (a generation takes seconds on a CPU); the chain's
metrics and sample grids are what a run keeps.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import ClassVar, Literal

import numpy as np

from ...errors import UserError
from ...batches import Samples
from ...randomness import Stream
from ..base import Sampling, register
from . import batched, conv
from .base import (ImageFamily, ImageParams, _torch, torch_generators, train_batched,
                   truncated_normal)


@dataclass(frozen=True)
class VAEParams(ImageParams):
    """latent: latent dimensions. arch: 'mlp' (unset: the default) | 'conv'. hidden: units of
    the MLP encoder's and decoder's hidden layer. channels: the conv encoder's and decoder's
    channels (c and 2c; unset: 16). arch and channels are optional so that cells which do not
    set them keep the keys (and seeds) they had before they existed. beta: weight of the KL term. epochs, batch_size, lr: Adam training per generation
    (batch_size a multiple of 32, hidden and channels of 16, the last partial batch of an
    epoch dropped: see families/images/batched.py). Plus the image corpus and metric
    parameters."""

    latent: int = 8
    arch: Literal["mlp", "conv"] | None = None
    hidden: int = 128
    channels: int | None = None
    beta: float = 1.0
    epochs: int = 30
    batch_size: int = 64
    lr: float = 1e-3
    trained: ClassVar[bool] = True

    def __post_init__(self) -> None:
        super().__post_init__()
        for name in ("latent", "hidden", "conv_channels", "epochs", "batch_size"):
            if getattr(self, name) < 1:
                raise UserError(f"params.{name.removeprefix('conv_')} must be >= 1; got {getattr(self, name)}")
        if self.batch_size % 32 or self.hidden % 16 or self.conv_channels % 16:
            raise UserError(f"params.batch_size must be a multiple of 32 and params.hidden and "
                            f"params.channels of 16 (bit-identical chunks); got {self.batch_size}, "
                            f"{self.hidden} and {self.conv_channels}")
        if not (self.beta >= 0 and self.lr > 0):
            raise UserError(f"params.beta must be >= 0 and params.lr > 0; got {self.beta}, {self.lr}")

    @property
    def conv_channels(self) -> int:
        """``channels``, 16 when unset."""
        return 16 if self.channels is None else self.channels


class VAEModels:
    """R fitted decoders: ``decoder`` stacked weights, ``loss_`` (R,) last-epoch mean
    training loss (negative ELBO per image, nats), ``generation``."""

    def __init__(self, decoder: list, loss: np.ndarray, generation: int) -> None:
        self.decoder = decoder
        self.loss_ = loss
        self.generation = generation


def networks(p: VAEParams, shape: tuple[int, int]):
    """(init_encoder(gens), init_decoder(gens), encode(params, x), decode(params, z)) of
    ``p.arch`` for images of ``shape``."""
    if p.arch == "conv":
        return (lambda gens: conv.init_encoder(gens, shape, p.conv_channels, p.latent),
                lambda gens: conv.init_decoder(gens, shape, p.conv_channels, p.latent),
                functools.partial(conv.encode, shape=shape), functools.partial(conv.decode, shape=shape))
    d = shape[0] * shape[1]
    return (lambda gens: batched.init_stacked(gens, [d, p.hidden, 2 * p.latent]),
            lambda gens: batched.init_stacked(gens, [p.latent, p.hidden, d]),
            batched.mlp, batched.mlp)


def train_vae(x, p: VAEParams, init_gens, batch_rngs, noise_gens, shape: tuple[int, int] | None = None):
    """Train R VAEs on x (R, N, D) float32 images of ``shape`` (h, w) (default: square) in
    one batched model; returns (decoder weights, (R,) mean loss over the last epoch)."""
    torch = _torch()
    R, N, D = x.shape
    if shape is None:
        side = int(round(D ** 0.5))
        shape = (side, side) if side * side == D else (1, D)
    init_encoder, init_decoder, encode, decode = networks(p, shape)
    encoder = init_encoder(init_gens)
    decoder = init_decoder(init_gens)
    opt = batched.adam(encoder + decoder, p.lr)
    encoder, decoder = opt.params[:len(encoder)], opt.params[len(encoder):]
    b = min(p.batch_size, N)
    steps_per_epoch = N // b
    last = torch.zeros(R)
    noise = torch.empty(R, b, p.latent)
    for step, rows in enumerate(batched.batch_orders(batch_rngs, N, p.batch_size, p.epochs)):
        xb = batched.gather(x, rows)                                     # (R, b, D)
        mu, logvar = encode(encoder, xb).chunk(2, dim=-1)                # (R, b, L) each
        z = mu + torch.exp(0.5 * logvar) * batched.stacked_randn(noise_gens, (b, p.latent), noise)
        logits = decode(decoder, z)
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
    description = "MLP or convolutional VAE on images, R replicates trained as one batched model (torch)"
    Params = VAEParams

    def train(self, data: Samples, previous: VAEModels | None, stream: Stream, g: int) -> VAEModels:
        trainer = functools.partial(train_vae, shape=self.data.shape)
        decoder, loss = train_batched(trainer, data, self.params, stream, g)
        return VAEModels(decoder, loss, g)

    def generate(self, model: VAEModels, n: int, generation: int, stream: Stream,
                 sampling: Sampling) -> np.ndarray:
        torch = _torch()
        gens = torch_generators(stream, "latent", generation)
        rows = batched.padded(n)   # aligned slices (see batched); the extra rows are dropped
        z = torch.stack([truncated_normal(g, (rows, self.params.latent), sampling.truncation)
                         for g in gens]) * sampling.temperature
        decode = networks(self.params, self.data.shape)[3]
        with torch.no_grad(), batched.one_thread():
            return torch.sigmoid(decode(model.decoder, z)).numpy()[:, :n]
