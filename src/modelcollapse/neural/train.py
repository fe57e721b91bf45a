"""One generation's training: AdamW with a cosine schedule, the best epoch kept.

The training set is a list of token sequences (real blocks, generated continuations); a
batch is ``batch_size`` of them in a seeded random order, right-padded (padding is masked
out of the loss). After every epoch the loss on the real validation blocks is measured;
with ``select = 'best_validation'`` the weights of the epoch with the lowest one are kept
(Shumailov et al. keep the checkpoint with the best validation perplexity), with
``'last'`` the final ones.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ..errors import UserError
from . import require
from .score import autocast, pad, sequence_nll


@dataclass(frozen=True)
class TrainOptions:
    """epochs >= 1; lr: peak learning rate; batch_size: sequences per step; weight_decay:
    AdamW's; warmup: share of the steps with a linear warm-up before the cosine decay to 0;
    select: 'best_validation' or 'last'."""

    epochs: int = 3
    lr: float = 1e-3
    batch_size: int = 32
    weight_decay: float = 0.0
    warmup: float = 0.05
    select: str = "best_validation"


def _schedule(step: int, total: int, warm: int) -> float:
    if step < warm:
        return (step + 1) / warm
    return 0.5 * (1.0 + math.cos(math.pi * (step - warm) / max(1, total - warm)))


def train(module, docs: Sequence[np.ndarray], validation: Sequence[np.ndarray],
          opts: TrainOptions, seed: int, device: str) -> dict:
    """Train ``module`` in place on ``docs`` and return what happened.

    Returns ``{"train_loss", "validation_loss", "selected_epoch", "validation_losses",
    "tokens", "seconds"}``: the mean loss of the last epoch, the selected epoch's validation
    loss (nats per token; NaN without validation blocks), the selected epoch (1-based),
    every epoch's validation loss (``best_validation`` only) and the tokens trained on.
    """
    torch, _ = require()
    module.to(device).train()
    order_gen = torch.Generator().manual_seed(int(seed))
    steps_per_epoch = math.ceil(len(docs) / opts.batch_size)
    total = opts.epochs * steps_per_epoch
    warm = int(opts.warmup * total)
    # only what trains: with LoRA the frozen checkpoint needs no optimizer state
    params = [q for q in module.parameters() if q.requires_grad]
    optim = torch.optim.AdamW(params, lr=opts.lr, weight_decay=opts.weight_decay)
    sched = torch.optim.lr_scheduler.LambdaLR(optim, lambda s: _schedule(s, total, warm))
    best, best_loss, best_epoch = None, math.inf, opts.epochs
    tokens, start, last, history = 0, time.perf_counter(), float("nan"), []
    with torch.random.fork_rng(devices=range(torch.cuda.device_count())):
        torch.manual_seed(int(seed))   # dropout draws from the global RNG; forked, so local
        for epoch in range(1, opts.epochs + 1):
            module.train()
            losses = []
            for idx in torch.randperm(len(docs), generator=order_gen).split(opts.batch_size):
                ids, mask = pad([docs[i] for i in idx.tolist()])
                ids, mask = ids.to(device), mask.to(device)
                labels = ids.masked_fill(mask == 0, -100)
                with autocast(device):
                    loss = module(input_ids=ids, attention_mask=mask, labels=labels).loss
                if not torch.isfinite(loss):
                    raise UserError(f"training diverged in epoch {epoch} (the loss is "
                                    f"{float(loss)}); lower lr (now {opts.lr})")
                optim.zero_grad(set_to_none=True)
                loss.backward()
                optim.step()
                sched.step()
                losses.append(float(loss.detach()))
                tokens += int(mask.sum())
            last = float(np.mean(losses))
            if opts.select == "best_validation" and validation:
                sums, counts = sequence_nll(module, validation, device)
                val = float(sums.sum() / counts.sum())
                history.append(val)
                if val < best_loss:
                    best_loss, best_epoch = val, epoch
                    # the trained tensors only (all of them, or just LoRA's adapters)
                    best = {k: v.detach().clone() for k, v in module.named_parameters()
                            if v.requires_grad}
    if best is not None:
        with torch.no_grad():
            named = dict(module.named_parameters())
            for k, v in best.items():
                named[k].copy_(v)
    elif validation:
        sums, counts = sequence_nll(module, validation, device)
        best_loss = float(sums.sum() / counts.sum())
    module.eval()
    return {"train_loss": last, "validation_loss": best_loss if validation else float("nan"),
            "selected_epoch": best_epoch, "validation_losses": history, "tokens": tokens,
            "seconds": time.perf_counter() - start}
