"""The ``diffusion`` family: a small DDPM on the pixels, R replicates trained as one batched model.

Ho et al. (2020) with an MLP denoiser, as Bertrand et al. (2024) retrain diffusion models on
their own samples. Pixels are mapped to [-1, 1]; ``steps`` noise levels with a ``linear``
schedule (beta from 1e-4 to 0.02 at 1,000 steps, rescaled by 1000/steps so fewer steps cover
the same noise) or the ``cosine`` schedule of Nichol & Dhariwal (2021); the network
(x_t, sinusoidal embedding of t) -> ``hidden`` -> ``hidden`` -> epsilon is trained with the
simple loss ||eps - eps_theta(x_t, t)||^2 for ``epochs`` epochs with Adam, a fresh seeded
initialization per generation. Sampling is ancestral (sigma_t^2 = beta_t) from
x_T ~ N(0, I); the loop's ``temperature`` scales the initial and every step's noise (MAD's
sampling bias) and ``truncation`` truncates it. Weights are not persisted.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar, Literal

import numpy as np

from ...errors import UserError
from ...batches import Samples
from ...randomness import Stream
from ..base import Sampling, register
from . import batched
from .base import (ImageFamily, ImageParams, _torch, torch_generators, train_batched,
                   truncated_normal)

TIME_DIM = 32


@dataclass(frozen=True)
class DiffusionParams(ImageParams):
    """steps: noise levels T. schedule: 'linear' | 'cosine'. hidden: units of the denoiser's
    two hidden layers. epochs, batch_size, lr: Adam training per generation (batch_size a
    multiple of 32 and hidden of 16, the last partial batch dropped: see
    families/images/batched.py). Plus the image corpus and metric parameters."""

    steps: int = 100
    schedule: Literal["linear", "cosine"] = "linear"
    hidden: int = 256
    epochs: int = 200
    batch_size: int = 128
    lr: float = 1e-3
    trained: ClassVar[bool] = True

    def __post_init__(self) -> None:
        super().__post_init__()
        for name in ("steps", "hidden", "epochs", "batch_size"):
            if getattr(self, name) < 1:
                raise UserError(f"params.{name} must be >= 1; got {getattr(self, name)}")
        if self.batch_size % 32 or self.hidden % 16:
            raise UserError(f"params.batch_size must be a multiple of 32 and params.hidden of 16 "
                            f"(bit-identical chunks); got {self.batch_size} and {self.hidden}")
        if not self.lr > 0:
            raise UserError(f"params.lr must be > 0; got {self.lr}")


def betas(steps: int, schedule: str) -> np.ndarray:
    """(steps,) the noise schedule beta_1..beta_T."""
    if schedule == "linear":
        scale = 1000.0 / steps
        return np.linspace(1e-4 * scale, min(0.02 * scale, 0.999), steps)
    s = 0.008
    t = np.arange(steps + 1) / steps
    f = np.cos((t + s) / (1 + s) * math.pi / 2) ** 2
    return np.clip(1.0 - f[1:] / f[:-1], 0.0, 0.999)


def embed_time(t, steps: int):
    """(..., ) integer steps -> (..., TIME_DIM) sinusoidal embedding (t scaled to 0..1000)."""
    torch = _torch()
    half = TIME_DIM // 2
    freqs = torch.exp(-math.log(10000.0) * torch.arange(half, dtype=torch.float32) / half)
    angle = (t.float() * (1000.0 / steps))[..., None] * freqs
    return torch.cat([torch.sin(angle), torch.cos(angle)], dim=-1)


class DiffusionModels:
    """R fitted denoisers: ``net`` stacked weights, ``loss_`` (R,) last-epoch mean loss,
    ``generation``."""

    def __init__(self, net: list, loss: np.ndarray, generation: int) -> None:
        self.net = net
        self.loss_ = loss
        self.generation = generation


def train_ddpm(x, p: DiffusionParams, init_gens, batch_rngs, noise_gens):
    """Train R denoisers on x (R, N, D) in [0, 1]; returns (weights, (R,) last-epoch loss)."""
    torch = _torch()
    R, N, D = x.shape
    x = x * 2.0 - 1.0
    abar = torch.from_numpy(np.cumprod(1.0 - betas(p.steps, p.schedule))).float()
    net = batched.init_stacked(init_gens, [D + TIME_DIM, p.hidden, p.hidden, D])
    opt = batched.adam(net, p.lr)
    net = opt.params
    b = min(p.batch_size, N)
    steps_per_epoch = N // b
    last = torch.zeros(R)
    t = torch.empty(R, b, dtype=torch.long)
    eps = torch.empty(R, b, D)
    for step, rows in enumerate(batched.batch_orders(batch_rngs, N, p.batch_size, p.epochs)):
        x0 = batched.gather(x, rows)                                       # (R, b, D)
        for g, row in zip(noise_gens, t):   # into reused buffers: the same draws as new tensors
            torch.randint(0, p.steps, (b,), generator=g, out=row)
        batched.stacked_randn(noise_gens, (b, D), eps)
        a = abar[t][..., None]
        xt = a.sqrt() * x0 + (1.0 - a).sqrt() * eps
        pred = batched.mlp(net, torch.cat([xt, embed_time(t, p.steps)], dim=-1))
        per_replicate = ((pred - eps) ** 2).mean(dim=(1, 2))              # (R,)
        opt.zero_grad()
        per_replicate.sum().backward()
        opt.step()
        if step >= (p.epochs - 1) * steps_per_epoch:
            last += per_replicate.detach() / steps_per_epoch
    return batched.detach(net), last.numpy().astype(float)


def sample_ddpm(net, n: int, dim: int, p: DiffusionParams, gens, temperature: float,
                truncation: float) -> np.ndarray:
    """(R, n, dim) ancestral samples in [0, 1] (before clipping: may leave it slightly)."""
    torch = _torch()
    beta = betas(p.steps, p.schedule)
    alpha = 1.0 - beta
    abar = np.cumprod(alpha)

    def noise() -> object:
        return torch.stack([truncated_normal(g, (n, dim), truncation) for g in gens]) * temperature

    with torch.no_grad():
        x = noise()
        for t in range(p.steps - 1, -1, -1):
            tt = torch.full((len(gens), n), t, dtype=torch.long)
            eps = batched.mlp(net, torch.cat([x, embed_time(tt, p.steps)], dim=-1))
            x = (x - (beta[t] / math.sqrt(1.0 - abar[t])) * eps) / math.sqrt(alpha[t])
            if t > 0:
                x = x + math.sqrt(beta[t]) * noise()
    return ((x + 1.0) / 2.0).numpy()


@register
class Diffusion(ImageFamily):
    name = "diffusion"
    description = "DDPM with an MLP denoiser on the pixels, R replicates trained as one batched model (torch)"
    Params = DiffusionParams

    def train(self, data: Samples, previous: DiffusionModels | None, stream: Stream, g: int) -> DiffusionModels:
        net, loss = train_batched(train_ddpm, data, self.params, stream, g)
        return DiffusionModels(net, loss, g)

    def generate(self, model: DiffusionModels, n: int, generation: int, stream: Stream,
                 sampling: Sampling) -> np.ndarray:
        gens = torch_generators(stream, "noise", generation)
        rows = batched.padded(n)   # aligned slices (see batched); the extra rows are dropped
        with batched.one_thread() as cores:   # replicate groups in parallel, as in training
            parts = batched.in_groups(
                lambda g: sample_ddpm([w[g] for w in model.net], rows, self.data.dim, self.params,
                                      gens[g], sampling.temperature, sampling.truncation),
                len(gens), cores)
        return np.concatenate(parts)[:, :n]
