"""A small convolutional encoder and decoder for R replicates at once (the VAE's ``arch = "conv"``).

A 3x3 convolution of R replicate networks is an im2col and one batched matmul: the inputs
are kept channels-last, (R, B, H, W, C); the nine shifted (strided) views of the zero-padded
input are stacked into columns (R, B*H'*W', 9*C) and multiplied by the stacked kernels
(R, 9*C, C_out) with one ``torch.baddbmm``, as the MLP layers of ``batched`` (no
transposes; ``F.unfold`` on the CPU loops over images and was several times slower). Each
replicate's slice of every op is computed on its own, so the conv VAE is bit-identical for
any chunk size under the same rules (minibatches of a multiple of 32 images; ``channels`` a
multiple of 16, so every replicate's kernel starts 64-byte aligned); the backward of the
patches and of the upsampling only adds (exactly rounded, in a fixed order per image).

Encoder: (h, w, 1) -> conv 3x3 stride 2 (c channels) -> SiLU -> conv 3x3 stride 2 (2c) ->
SiLU -> flatten -> affine -> (mu, log sigma^2). Decoder: z -> affine -> SiLU -> (h2, w2, 2c)
-> nearest upsampling to (h1, w1) -> conv 3x3 (c) -> SiLU -> upsampling to (h, w) ->
conv 3x3 (1 channel) -> pixel logits. Kernels and biases are drawn as torch's Conv2d and
Linear defaults (uniform in +-1/sqrt(fan_in)).
"""

from __future__ import annotations

from collections.abc import Sequence

from . import batched


def out_size(n: int, stride: int) -> int:
    """Side after a 3x3 convolution with padding 1 and ``stride``."""
    return (n - 1) // stride + 1


def sides(shape: tuple[int, int]) -> list[tuple[int, int]]:
    """[(h, w), (h1, w1), (h2, w2)]: the image and the two stride-2 feature maps."""
    h, w = shape
    out = [(h, w)]
    for _ in range(2):
        h, w = out_size(h, 2), out_size(w, 2)
        out.append((h, w))
    return out


def _offsets():
    return [(dy, dx) for dy in range(3) for dx in range(3)]


def _patch_function():
    """im2col as an autograd Function: forward stacks the nine shifted views of the
    zero-padded input; backward adds the nine gradient slices back in place, in a fixed order
    (autograd's own backward of a stack of slices would build nine padded zero tensors)."""
    import torch

    class Patches(torch.autograd.Function):
        @staticmethod
        def forward(ctx, x, stride: int):
            R, B, H, W, C = x.shape
            Ho, Wo = out_size(H, stride), out_size(W, stride)
            xp = torch.nn.functional.pad(x, (0, 0, 1, 1, 1, 1))
            ctx.shape, ctx.stride = (R, B, H, W, C), stride
            return torch.stack([xp[:, :, dy:dy + stride * (Ho - 1) + 1:stride,
                                   dx:dx + stride * (Wo - 1) + 1:stride] for dy, dx in _offsets()], dim=4)

        @staticmethod
        def backward(ctx, grad):
            R, B, H, W, C = ctx.shape
            s = ctx.stride
            Ho, Wo = grad.shape[2:4]
            gp = grad.new_zeros(R, B, H + 2, W + 2, C)
            for k, (dy, dx) in enumerate(_offsets()):
                gp[:, :, dy:dy + s * (Ho - 1) + 1:s, dx:dx + s * (Wo - 1) + 1:s].add_(grad[:, :, :, :, k])
            return gp[:, :, 1:H + 1, 1:W + 1], None

    return Patches


_PATCHES = None


def patches(x, stride: int):
    """x (R, B, H, W, C) -> (R, B, H', W', 9, C): every 3x3 patch (zero padding 1)."""
    global _PATCHES
    if _PATCHES is None:
        _PATCHES = _patch_function()
    return _PATCHES.apply(x, stride)


def conv3x3(x, w, b, stride: int):
    """x (R, B, H, W, C) -> (R, B, H', W', C_out): a 3x3 convolution, padding 1, with the
    kernels w (R, 9*C, C_out) (rows ordered (dy, dx, c)) and biases b (R, 1, C_out)."""
    import torch
    R, B, H, W, C = x.shape
    Ho, Wo = out_size(H, stride), out_size(W, stride)
    cols = patches(x, stride).view(R, B * Ho * Wo, 9 * C)
    if w.shape[-1] == 1:
        # A one-column product takes a matrix-vector path whose rounding depends on R (seen
        # with R = 1 vs 3); with a second, zero column it stays a matrix product like the
        # others, and column 0 is computed the same whatever the other holds.
        y = torch.baddbmm(torch.cat([b, torch.zeros_like(b)], -1), cols,
                          torch.cat([w, torch.zeros_like(w)], -1))[..., :1]
        return y.reshape(R, B, Ho, Wo, 1)
    return torch.baddbmm(b, cols, w).view(R, B, Ho, Wo, -1)


def upsample(x, size: tuple[int, int]):
    """(R, B, h, w, C) -> (R, B, H, W, C), nearest neighbour (torch's 'nearest' indices)."""
    import torch
    h, w = x.shape[2:4]
    rows = (torch.arange(size[0]) * h) // size[0]
    cols = (torch.arange(size[1]) * w) // size[1]
    return x.index_select(2, rows).index_select(3, cols)


def init_encoder(gens: Sequence, shape: tuple[int, int], channels: int, latent: int) -> list:
    """[conv1 w, b, conv2 w, b, affine w, b] for every generator's replicate."""
    (h2, w2) = sides(shape)[2]
    c = channels
    return (batched.init_stacked(gens, [9, c]) + batched.init_stacked(gens, [9 * c, 2 * c])
            + batched.init_stacked(gens, [2 * c * h2 * w2, 2 * latent]))


def init_decoder(gens: Sequence, shape: tuple[int, int], channels: int, latent: int) -> list:
    """[affine w, b, conv1 w, b, conv2 w, b] for every generator's replicate."""
    (h2, w2) = sides(shape)[2]
    c = channels
    return (batched.init_stacked(gens, [latent, 2 * c * h2 * w2])
            + batched.init_stacked(gens, [9 * 2 * c, c]) + batched.init_stacked(gens, [9 * c, 1]))


def encode(params: Sequence, x, shape: tuple[int, int]):
    """x (R, B, h*w) pixels -> (R, B, 2 * latent)."""
    import torch
    act = torch.nn.functional.silu
    R, B, _ = x.shape
    y = x.reshape(R, B, *shape, 1)
    y = act(conv3x3(y, params[0], params[1], 2))
    y = act(conv3x3(y, params[2], params[3], 2))
    return torch.baddbmm(params[5], y.reshape(R, B, -1), params[4])


def decode(params: Sequence, z, shape: tuple[int, int]):
    """z (R, B, latent) -> (R, B, h*w) pixel logits."""
    import torch
    act = torch.nn.functional.silu
    R, B, _ = z.shape
    (h, w), (h1, w1), (h2, w2) = sides(shape)
    y = act(torch.baddbmm(params[1], z.contiguous(), params[0])).view(R, B, h2, w2, -1)
    y = act(conv3x3(upsample(y, (h1, w1)), params[2], params[3], 1))
    y = conv3x3(upsample(y, (h, w)), params[4], params[5], 1)
    return y.reshape(R, B, h * w)
