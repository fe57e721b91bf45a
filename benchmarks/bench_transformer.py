"""The transformer backend: our sampling and training vs what a user would write, one run.

Model: the family's ``tiny`` preset (GPT-2-style, 2 layers, 64 dims, 2 heads, 2,000-token
BPE) and, with ``--size small``, 4 layers x 256 dims; weights from the family's seeded
initialization (speed does not depend on what the weights are). Data: the embedded
corpus's train blocks (64 tokens).

  sampling   PROMPTS prompts of 32 real tokens, 64 new tokens each, in batches of BATCH.
             Ours: ``neural.generation.sample`` (one prefill keeping the last logits, then one
             cached step per token, local torch.Generator). Peer: one plain
             ``model.generate(input_ids, attention_mask, do_sample=True, max_new_tokens=64,
             min_new_tokens=64)`` call per batch, as a user writes it. Both plain
             (T = 1) and biased (T = 0.8, top-p 0.9). Interleaved, best of REPEATS.
  training   one epoch over the train blocks, batch 32, AdamW lr 1e-3. Ours:
             ``neural.train.train`` with select = 'last' (no validation pass). Peer: the
             plain PyTorch loop (randperm batches, ``model(input_ids, labels=...)``,
             backward, step). Interleaved, best of REPEATS, each from the same weights.
  memory     peak resident memory (VmHWM) of a child process during one of the steps above,
             the peak reset (/proc/self/clear_refs) after loading the model and data, minus
             the resident memory at that point.

On CUDA (``--device cuda``) both sides run the same way (ours in bf16 autocast; the peer
as a user writes it, float32, and with ``--peer-bf16`` also under autocast).

Usage: .venv/bin/python benchmarks/bench_transformer.py [--size tiny] [--device cpu]
Writes benchmarks/results/transformer[-<size>-<device>].json.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "src"))
from provenance import code_version, machine, save  # noqa: E402

os.environ.setdefault("HF_HUB_OFFLINE", "1")
PROMPTS, BATCH, PROMPT, NEW, REPEATS = 512, 256, 32, 64, 3


def setup(size: str, device: str):
    from modelcollapse.families.transformer import Transformer, TransformerParams
    from modelcollapse.randomness import SeedTree
    fam = Transformer(TransformerParams(size=size, device=device), 0)
    model = fam.initial(0, SeedTree(0, "bench")).to(device).eval()
    prompts = np.stack([b[:PROMPT] for b in fam.data.train[:PROMPTS]])
    return fam, model, prompts


def ours_sample(model, prompts, device, T=1.0, top_p=1.0):
    from modelcollapse.neural import generation as decode
    return decode.sample(model, prompts, NEW, 0, device, T, 0, top_p, 1.0, BATCH)


def peer_sample(model, prompts, device, T=1.0, top_p=1.0, bf16=False):
    import contextlib
    import torch
    ctx = torch.autocast("cuda", dtype=torch.bfloat16) if bf16 else contextlib.nullcontext()
    out = []
    with torch.no_grad(), ctx:
        for lo in range(0, len(prompts), BATCH):
            ids = torch.from_numpy(prompts[lo:lo + BATCH]).to(device)
            seq = model.generate(input_ids=ids, attention_mask=torch.ones_like(ids), do_sample=True,
                                 temperature=T, top_p=top_p, max_new_tokens=NEW,
                                 min_new_tokens=NEW, pad_token_id=0)
            out.append(seq[:, ids.shape[1]:].cpu().numpy())
    return np.concatenate(out)


def ours_train(model, blocks, device):
    from modelcollapse.neural.train import TrainOptions, train
    return train(model, blocks, [], TrainOptions(epochs=1, lr=1e-3, batch_size=32, warmup=0.0,
                                                  select="last"), 0, device)["tokens"]


def peer_train(model, blocks, device):
    import torch
    model.to(device).train()
    data = torch.from_numpy(np.stack(blocks))
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    tokens = 0
    for idx in torch.randperm(len(data)).split(32):
        ids = data[idx].to(device)
        loss = model(input_ids=ids, labels=ids).loss
        opt.zero_grad()
        loss.backward()
        opt.step()
        tokens += ids.numel()
    return tokens


def timed(fn):
    import torch
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    t = time.perf_counter()
    out = fn()
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    return time.perf_counter() - t, out


def status_kib(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise KeyError(field)


def child(step: str, size: str, device: str) -> None:
    """One step in a fresh process: prints its peak RSS above the post-setup RSS (MiB)."""
    import copy
    import gc
    fam, model, prompts = setup(size, device)
    gc.collect()
    Path("/proc/self/clear_refs").write_text("5")   # reset the peak to the current RSS
    base = status_kib("VmRSS")
    blocks = fam.data.train
    fn = {"ours_sample": lambda: ours_sample(model, prompts, device),
          "peer_sample": lambda: peer_sample(model, prompts, device),
          "ours_train": lambda: ours_train(copy.deepcopy(model), blocks, device),
          "peer_train": lambda: peer_train(copy.deepcopy(model), blocks, device)}[step]
    import torch
    if device == "cuda":
        torch.cuda.reset_peak_memory_stats()
    fn()
    peak = status_kib("VmHWM")
    gpu = torch.cuda.max_memory_allocated() / 2**20 if device == "cuda" else None
    print(json.dumps({"rss_mib": (peak - base) / 1024, "gpu_mib": gpu}))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--size", default="tiny")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--peer-bf16", action="store_true")
    ap.add_argument("--child")
    a = ap.parse_args()
    if a.child:
        return child(a.child, a.size, a.device)
    import copy
    import torch
    fam, model, prompts = setup(a.size, a.device)
    blocks = fam.data.train
    n_tokens = PROMPTS * NEW
    res: dict = {"size": a.size, "device": a.device, "prompts": PROMPTS, "batch": BATCH,
                 "new_tokens": NEW, "train_blocks": len(blocks),
                 "parameters": int(sum(p.numel() for p in model.parameters()))}
    for label, kw in (("plain", {}), ("biased", {"T": 0.8, "top_p": 0.9})):
        ours, peer = [], []
        ours_sample(model, prompts[:BATCH], a.device, **kw)   # warm-up both
        peer_sample(model, prompts[:BATCH], a.device, **kw, bf16=a.peer_bf16)
        for _ in range(REPEATS):
            ours.append(timed(lambda: ours_sample(model, prompts, a.device, **kw))[0])
            peer.append(timed(lambda: peer_sample(model, prompts, a.device, **kw,
                                                  bf16=a.peer_bf16))[0])
        res[f"sample_{label}"] = {"ours_tok_s": n_tokens / min(ours), "peer_tok_s": n_tokens / min(peer),
                                  "ratio": min(peer) / min(ours)}
        print(label, res[f"sample_{label}"], flush=True)
    ours, peer = [], []
    for _ in range(REPEATS):
        t, tok = timed(lambda: ours_train(copy.deepcopy(model), blocks, a.device))
        ours.append(tok / t)
        t, tok = timed(lambda: peer_train(copy.deepcopy(model), blocks, a.device))
        peer.append(tok / t)
    res["train"] = {"ours_tok_s": max(ours), "peer_tok_s": max(peer), "ratio": max(ours) / max(peer)}
    print("train", res["train"], flush=True)
    mem = {}
    for step in ("ours_sample", "peer_sample", "ours_train", "peer_train"):
        out = subprocess.run([sys.executable, __file__, "--child", step, "--size", a.size,
                              "--device", a.device], capture_output=True, text=True, check=True)
        mem[step] = json.loads(out.stdout.strip().splitlines()[-1])
    res["memory"] = mem
    print("memory", mem)
    name = "transformer" if (a.size, a.device) == ("tiny", "cpu") else f"transformer-{a.size}-{a.device}"
    save(name, {"result": res, "machine": machine("numpy", "torch", "transformers"),
                "code": code_version(), "threads": torch.get_num_threads()})


if __name__ == "__main__":
    main()
