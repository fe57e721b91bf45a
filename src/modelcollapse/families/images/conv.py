"""A small convolutional encoder and decoder for R replicates at once (the VAE's ``arch = "conv"``).

A 3x3 convolution of R replicate networks is an im2col and one batched matmul: the inputs
are kept channels-last, (R, B, H, W, C); the nine shifted (strided) views of the zero-padded
input are stacked into columns (R, B*H'*W', 9*C) and multiplied by the stacked kernels
(R, 9*C, C_out) with one ``torch.baddbmm``, as the MLP layers of ``batched`` (no
transposes; ``F.unfold`` on the CPU loops over images and was several times slower). The
decoder's stride-1 convolutions, at the larger resolutions, multiply first (every pixel by
all nine offsets' kernels) and add the nine shifted maps after, which avoids the nine-fold
copy of the input (``conv3x3``: 2.3x faster for the digits VAE). Each
replicate's slice of every op is computed on its own, so the conv VAE is bit-identical for
any chunk size under the same rules (minibatches of a multiple of 32 images; ``channels`` a
multiple of 16, so every replicate's kernel starts 64-byte aligned); the backward of the
patches, of the shifted sums and of the upsampling only adds (exactly rounded, in a fixed
order per image). oneDNN's grouped convolution (groups = R) would be faster but is not
bit-identical across R for a 1-channel input or output (tested), so it is not used.

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


def _functions():
    """(Patches, ShiftSum) autograd Functions. Patches: im2col, the nine shifted views of
    the zero-padded input stacked; ShiftSum: its adjoint, nine shifted slices of a
    per-offset map added up. Each one's backward is the other (mirrored offsets), in a
    fixed order (autograd's own backward of a stack of slices would build nine padded zero
    tensors)."""
    import torch

    def stack_views(x, stride: int, Ho: int, Wo: int):
        xp = torch.nn.functional.pad(x, (0, 0, 1, 1, 1, 1))
        return torch.stack([xp[:, :, dy:dy + stride * (Ho - 1) + 1:stride,
                               dx:dx + stride * (Wo - 1) + 1:stride] for dy, dx in _offsets()], dim=4)

    def add_views(z, H: int, W: int, stride: int):
        R, B, Ho, Wo, _, C = z.shape
        out = z.new_zeros(R, B, H + 2, W + 2, C)
        for k, (dy, dx) in enumerate(_offsets()):
            out[:, :, dy:dy + stride * (Ho - 1) + 1:stride, dx:dx + stride * (Wo - 1) + 1:stride].add_(z[:, :, :, :, k])
        return out[:, :, 1:H + 1, 1:W + 1]

    class Patches(torch.autograd.Function):
        @staticmethod
        def forward(ctx, x, stride: int):
            R, B, H, W, C = x.shape
            ctx.size, ctx.stride = (H, W), stride
            return stack_views(x, stride, out_size(H, stride), out_size(W, stride))

        @staticmethod
        def backward(ctx, grad):
            return add_views(grad, *ctx.size, ctx.stride), None

    class ShiftSum(torch.autograd.Function):
        """z (R, B, H, W, 9, C) -> (R, B, H, W, C): y[i, j] = sum over the offsets k =
        (dy, dx) of z[i + dy - 1, j + dx - 1, k] (zero outside)."""

        @staticmethod
        def forward(ctx, z):
            H, W = z.shape[2:4]
            return add_views(z.flip(4), H, W, 1)

        @staticmethod
        def backward(ctx, grad):
            H, W = grad.shape[2:4]
            return stack_views(grad, 1, H, W).flip(4)

    return Patches, ShiftSum


_FUNCTIONS = None


def _fn(i: int):
    global _FUNCTIONS
    if _FUNCTIONS is None:
        _FUNCTIONS = _functions()
    return _FUNCTIONS[i]


def patches(x, stride: int):
    """x (R, B, H, W, C) -> (R, B, H', W', 9, C): every 3x3 patch (zero padding 1)."""
    return _fn(0).apply(x, stride)


def conv3x3(x, w, b, stride: int):
    """x (R, B, H, W, C) -> (R, B, H', W', C_out): a 3x3 convolution, padding 1, with the
    kernels w (R, 9*C, C_out) (rows ordered (dy, dx, c)) and biases b (R, 1, C_out).

    Stride 2 (the encoder): im2col, then one product. Stride 1 (the decoder, at the larger
    resolutions): first every pixel's product with all nine offsets' kernels, (R, B*H*W, C)
    x (R, C, 9*C_out), then the nine shifted maps added up (``ShiftSum``): the same sums
    without the nine-fold copy of the input (9*C_out instead of 9*C values per pixel)."""
    import torch
    R, B, H, W, C = x.shape
    if stride == 1:
        co = w.shape[-1]
        w9 = w.view(R, 9, C, co).transpose(1, 2).reshape(R, C, 9 * co)
        z = torch.bmm(x.reshape(R, B * H * W, C), w9).view(R, B, H, W, 9, co)
        return _fn(1).apply(z) + b.view(R, 1, 1, 1, co)
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
