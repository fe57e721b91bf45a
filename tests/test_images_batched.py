"""The batched training machinery of the image families: the flat-buffer Adam and the
replicate groups trained on parallel threads (both must leave every number unchanged)."""

from __future__ import annotations

import contextlib

import numpy as np
import pandas as pd
import pytest

torch = pytest.importorskip("torch")

from modelcollapse.models.images import batched  # noqa: E402
from modelcollapse.models.images.flat_adam import FlatAdam  # noqa: E402

from helpers import run_one  # noqa: E402


@contextlib.contextmanager
def torch_threads(n: int):
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def test_flat_adam_is_torch_single_tensor_adam_bit_for_bit():
    """Odd shapes (blocks not a multiple of ALIGN), several steps: the same weights as
    torch.optim.Adam(foreach=False) on separate tensors, exactly."""
    gen = torch.Generator().manual_seed(0)
    shapes = [(3, 25, 16), (3, 1, 16), (3, 16, 6), (3, 1, 6), (2, 7)]
    ref = [torch.randn(s, generator=gen).requires_grad_() for s in shapes]
    flat = FlatAdam(ref, lr=3e-3)
    opt = torch.optim.Adam(ref, lr=3e-3, foreach=False)
    assert flat.flat.numel() % batched.ALIGN == 0   # no scalar tail, whatever R
    with torch_threads(1):
        for _ in range(7):
            grads = [torch.randn(s, generator=gen) for s in shapes]
            flat.zero_grad()
            for p, g in zip(flat.params, grads):
                p.grad.add_(g)       # what backward's accumulation does
            for p, g in zip(ref, grads):
                p.grad = g.clone()
            flat.step()
            opt.step()
    for a, b in zip(flat.params, ref):
        assert torch.equal(a.detach(), b.detach())


def test_flat_adam_takes_gradients_from_backward():
    w = torch.ones(2, 3, 4)
    opt = FlatAdam([w], lr=0.1)
    (opt.params[0] * torch.arange(12.0).view(3, 4)).sum().backward()
    assert torch.equal(opt.grad[:24].view(2, 3, 4), torch.arange(12.0).view(3, 4).expand(2, 3, 4))
    opt.step()
    # Adam's first step moves every weight with a nonzero gradient by lr (sign of the gradient)
    moved = opt.params[0].detach()
    assert torch.allclose(moved[:, 0, 0], torch.ones(2)) and torch.allclose(moved[:, 0, 1], torch.full((2,), 0.9))


def test_groups_partition_the_replicates():
    assert batched.groups(8, 2) == [slice(0, 4), slice(4, 8)]
    assert batched.groups(3, 2) == [slice(0, 2), slice(2, 3)]
    assert batched.groups(2, 5) == [slice(0, 1), slice(1, 2)]
    assert batched.groups(5, 1) == [slice(0, 5)]
    for n, k in [(7, 3), (16, 4), (1, 2)]:
        parts = batched.groups(n, k)
        assert parts[0].start == 0 and parts[-1].stop == n
        assert all(a.stop == b.start and a.stop > a.start for a, b in zip(parts, parts[1:]))


@pytest.mark.parametrize("family", ["vae", "diffusion"])
def test_replicate_groups_on_threads_change_no_number(family, monkeypatch):
    """Training and sampling split into groups of replicates on parallel threads (torch
    allowed 3 threads: groups of 2, 2, 1 for 5 replicates) give exactly the numbers of one
    batched model on one thread."""
    params = {"epochs": 2, "hidden": 32, "n_eval": 40, **({"steps": 8} if family == "diffusion" else {})}
    kw = dict(family=family, policy="replace", n_samples=100, generations=2, replicates=5, params=params)
    seen = []
    split = batched.groups
    monkeypatch.setattr(batched, "groups", lambda n, k: seen.append(len(split(n, k))) or split(n, k))
    with torch_threads(1):
        one = run_one(**kw)
    assert set(seen) == {1}
    seen.clear()
    with torch_threads(3):
        three = run_one(**kw)
    assert 3 in seen   # training (and the DDPM's sampling) ran as 3 groups
    pd.testing.assert_frame_equal(one, three, check_exact=True)
    assert np.isfinite(one.value).all()
