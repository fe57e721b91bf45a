"""Per-document token statistics under a causal language model: one forward pass per document,
batched by length.

For a document of tokens x_0..x_T (no BOS added), each scored position t = 2..T gives, from
the model's next-token distribution p_t:

* ``ll``  = log p_t(x_t),
* ``mu``  = sum_v p_t(v) log p_t(v)              (minus the entropy),
* ``var`` = sum_v p_t(v) (log p_t(v))^2 - mu^2   (the variance of log p under p_t),
* ``lrank`` = log(1 + rank of x_t under p_t)      (rank: how many tokens are strictly more
  likely, so ties go to x_t; GLTR's and Mitchell et al.'s log-rank),
* ``ll2`` = ll^2 (with ``ll``, the spread of the token log-likelihoods, GPTZero's
  "burstiness"),
* ``top1``, ``top10`` = 1 where x_t's rank is below 1, below 10 (GLTR's rank buckets,
  Gehrmann et al. 2019),

summed over positions (:class:`TokenStats`). The first two tokens are context only: x_1
predicted from x_0 alone says little about who wrote the text. With a second model
(Binoculars' performer, same tokenizer) the sums also hold the performer's log-likelihood
and the cross-entropy ``sum_v p^obs_t(v) * -log p^perf_t(v)``. Under bf16 logits ties are
more frequent, so ranks lean low there; the human reference is scored the same way, so the
calibrated thresholds account for it.

How it is made fast on a CPU (``benchmarks/bench_zeroshot.py``, section 9 of
benchmarks/README.md):

* Length bucketing: documents are tokenized once, sorted by length and cut into batches of
  at most ``batch_tokens`` padded tokens, each batch one forward pass with an attention
  mask (right padding leaves every real position unchanged).
* No padding waste past the transformer body: the output layer (the 576 x 49,152 product of
  a 135M model, a fifth of its FLOPs) runs only on the positions that are scored (real
  tokens followed by a real token), packed into one (N, hidden) matrix; models whose logits
  are more than ``head(hidden)`` (soft-capping, a logit scale) fall back to their full
  forward pass.
* One fused pass per chunk of positions: ``log p = z - logsumexp(z)``, then ``p log p`` and
  ``p (log p)^2`` in place, summed per position and added per document (``index_add``);
  the transient memory is one chunk of ``STAT_FLOATS`` floats whatever the batch.
* ``precision="bfloat16"`` (the default ``"auto"`` picks it where the CPU has native bf16
  instructions, avx512_bf16 or AMX, or on a GPU with bf16): the model runs as a bf16 copy
  of itself (:func:`bf16_twin`, made once per model; its buffers, such as rotary
  frequencies, stay float32), the statistics are computed in float32. bf16 autocast was
  measured too and is slower on a CPU: it casts every activation at every layer. On the
  validation data the criteria's AUROC moved by less than 0.01 (section 9);
  ``precision="float32"`` is the exact path.
* ``torch.no_grad`` (no autograd bookkeeping).

Documents longer than ``max_tokens`` are cut (their first ``max_tokens`` tokens are scored).
Results are returned in the input order and do not depend on the batching (up to float
round-off).

A per-document cache (:class:`ScoreCache`, JSONL keyed by model identity, precision and the
document's SHA-256) makes repeated audits of the same text cheap.
"""

from __future__ import annotations

import functools
import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..neural.score import pad as pad_batch

FIELDS = ("n", "ll", "mu", "var", "lrank", "ll2", "top1", "top10", "perf_ll", "xent")
#: Leading tokens of a document that are context only (module docstring).
CONTEXT_TOKENS = 2
PRECISIONS = ("auto", "float32", "bfloat16")


@dataclass
class TokenStats:
    """(N,) sums per document over its scored positions (module docstring); ``perf_ll`` and
    ``xent`` are NaN without a performer."""

    n: np.ndarray
    ll: np.ndarray
    mu: np.ndarray
    var: np.ndarray
    lrank: np.ndarray
    ll2: np.ndarray
    top1: np.ndarray
    top10: np.ndarray
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


#: Floats of the (positions, V) log-probability chunk computed at once (bounds memory).
STAT_FLOATS = 2 ** 24


