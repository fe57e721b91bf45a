"""R replicate networks trained as one batched model: stacked weights and batched matmuls.

Every layer holds the weights of all R replicates in one tensor, (R, in, out), and runs as
one ``torch.baddbmm`` over inputs (R, B, in); the loss is the sum of the replicates' own
losses, so each replicate's gradient is exactly its own, and Adam (element-wise) updates
each replicate as if it trained alone. R chains cost one Python step per minibatch instead
of R (see ``benchmarks/bench_images.py``).

Chunk invariance: every replicate's initialization, batch order and noise come from its
own generators (seeded per replicate and generation from the run's seed tree), and a
replicate's slice of a batched matmul is computed independently of the others, so a
replicate's weights do not depend on which replicates share its chunk (tested).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np


def init_stacked(gens: Sequence, sizes: Sequence[int]) -> list:
    """Weights and biases of an MLP with layer ``sizes`` for each generator's replicate:
    [W0 (R, s0, s1), b0 (R, 1, s1), W1, b1, ...], drawn as torch's nn.Linear default
    (uniform in +-1/sqrt(fan_in)), replicate r's from ``gens[r]`` alone."""
    import torch
    params = []
    for fan_in, fan_out in zip(sizes[:-1], sizes[1:]):
        bound = 1.0 / math.sqrt(fan_in)
        w = torch.stack([(torch.rand(fan_in, fan_out, generator=g) * 2 - 1) * bound for g in gens])
        b = torch.stack([(torch.rand(1, fan_out, generator=g) * 2 - 1) * bound for g in gens])
        params += [w.requires_grad_(), b.requires_grad_()]
    return params


def mlp(params: Sequence, x, activation=None):
    """(R, B, s0) -> (R, B, s_last): affine layers with ``activation`` (SiLU by default)
    between them (none after the last)."""
    import torch
    act = activation or torch.nn.functional.silu
    n = len(params) // 2
    for i in range(n):
        x = torch.baddbmm(params[2 * i + 1], x, params[2 * i])
        if i < n - 1:
            x = act(x)
    return x


def batch_orders(rngs: Sequence[np.random.Generator], n: int, batch_size: int, epochs: int):
    """Per epoch, per minibatch: (R, b) index tensors, each replicate's own shuffle (a last
    partial batch is kept)."""
    import torch
    for _ in range(epochs):
        perms = np.stack([g.permutation(n) for g in rngs])
        for lo in range(0, n, batch_size):
            yield torch.from_numpy(perms[:, lo:lo + batch_size])


def gather(x, index):
    """x (R, N, D), index (R, b) -> (R, b, D): each replicate's own minibatch."""
    import torch
    return x[torch.arange(x.shape[0])[:, None], index]


def stacked_randn(gens: Sequence, shape: tuple[int, ...]):
    """(R, *shape) standard normals, row r from ``gens[r]``."""
    import torch
    return torch.stack([torch.randn(shape, generator=g) for g in gens])


def adam(params: Sequence, lr: float):
    """Adam on the stacked tensors (per element, so per replicate). foreach=False keeps one
    code path whatever the number of tensors."""
    import torch
    return torch.optim.Adam(params, lr=lr, foreach=False)


def detach(params: Sequence) -> list:
    return [p.detach() for p in params]
