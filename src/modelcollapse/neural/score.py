"""Scoring sequences: the negative log-likelihood of each one under a causal LM.

A sequence of L tokens is scored as it is trained: tokens 2..L given those before them
(L - 1 predictions), so the training loss, the validation loss and the perplexities agree.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from . import require


def autocast(device: str):
    """bf16 autocast on CUDA (weights stay float32); nothing on the CPU."""
    torch, _ = require()
    if device == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    import contextlib
    return contextlib.nullcontext()


def pad(docs: Sequence[np.ndarray], pad_id: int = 0):
    """(B, L) int64 ids right-padded with ``pad_id`` and the (B, L) attention mask."""
    torch, _ = require()
    width = max(len(d) for d in docs)
    ids = np.full((len(docs), width), pad_id, dtype=np.int64)
    mask = np.zeros((len(docs), width), dtype=np.int64)
    for i, d in enumerate(docs):
        ids[i, :len(d)] = d
        mask[i, :len(d)] = 1
    return torch.from_numpy(ids), torch.from_numpy(mask)


def sequence_nll(module, docs: Sequence[np.ndarray], device: str,
                 batch: int = 64) -> tuple[np.ndarray, np.ndarray]:
    """Per document: (n,) summed NLL in nats and (n,) number of predicted tokens.

    Documents are batched by length (sorted), so padding costs little.
    """
    torch, _ = require()
    order = np.argsort([len(d) for d in docs], kind="stable")
    sums = np.zeros(len(docs))
    counts = np.zeros(len(docs), dtype=np.int64)
    module.eval()
    # float32, also on CUDA: bf16 logits would move perplexities and the epoch selection
    with torch.inference_mode():
        for lo in range(0, len(order), batch):
            pick = order[lo:lo + batch]
            ids, mask = pad([docs[i] for i in pick])
            ids, mask = ids.to(device), mask.to(device)
            logits = module(input_ids=ids, attention_mask=mask).logits[:, :-1].float()
            logp = torch.log_softmax(logits, dim=-1)
            token = logp.gather(-1, ids[:, 1:, None]).squeeze(-1)
            keep = mask[:, 1:].to(token.dtype)
            sums[pick] = (-(token * keep).sum(1)).double().cpu().numpy()
            counts[pick] = keep.sum(1).long().cpu().numpy()
    return sums, counts


def perplexity(module, docs: Sequence[np.ndarray], device: str, batch: int = 64) -> float:
    """exp(total NLL / total predictions) over ``docs`` (token-level perplexity)."""
    sums, counts = sequence_nll(module, docs, device, batch)
    return float(np.exp(sums.sum() / max(1, counts.sum())))
