"""A pretrained model in the loop: SmolLM2-135M (the fetched GGUF, float32 on the CPU).

  sampling   PROMPTS real 64-token prompts of the embedded corpus, NEW new tokens each, in
             batches of BATCH, plain sampling (T = 1, no top-k / top-p). Ours:
             ``neural.generation.sample`` (one prefill keeping the last position's logits, one
             cached step per token, inverse-CDF draws from a local torch.Generator, under
             inference_mode). Peer: ``model.generate(do_sample=True, top_k=0, top_p=1.0,
             max_new_tokens=NEW, min_new_tokens=NEW)`` per batch, as a user writes it (it also
             keeps only the last logits in the prefill and uses the KV cache). Interleaved,
             best of REPEATS.
  training   one epoch over TRAIN_BLOCKS real 64-token blocks, batch TRAIN_BATCH, AdamW lr
             5e-5, each side from the same weights. Ours: ``neural.train.train`` (select =
             'last', no validation pass). Peer: the plain PyTorch loop (randperm batches,
             ``model(input_ids, labels=...)``, backward, step).
  memory     peak resident memory of a step above the resident memory before it (VmHWM
             after resetting it through /proc/self/clear_refs): sampling in this process;
             training in a fresh child process per side (in one process the side that runs
             second reuses the memory the allocator kept from the first).
  split      one generation of studies/pretrained_cpu.toml for one chain, by the family's own
             code: fine-tune (2 epochs, best real validation epoch) on SPLIT_BLOCKS blocks,
             generate as many 64-token continuations, evaluate (perplexity on the real test
             blocks, and the continuations scored under the model: the generation-0 pass).

Usage: .venv/bin/python benchmarks/bench_pretrained.py [--quick]
Needs `modelcollapse models fetch smollm2-135m`. Writes benchmarks/results/pretrained.json.
"""

from __future__ import annotations

import argparse
import copy
import os
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "src"))
from provenance import code_version, machine, save  # noqa: E402

os.environ.setdefault("HF_HUB_OFFLINE", "1")
MODEL = "smollm2-135m"


