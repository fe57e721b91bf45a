"""Per-document token statistics under a causal language model: one forward pass per document,
batched by length.

For a document of tokens x_0..x_T (no BOS added: the first token is context only, as in
Fast-DetectGPT's code), each scored position t = 1..T gives, from the model's next-token
distribution p_t:

* ``ll``  = log p_t(x_t),
* ``mu``  = sum_v p_t(v) log p_t(v)              (minus the entropy),
* ``var`` = sum_v p_t(v) (log p_t(v))^2 - mu^2   (the variance of log p under p_t),

summed over positions (:class:`TokenStats`). With a second model (Binoculars' performer,
same tokenizer) the sums also hold the performer's log-likelihood and the cross-entropy
``sum_v p^obs_t(v) * -log p^perf_t(v)``.

Batching: documents are tokenized once, sorted by length and cut into batches of at most
``batch_tokens`` padded tokens (length bucketing: little padding, so little waste), each
batch one forward pass with an attention mask; right padding leaves every real position's
logits unchanged. Statistics are computed one batch row at a time from the logits, so the
transient memory is one (B, T, V) logits tensor of at most ``batch_tokens x V`` floats.
Documents longer than ``max_tokens`` are cut (their first ``max_tokens`` tokens are scored).
Results are returned in the input order and do not depend on the batching (up to float
round-off).

A per-document cache (:class:`ScoreCache`, JSONL keyed by model identity and the document's
SHA-256) makes repeated audits of the same text cheap.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

FIELDS = ("n", "ll", "mu", "var", "perf_ll", "xent")


@dataclass
class TokenStats:
    """(N,) sums per document over its scored positions (module docstring); ``perf_ll`` and
    ``xent`` are NaN without a performer."""

    n: np.ndarray
    ll: np.ndarray
    mu: np.ndarray
    var: np.ndarray
    perf_ll: np.ndarray
    xent: np.ndarray

    @classmethod
    def empty(cls, n: int) -> TokenStats:
        return cls(*(np.full(n, np.nan) for _ in FIELDS))

    def row(self, i: int) -> dict:
        return {f: float(getattr(self, f)[i]) for f in FIELDS}


def tokenize(tokenizer, texts: Sequence[str], max_tokens: int) -> list[list[int]]:
    """Token ids per text (no special tokens), cut at ``max_tokens``."""
    ids = tokenizer(list(texts), add_special_tokens=False)["input_ids"]
    return [list(x[:max_tokens]) for x in ids]


def buckets(lengths: Sequence[int], batch_tokens: int) -> list[np.ndarray]:
    """Batches of document indices: sorted by length, each with at most ``batch_tokens``
    padded tokens (batch size x its longest document), at least one document each."""
    order = np.argsort(np.asarray(lengths), kind="stable")
    out, cur, longest = [], [], 0
    for i in order:
        n = max(int(lengths[i]), 1)
        if cur and max(longest, n) * (len(cur) + 1) > batch_tokens:
            out.append(np.asarray(cur))
            cur, longest = [], 0
        cur.append(int(i))
        longest = max(longest, n)
    if cur:
        out.append(np.asarray(cur))
    return out


#: Floats of the (rows, T, V) log-probability tensors computed at once (bounds memory).
STAT_FLOATS = 2 ** 24


def _batch_stats(logits, x, mask, perf_logits=None) -> np.ndarray:
    """(B, 6) sums per document of one batch (module docstring): logits (B, W, V), x and
    mask (B, W). Vectorized over the rows (few tensor operations: under a busy CPU each
    operation costs a thread-pool round trip), in row chunks of at most STAT_FLOATS floats."""
    import torch
    b, w, v = logits.shape
    out = np.full((b, len(FIELDS)), np.nan)
    step = max(1, STAT_FLOATS // max(1, (w - 1) * v))
    for lo in range(0, b, step):
        sl = slice(lo, lo + step)
        lp = torch.log_softmax(logits[sl, :-1].float(), dim=-1)
        y = x[sl, 1:]
        valid = mask[sl, 1:].to(lp.dtype)
        p = lp.exp()
        ll = lp.gather(-1, y[..., None])[..., 0]
        mu = (p * lp).sum(-1)
        var = ((p * lp * lp).sum(-1) - mu * mu).clamp_min(0.0)
        cols = [valid.sum(1), (ll * valid).sum(1), (mu * valid).sum(1), (var * valid).sum(1)]
        if perf_logits is not None:
            lq = torch.log_softmax(perf_logits[sl, :-1].float(), dim=-1)
            perf_ll = lq.gather(-1, y[..., None])[..., 0]
            xent = -(p * lq).sum(-1)
            cols += [(perf_ll * valid).sum(1), (xent * valid).sum(1)]
        got = torch.stack(cols, 1).double().cpu().numpy()
        out[sl, :got.shape[1]] = got
    return out


def token_stats(model, tokenizer, texts: Sequence[str], *, performer=None,
                batch_tokens: int = 2048, max_tokens: int = 256, device: str = "cpu",
                ids: list[list[int]] | None = None) -> TokenStats:
    """:class:`TokenStats` of ``texts`` under ``model`` (and ``performer``), batched as the
    module docstring says. Documents of fewer than 2 tokens get n = 0 and NaN sums."""
    import torch
    ids = tokenize(tokenizer, texts, max_tokens) if ids is None else ids
    stats = TokenStats.empty(len(ids))
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    todo = [i for i, x in enumerate(ids) if len(x) >= 2]
    for batch in buckets([len(ids[i]) for i in todo], batch_tokens):
        rows = [todo[b] for b in batch]
        width = max(len(ids[i]) for i in rows)
        x = torch.full((len(rows), width), pad, dtype=torch.long)
        mask = torch.zeros((len(rows), width), dtype=torch.long)
        for r, i in enumerate(rows):
            x[r, :len(ids[i])] = torch.tensor(ids[i])
            mask[r, :len(ids[i])] = 1
        x, mask = x.to(device), mask.to(device)
        with torch.no_grad():
            logits = model(input_ids=x, attention_mask=mask).logits
            perf = None if performer is None else performer(input_ids=x,
                                                            attention_mask=mask).logits
        got = _batch_stats(logits, x, mask, perf)
        for j, f in enumerate(FIELDS):
            getattr(stats, f)[rows] = got[:, j]
    for i in range(len(ids)):
        if len(ids[i]) < 2:
            stats.n[i] = 0
    return stats


def doc_key(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


class ScoreCache:
    """Per-document :class:`TokenStats` rows in ``folder/<key>.jsonl`` (one line per
    document, ``{"h": sha256, FIELDS...}``); read back as data, appended as scored."""

    def __init__(self, folder: Path, key: str) -> None:
        self.path = Path(folder) / f"{hashlib.sha256(key.encode()).hexdigest()[:20]}.jsonl"
        self.rows: dict[str, dict] = {}
        if self.path.exists():
            with open(self.path, encoding="utf-8") as f:
                for line in f:
                    try:
                        row = json.loads(line)
                        self.rows[str(row["h"])] = {k: float(row[k]) if row[k] is not None
                                                    else float("nan") for k in FIELDS}
                    except (ValueError, KeyError, TypeError):
                        continue

    def add(self, rows: dict[str, dict]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path, "a", encoding="utf-8") as f:
            for h, row in rows.items():
                clean = {k: (None if not np.isfinite(v) else v) for k, v in row.items()}
                f.write(json.dumps({"h": h, **clean}) + "\n")
        self.rows.update(rows)


def cached_token_stats(model, tokenizer, texts: Sequence[str], key: str,
                       folder: Path | None, chunk: int = 512, **kwargs) -> TokenStats:
    """:func:`token_stats` through a :class:`ScoreCache` (``folder`` None: no cache).
    ``key`` names the model(s) and settings; documents are scored ``chunk`` at a time."""
    if folder is None:
        return token_stats(model, tokenizer, texts, **kwargs)
    cache = ScoreCache(folder, key)
    hashes = [doc_key(t) for t in texts]
    todo = sorted({h: t for h, t in zip(hashes, texts) if h not in cache.rows}.items())
    for lo in range(0, len(todo), chunk):
        part = todo[lo:lo + chunk]
        got = token_stats(model, tokenizer, [t for _, t in part], **kwargs)
        cache.add({h: got.row(j) for j, (h, _) in enumerate(part)})
    out = TokenStats.empty(len(texts))
    for i, h in enumerate(hashes):
        for f in FIELDS:
            getattr(out, f)[i] = cache.rows[h][f]
    return out
