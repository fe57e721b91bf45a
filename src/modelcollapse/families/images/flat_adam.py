"""Adam over all of a batched model's parameters held in one flat buffer.

``torch.optim.Adam`` (single-tensor) runs about ten small ops per parameter tensor and step,
plus its own bookkeeping (a step tensor per parameter, checks); for the image families'
small networks that is a third of a batched step. Here every parameter, for all R
replicates, is a view into one flat float32 buffer (its gradient a view into a second), so
one step is seven element-wise ops over the whole buffer, whatever the number of layers.

The arithmetic is torch's single-tensor Adam, op for op (``lerp_``, ``mul_``, ``addcmul_``,
``sqrt``, ``div_``, ``add_``, ``addcdiv_`` with the same scalars), so the weights are
bit-identical to ``torch.optim.Adam(params, lr, foreach=False)``: tested in
tests/test_images_batched.py. Chunk invariance needs one more thing: PyTorch computes the
last few elements of a tensor with scalar code (see ``batched``), so the buffer's length is
a whole number of ``ALIGN`` elements (a few unused zeros at the end, whose update is 0) and
no element is ever on a scalar tail, whatever R. Each parameter's block starts on an
``ALIGN`` boundary (64-byte aligned) and is a contiguous (R, ...) tensor, as before.
"""

from __future__ import annotations

from collections.abc import Sequence

from .batched import padded


class FlatAdam:
    """Adam (lr, betas, eps as torch's defaults) over ``tensors`` (each (R, ...)), copied into
    one flat buffer. ``params``: the leaf tensors to compute with (same shapes; their
    ``.grad`` are fixed views into the flat gradient, which backward accumulates into)."""

    def __init__(self, tensors: Sequence, lr: float, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8) -> None:
        import torch
        sizes = [t.numel() for t in tensors]
        starts = [0]
        for n in sizes:
            starts.append(starts[-1] + padded(n))   # every block starts ALIGN-aligned
        total = starts[-1]                            # a multiple of ALIGN: no scalar tail
        self.flat = torch.zeros(total)
        self.grad = torch.zeros(total)
        self.exp_avg = torch.zeros(total)
        self.exp_avg_sq = torch.zeros(total)
        self._denom = torch.empty(total)              # reused: no allocation per step
        self.params = []
        for t, n, lo in zip(tensors, sizes, starts):
            view = self.flat[lo:lo + n].view(t.shape)
            view.copy_(t.detach())
            leaf = view.detach().requires_grad_()
            leaf.grad = self.grad[lo:lo + n].view(t.shape)
            self.params.append(leaf)
        self.lr, self.beta1, self.beta2, self.eps = lr, betas[0], betas[1], eps
        self.steps = 0

    def zero_grad(self) -> None:
        """Zero the flat gradient (backward then adds each parameter's into its view)."""
        self.grad.zero_()

    def step(self) -> None:
        """One Adam step, as ``torch.optim.adam._single_tensor_adam`` computes it."""
        import torch
        self.steps += 1
        b1, b2 = self.beta1, self.beta2
        self.exp_avg.lerp_(self.grad, 1 - b1)
        self.exp_avg_sq.mul_(b2).addcmul_(self.grad, self.grad, value=1 - b2)
        bias_correction1 = 1 - b1 ** self.steps
        bias_correction2_sqrt = (1 - b2 ** self.steps) ** 0.5
        denom = torch.sqrt(self.exp_avg_sq, out=self._denom).div_(bias_correction2_sqrt).add_(self.eps)
        self.flat.addcdiv_(self.exp_avg, denom, value=-(self.lr / bias_correction1))
