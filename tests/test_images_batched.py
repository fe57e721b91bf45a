"""The batched training machinery of the image families: the flat-buffer Adam and the
replicate groups trained on parallel threads (both must leave every number unchanged)."""

from __future__ import annotations

import contextlib

import numpy as np
import pandas as pd
import pytest

torch = pytest.importorskip("torch")

from modelcollapse.families.images import batched  # noqa: E402
from modelcollapse.families.images.flat_adam import FlatAdam  # noqa: E402

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


# -- the convolutional VAE (arch = "conv") --------------------------------------------------
def test_conv3x3_is_torch_conv2d():
    from modelcollapse.families.images import conv
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(3, 4, 5, 7, 2, generator=gen, requires_grad=True)   # (R, B, H, W, C)
    for c_out in (16, 1):
        w = torch.randn(3, 18, c_out, generator=gen, requires_grad=True)   # rows (dy, dx, c)
        b = torch.randn(3, 1, c_out, generator=gen)
        for stride in (1, 2):   # stride 1 and 2 take different paths (ShiftSum, im2col)
            y = conv.conv3x3(x, w, b, stride)
            gx, gw = torch.autograd.grad((y * y).sum(), (x, w))
            for r in range(3):
                xr = x[r].detach().permute(0, 3, 1, 2).requires_grad_()
                wr = w[r].detach().requires_grad_()
                kernel = wr.view(3, 3, 2, c_out).permute(3, 2, 0, 1)
                ref = torch.nn.functional.conv2d(xr, kernel, b[r, 0], stride=stride, padding=1)
                gref, gwref = torch.autograd.grad((ref * ref).sum(), (xr, wr))
                assert torch.allclose(y[r], ref.permute(0, 2, 3, 1), atol=1e-5)
                assert torch.allclose(gx[r], gref.permute(0, 2, 3, 1), atol=1e-4)   # the backward
                assert torch.allclose(gw[r], gwref, atol=1e-3)
    x = x.detach()
    ref = torch.nn.functional.interpolate(x[1].permute(0, 3, 1, 2), size=(9, 13), mode="nearest")
    assert torch.equal(conv.upsample(x, (9, 13))[1], ref.permute(0, 2, 3, 1))


def test_conv_vae_is_chunk_invariant():
    params = {"arch": "conv", "epochs": 2, "n_eval": 40, "real_fraction": 0.25}
    kw = dict(family="vae", policy="mix", n_samples=120, generations=2, replicates=3)
    a = run_one(**kw, params={**params, "chunk_size": 1})
    b = run_one(**kw, params={**params, "chunk_size": 3})
    pd.testing.assert_frame_equal(a, b, check_exact=True)
    assert np.isfinite(a.value).all()


def test_conv_vae_chunk_invariance_with_odd_image_sizes(tmp_path):
    from PIL import Image
    rng = np.random.default_rng(3)
    for c in "ab":
        (tmp_path / c).mkdir()
        for i in range(36):
            Image.fromarray(rng.integers(0, 255, (9, 9), dtype=np.uint8), "L").save(tmp_path / c / f"{i}.png")
    params = {"corpus": str(tmp_path), "image_size": 5, "arch": "conv", "epochs": 3, "latent": 3,
              "batch_size": 32, "n_eval": 20}
    runs = [run_one(family="vae", n_samples=50, generations=2, replicates=3,
                    params={**params, "chunk_size": k}) for k in (1, 2, 3)]
    for other in runs[1:]:
        pd.testing.assert_frame_equal(runs[0], other, check_exact=True)


def test_conv_vae_learns():
    base = dict(family="vae", policy="replace", n_samples=400, generations=1, replicates=1)
    short = run_one(**base, params={"arch": "conv", "epochs": 1, "n_eval": 150})
    long = run_one(**base, params={"arch": "conv", "epochs": 10, "n_eval": 150})

    def val(df, m):
        return float(df[df.metric == m].value.iloc[0])
    assert val(long, "train_loss") < val(short, "train_loss")
    assert val(long, "fid") < val(short, "fid")


def test_vae_arch_params():
    from modelcollapse.api import make_study
    from modelcollapse.errors import UserError
    from modelcollapse.families.images.vae import VAEParams
    with pytest.raises(UserError, match="channels"):
        VAEParams(arch="conv", channels=20)
    with pytest.raises(UserError, match="arch"):
        make_study(family="vae", params={"arch": "cnn"})
    # unset, the new parameters stay out of the cell (its key seeds the run: old studies
    # keep their numbers); set, they are part of it
    assert not {"arch", "channels"} & set(make_study(family="vae").cells[0].params)
    assert make_study(family="vae", params={"arch": "conv"}).cells[0].params["arch"] == "conv"