@functools.lru_cache(maxsize=1)
def cpu_has_bf16() -> bool:
    """Whether this CPU has native bf16 arithmetic (avx512_bf16 or AMX), read from
    /proc/cpuinfo (False where it cannot be read)."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("flags"):
                    flags = set(line.split(":", 1)[1].split())
                    return bool(flags & {"avx512_bf16", "amx_bf16"})
    except OSError:
        pass
    return False


_TWINS: dict[int, tuple[object, object]] = {}


def bf16_twin(model):
    """A bfloat16 copy of ``model`` (memoized while ``model`` lives): parameters in bf16,
    floating buffers kept in float32 (rounding rotary frequencies to bf16 would shift the
    angles of late positions by up to ~0.5 rad)."""
    import copy
    import weakref

    import torch
    hit = _TWINS.get(id(model))
    if hit is not None and hit[0]() is model:
        return hit[1]
    twin = copy.deepcopy(model).to(torch.bfloat16).eval()
    for (_, buf), (_, orig) in zip(twin.named_buffers(), model.named_buffers()):
        if orig.is_floating_point():
            buf.data = orig.data.detach().clone()
    _TWINS[id(model)] = (weakref.ref(model), twin)
    return twin


def resolve_precision(precision: str, device: str) -> str:
    """'float32' or 'bfloat16' for ``precision`` ('auto': bf16 where the hardware has it)."""
    if precision not in PRECISIONS:
        from ..errors import unknown
        raise unknown("scoring precision", str(precision), PRECISIONS)
    if precision != "auto":
        return precision
    if str(device).startswith("cuda"):
        import torch
        return "bfloat16" if torch.cuda.is_bf16_supported() else "float32"
    return "bfloat16" if str(device) == "cpu" and cpu_has_bf16() else "float32"


#: Config fields of models whose logits are not just ``head(hidden)`` (they take the full path).
_LOGIT_TRANSFORMS = ("final_logit_softcapping", "logit_scale", "logits_scaling",
                     "output_multiplier_scale", "mup_width_multiplier")


def split_head(model):
    """``(body, head)`` when ``model``'s logits are ``head(body(...).last_hidden_state)``
    (the usual causal LM), else None (the full forward pass is used)."""
    head = getattr(model, "get_output_embeddings", lambda: None)()
    body = getattr(model, "base_model", None)
    if head is None or body is None or body is model:
        return None
    cfg = getattr(model, "config", None)
    for name in _LOGIT_TRANSFORMS:
        value = getattr(cfg, name, None)
        if value not in (None, 1, 1.0):
            return None
    return body, head


def _position_logits(model, x, mask, sel):
    """A function chunk -> (n, V) logits of the scored positions ``sel`` (B, W-1 bool)."""
    parts = split_head(model)
    if parts is None:
        logits = model(input_ids=x, attention_mask=mask).logits[:, :-1][sel]
        return lambda c: logits[c]
    body, head = parts
    hidden = body(input_ids=x, attention_mask=mask).last_hidden_state[:, :-1][sel]
    return lambda c: head(hidden[c])


def _batch_stats(model, x, mask, performer=None) -> np.ndarray:
    """(B, len(FIELDS)) sums per document of one batch (module docstring): x and mask (B, W)."""
    import torch
    b, w = x.shape
    sel = (mask[:, 1:] > 0) & (mask[:, :-1] > 0)
    sel[:, :CONTEXT_TOKENS - 1] = False
    y = x[:, 1:][sel]
    doc = torch.arange(b, device=x.device)[:, None].expand(b, w - 1)[sel]
    obs = _position_logits(model, x, mask, sel)
    perf = None if performer is None else _position_logits(performer, x, mask, sel)
    sums = torch.zeros((b, len(FIELDS)), dtype=torch.float64, device=x.device)
    sums[:, 0] = sel.sum(1)
    vocab = getattr(getattr(model, "config", None), "vocab_size", None) or 50_000
    step = max(1, STAT_FLOATS // vocab)
    for lo in range(0, int(y.numel()), step):
        c = slice(lo, lo + step)
        lp = obs(c).float()
        lp = lp.sub_(torch.logsumexp(lp, -1, keepdim=True))          # log p, in place
        yc = y[c, None]
        ll = lp.gather(-1, yc)[:, 0]
        rank = (lp > ll[:, None]).sum(-1).float()
        cols = [ll]
        p = lp.exp()
        if perf is not None:
            lq = perf(c).float()
            lq = lq.sub_(torch.logsumexp(lq, -1, keepdim=True))
            perf_ll = lq.gather(-1, yc)[:, 0]
            xent = -(p * lq).sum(-1)
            del lq
        plp = p.mul_(lp)                                                # p log p
        mu = plp.sum(-1)
        var = (plp.mul_(lp).sum(-1) - mu * mu).clamp_min(0.0)           # E[(log p)^2] - mu^2
        cols += [mu, var, torch.log1p(rank), ll * ll, (rank < 1).float(), (rank < 10).float()]
        if perf is not None:
            cols += [perf_ll, xent]
        got = torch.stack(cols, 1).double()
        sums[:, 1:1 + got.shape[1]].index_add_(0, doc[c], got)
    out = sums.cpu().numpy()
    if performer is None:
        out[:, FIELDS.index("perf_ll"):] = np.nan
    return out


def token_stats(model, tokenizer, texts: Sequence[str], *, performer=None,
                batch_tokens: int = 2048, max_tokens: int = 256, device: str = "cpu",
                ids: list[list[int]] | None = None, precision: str = "auto") -> TokenStats:
    """:class:`TokenStats` of ``texts`` under ``model`` (and ``performer``), batched as the
    module docstring says. Documents of at most CONTEXT_TOKENS tokens get n = 0 and NaN sums."""
    import torch
    ids = tokenize(tokenizer, texts, max_tokens) if ids is None else ids
    stats = TokenStats.empty(len(ids))
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    todo = [i for i, x in enumerate(ids) if len(x) > CONTEXT_TOKENS]
    bf16 = resolve_precision(precision, device) == "bfloat16"
    if bf16:
        model = bf16_twin(model)
        performer = None if performer is None else bf16_twin(performer)
    with torch.no_grad():
        for batch in buckets([len(ids[i]) for i in todo], batch_tokens):
            rows = [todo[b] for b in batch]
            x, mask = pad_batch([np.asarray(ids[i], dtype=np.int64) for i in rows], pad)
            got = _batch_stats(model, x.to(device), mask.to(device), performer)
            for j, f in enumerate(FIELDS):
                getattr(stats, f)[rows] = got[:, j]
    for i in range(len(ids)):
        if len(ids[i]) <= CONTEXT_TOKENS:
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
