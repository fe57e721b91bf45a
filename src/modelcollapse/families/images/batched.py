"""R replicate networks trained as one batched model: stacked weights and batched matmuls.

Every layer holds the weights of all R replicates in one tensor, (R, in, out), and runs as
one ``torch.baddbmm`` over inputs (R, B, in); the loss is the sum of the replicates' own
losses, so each replicate's gradient is exactly its own, and Adam (element-wise) updates
each replicate as if it trained alone. R chains cost one Python step per minibatch instead
of R (see ``benchmarks/bench_images.py``).

Chunk invariance (bit-identical results whatever the chunk size): every replicate's
initialization, batch order and noise come from its own generators (seeded per replicate
and generation from the run's seed tree), and a replicate's slice of a batched matmul is
computed independently of the others. One subtlety: PyTorch's CPU kernels compute the bulk
of an element-wise op (exp, SiLU, ...) with vector instructions and the last few elements of
a tensor, or of a thread's share, with scalar code, which can round differently by an ulp.
So the families keep every replicate's slice a whole number of ALIGN elements (minibatches of
a multiple of ALIGN images, the last partial one dropped; generation in multiples of ALIGN
images) and run torch on one thread (:func:`one_thread`): no replicate ever falls on a
scalar tail, whichever replicates share its tensors. Likewise the BLAS kernels take another
path for an operand that is not 64-byte aligned, so every replicate's weight matrix must
start on a 64-byte boundary: hidden layers are a multiple of 16 units.

Several cores: since a replicate's numbers do not depend on which replicates share its
batched model, the chunk's replicates are split into one group per core torch may use
(``torch.get_num_threads()`` outside the families), each group a batched model of its own
on its own Python thread with one torch thread (:func:`in_groups`; torch's ops release the
GIL). Same numbers as one group, and each core runs whole batched steps instead of sharing
small ops it would have to synchronize.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np


ALIGN = 32   # elements: two AVX-512 float vectors, the widest step of PyTorch's CPU loops


@contextlib.contextmanager
def one_thread() -> Iterator[int]:
    """Run torch on one intra-op thread inside (restored after); yields the number it had
    before (the cores :func:`in_groups` may use). A thread's share of an element-wise op
    would otherwise end at a point that depends on the tensor's size."""
    import torch
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield before
    finally:
        torch.set_num_threads(before)


def groups(n: int, k: int) -> list[slice]:
    """Replicates 0..n-1 as min(k, n) contiguous groups of near-equal size."""
    k = max(1, min(k, n))
    bounds = [round(i * n / k) for i in range(k + 1)]
    return [slice(lo, hi) for lo, hi in zip(bounds[:-1], bounds[1:])]


def in_groups(fn: Callable[[slice], Any], n: int, threads: int) -> list:
    """[fn(group) for group in groups(n, threads)], the groups at once on their own Python
    threads, each with one torch thread (torch's thread setting is per OS thread under
    OpenMP and MKL, so each sets its own); one group runs here, with no thread."""
    parts = groups(n, threads)
    if len(parts) == 1:
        return [fn(parts[0])]

    def run(part: slice) -> Any:
        import torch
        torch.set_num_threads(1)
        return fn(part)

    with ThreadPoolExecutor(len(parts)) as pool:
        return list(pool.map(run, parts))


def padded(n: int) -> int:
    """n rounded up to a multiple of ALIGN (images generated per replicate)."""
    return -(-n // ALIGN) * ALIGN


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
        x = torch.baddbmm(params[2 * i + 1], x.contiguous(), params[2 * i])
        if i < n - 1:
            x = act(x)
    return x


def batch_orders(rngs: Sequence[np.random.Generator], n: int, batch_size: int, epochs: int):
    """Per epoch, per minibatch: (R, b) row indices into x.reshape(R * n, D) (replicate r's
    rows are r*n .. r*n + n - 1), each replicate's own shuffle; the last partial batch is
    dropped (b = min(batch_size, n): see the module docstring)."""
    import torch
    b = min(batch_size, n)
    offsets = (np.arange(len(rngs)) * n)[:, None]
    for _ in range(epochs):
        rows = torch.from_numpy(np.stack([g.permutation(n) for g in rngs]) + offsets)
        for lo in range(0, n - b + 1, b):
            yield rows[:, lo:lo + b].reshape(-1)


def gather(x, rows):
    """x (R, N, D), rows (R * b,) from ``batch_orders`` -> (R, b, D): each replicate's own
    minibatch, one index_select."""
    r, _, d = x.shape
    return x.reshape(-1, d).index_select(0, rows).view(r, -1, d)


def stacked_randn(gens: Sequence, shape: tuple[int, ...], out=None):
    """(R, *shape) standard normals, row r from ``gens[r]`` (into ``out`` when given: a
    buffer reused every step instead of a stack of R new tensors; the same numbers)."""
    import torch
    if out is None:
        return torch.stack([torch.randn(shape, generator=g) for g in gens])
    for g, row in zip(gens, out):
        torch.randn(shape, generator=g, out=row)
    return out


def adam(params: Sequence, lr: float):
    """Adam over the stacked tensors, all in one flat buffer (``flat_adam``): per element, so
    per replicate, the arithmetic of torch's single-tensor Adam; compute with its ``params``."""
    from .flat_adam import FlatAdam
    return FlatAdam(params, lr)


def detach(params: Sequence) -> list:
    return [p.detach() for p in params]