def kib(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise KeyError(field)


def measured(fn):
    """(seconds, peak RSS MiB above the start, result) of fn()."""
    import gc
    gc.collect()
    Path("/proc/self/clear_refs").write_text("5")   # reset VmHWM to the current RSS
    base = kib("VmRSS")
    t = time.perf_counter()
    out = fn()
    return time.perf_counter() - t, (kib("VmHWM") - base) / 1024, out


def ours_sample(model, prompts, new, batch):
    from modelcollapse.neural import generation as decode
    return decode.sample(model, prompts, new, 0, "cpu", 1.0, 0, 1.0, 1.0, batch)


def peer_sample(model, prompts, new, batch, pad_id):
    import torch
    out = []
    with torch.no_grad():
        for lo in range(0, len(prompts), batch):
            ids = torch.from_numpy(prompts[lo:lo + batch])
            seq = model.generate(input_ids=ids, attention_mask=torch.ones_like(ids), do_sample=True,
                                 temperature=1.0, top_k=0, top_p=1.0, max_new_tokens=new,
                                 min_new_tokens=new, pad_token_id=pad_id)
            out.append(seq[:, ids.shape[1]:].numpy())
    return np.concatenate(out)


def ours_train(model, blocks, batch):
    from modelcollapse.neural.train import TrainOptions, train
    return train(model, blocks, [], TrainOptions(epochs=1, lr=5e-5, batch_size=batch, warmup=0.0,
                                                  select="last"), 0, "cpu")["tokens"]


def peer_train(model, blocks, batch):
    import torch
    model.train()
    data = torch.from_numpy(np.stack(blocks))
    opt = torch.optim.AdamW(model.parameters(), lr=5e-5)
    tokens = 0
    for idx in torch.randperm(len(data), generator=torch.Generator().manual_seed(0)).split(batch):
        ids = data[idx]
        loss = model(input_ids=ids, labels=ids).loss
        opt.zero_grad()
        loss.backward()
        opt.step()
        tokens += ids.numel()
    model.eval()
    return tokens


def child(side: str, blocks: int, batch: int) -> None:
    """One training side in a fresh process: prints its peak RSS above the start (MiB)."""
    import json

    from modelcollapse.families.transformer import prepare
    from modelcollapse.neural import network
    d = prepare("embedded", "text", "auto", 0.1, 0.1, 0, MODEL, 2000, 64)
    model = network.load_pretrained(MODEL).eval()
    fn = ours_train if side == "ours" else peer_train
    _, mib, _ = measured(lambda: fn(copy.deepcopy(model), d.train[:blocks], batch))
    print(json.dumps({"rss_mib": mib}))


def split(blocks: int) -> dict:
    """Seconds of train / generate / evaluate for one generation of the CPU study's settings."""
    import tomllib

    from modelcollapse.families.base import Sampling
    from modelcollapse.families.transformer import Transformer, TransformerParams
    from modelcollapse.neural import network
    from modelcollapse.neural.train import TrainOptions, train
    study = tomllib.loads((HERE.parent / "studies" / "pretrained_cpu.toml").read_text())
    params = {k: v for k, v in study["params"].items() if k in TransformerParams.__dataclass_fields__}
    p = TransformerParams(**params)
    fam = Transformer(p, blocks)
    d = fam.data
    module = copy.deepcopy(network.load_pretrained(p.model))
    val = [d.validation[i] for i in np.linspace(0, len(d.validation) - 1, p.val_blocks).round().astype(int)]
    opts = TrainOptions(p.epochs, p.lr, p.batch_size, p.weight_decay, p.warmup, p.select)
    t = time.perf_counter()
    train(module, d.train[:blocks], val, opts, 0, "cpu")
    t_train = time.perf_counter() - t

    class LM:   # what fam.generate reads
        pass
    lm = LM()
    lm.module = module
    t = time.perf_counter()
    docs = fam.generate(lm, blocks, np.random.default_rng(0), Sampling(1.0, 1.0))
    t_gen = time.perf_counter() - t
    from modelcollapse.neural import score
    t = time.perf_counter()
    score.perplexity(module, d.test, "cpu")
    score.sequence_nll(module, docs, "cpu")
    t_eval = time.perf_counter() - t
    return {"blocks": blocks, "epochs": p.epochs, "test_tokens": int(sum(len(b) for b in d.test)),
            "train_s": t_train, "generate_s": t_gen, "evaluate_s": t_eval}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--prompts", type=int, default=32)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--new", type=int, default=64)
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--train-blocks", type=int, default=16)
    ap.add_argument("--train-batch", type=int, default=8)
    ap.add_argument("--split-blocks", type=int, default=16)
    ap.add_argument("--only-train", action="store_true",
                    help="rerun the training comparison only (other results kept from the file)")
    ap.add_argument("--child")
    a = ap.parse_args()
    if a.child:
        return child(a.child, a.train_blocks, a.train_batch)
    import torch

    from modelcollapse.families.transformer import prepare
    from modelcollapse.neural import network
    d = prepare("embedded", "text", "auto", 0.1, 0.1, 0, MODEL, 2000, 64)
    model = network.load_pretrained(MODEL).eval()
    prompts = np.stack(d.train[:a.prompts])
    pad = d.tokenizer.eos_id
    res: dict = {"model": MODEL, "prompts": a.prompts, "batch": a.batch, "prompt_tokens": 64,
                 "new_tokens": a.new, "threads": torch.get_num_threads(),
                 "load_average_start": os.getloadavg()}
    if a.only_train:
        import json
        old = json.loads((HERE / "results" / "pretrained.json").read_text())["result"]
        res = {**old, "load_average_start_train": os.getloadavg()}
    else:
        ours_sample(model, prompts[:2], 4, 2)                      # warm-up both
        peer_sample(model, prompts[:2], 4, 2, pad)
        ours, peer, mem = [], [], {}
        for r in range(a.repeats):
            t, m, _ = measured(lambda: ours_sample(model, prompts, a.new, a.batch))
            ours.append(t)
            mem.setdefault("ours_sample_mib", m)
            t, m, _ = measured(lambda: peer_sample(model, prompts, a.new, a.batch, pad))
            peer.append(t)
            mem.setdefault("peer_sample_mib", m)
            print("sample", r, ours[-1], peer[-1], flush=True)
        n = a.prompts * a.new
        res["sample"] = {"ours_tok_s": n / min(ours), "peer_tok_s": n / min(peer),
                         "ratio": min(peer) / min(ours), "ours_s": ours, "peer_s": peer}
        res["memory"] = mem
    blocks = d.train[:a.train_blocks]
    ours, peer = [], []
    for order in (("ours", "peer"), ("peer", "ours")):   # both orders: the first run pays page faults
        for side in order:
            fn = ours_train if side == "ours" else peer_train
            t = time.perf_counter()
            tok = fn(copy.deepcopy(model), blocks, a.train_batch)
            (ours if side == "ours" else peer).append(time.perf_counter() - t)
    res["train"] = {"blocks": a.train_blocks, "batch": a.train_batch, "ours_tok_s": tok / min(ours),
                    "peer_tok_s": tok / min(peer), "ratio": min(peer) / min(ours),
                    "ours_s": ours, "peer_s": peer}
    import json
    import subprocess
    for side in ("ours", "peer"):
        out = subprocess.run([sys.executable, __file__, "--child", side, "--train-blocks",
                              str(a.train_blocks), "--train-batch", str(a.train_batch)],
                             capture_output=True, text=True, check=True)
        res["memory"][f"{side}_train_mib"] = json.loads(out.stdout.strip().splitlines()[-1])["rss_mib"]
    print("train", res["train"], "memory", res["memory"], flush=True)
    model = None   # free it before the split loads its own
    if not a.only_train:
        res["split"] = split(a.split_blocks)
        print("split", res["split"], flush=True)
    res["load_average_end"] = os.getloadavg()
    save("pretrained", {"result": res, "machine": machine("numpy", "torch", "transformers"),
                        "code": code_version()})


if __name__ == "__main__":
    main()
