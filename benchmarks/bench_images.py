"""Image families: R replicate models trained as one batched model vs a loop over replicates.

Data: the digits corpus's real train split (1,431 images of 8x8 pixels). Same total work on
both sides: R models, each trained for EPOCHS epochs of minibatches of the family's default
size on its own shuffle, with Adam.

  vae        latent 8, hidden 128, batch 64 (the family's defaults). Ours:
             ``models.images.vae.train_vae``: the R models' weights stacked (R, in, out),
             one ``baddbmm`` per layer, one Adam step per minibatch for all R. Peer: what a
             user writes: an ``nn.Module`` VAE (two ``nn.Linear`` + SiLU per side), trained
             alone, once per replicate, in a Python loop.
  diffusion  DDPM denoiser (64 + 32 -> 256 -> 256 -> 64), 100 steps, batch 128: ours
             ``train_ddpm`` vs an ``nn.Sequential`` denoiser per replicate in a loop.

Interleaved, best of REPEATS; torch's default threads (2 here) on both sides, and one thread.

Usage: .venv/bin/python benchmarks/bench_images.py [--replicates 8] [--epochs 5]
Writes benchmarks/results/images.json.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "src"))
from provenance import code_version, machine, save  # noqa: E402

REPEATS = 3


def peer_vae(x, p, seed):
    """One VAE trained alone, as a user writes it."""
    import torch
    from torch import nn
    torch.manual_seed(seed)
    n, d = x.shape
    enc = nn.Sequential(nn.Linear(d, p.hidden), nn.SiLU(), nn.Linear(p.hidden, 2 * p.latent))
    dec = nn.Sequential(nn.Linear(p.latent, p.hidden), nn.SiLU(), nn.Linear(p.hidden, d))
    opt = torch.optim.Adam([*enc.parameters(), *dec.parameters()], lr=p.lr)
    for _ in range(p.epochs):
        perm = torch.randperm(n)
        for lo in range(0, n, p.batch_size):
            xb = x[perm[lo:lo + p.batch_size]]
            mu, logvar = enc(xb).chunk(2, dim=-1)
            z = mu + torch.exp(0.5 * logvar) * torch.randn_like(mu)
            rec = nn.functional.binary_cross_entropy_with_logits(dec(z), xb, reduction="none").sum(-1)
            kl = 0.5 * (mu * mu + logvar.exp() - 1.0 - logvar).sum(-1)
            loss = (rec + p.beta * kl).mean()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()


def peer_ddpm(x, p, seed):
    import torch
    from torch import nn
    from modelcollapse.families.images.diffusion import TIME_DIM, betas, embed_time
    torch.manual_seed(seed)
    n, d = x.shape
    x = x * 2 - 1
    abar = torch.from_numpy(np.cumprod(1.0 - betas(p.steps, p.schedule))).float()
    net = nn.Sequential(nn.Linear(d + TIME_DIM, p.hidden), nn.SiLU(), nn.Linear(p.hidden, p.hidden),
                        nn.SiLU(), nn.Linear(p.hidden, d))
    opt = torch.optim.Adam(net.parameters(), lr=p.lr)
    for _ in range(p.epochs):
        perm = torch.randperm(n)
        for lo in range(0, n, p.batch_size):
            x0 = x[perm[lo:lo + p.batch_size]]
            t = torch.randint(0, p.steps, (len(x0),))
            eps = torch.randn_like(x0)
            a = abar[t][:, None]
            pred = net(torch.cat([a.sqrt() * x0 + (1 - a).sqrt() * eps, embed_time(t, p.steps)], -1))
            loss = ((pred - eps) ** 2).mean()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()


def ours(train_fn, x, p, r):
    import torch
    gens = [torch.Generator().manual_seed(1000 + i) for i in range(r)]
    noise = [torch.Generator().manual_seed(2000 + i) for i in range(r)]
    rngs = [np.random.default_rng(i) for i in range(r)]
    xs = x[None].expand(r, *x.shape).contiguous()
    train_fn(xs, p, gens, rngs, noise)


def main() -> None:
    import torch
    from modelcollapse.data.images import load_images
    from modelcollapse.families.images.diffusion import DiffusionParams, train_ddpm
    from modelcollapse.families.images.vae import VAEParams, train_vae
    ap = argparse.ArgumentParser()
    ap.add_argument("--replicates", type=int, default=8)
    ap.add_argument("--epochs", type=int, default=5)
    args = ap.parse_args()
    r = args.replicates
    x = torch.from_numpy(load_images().train.copy())
    cases = {"vae": (VAEParams(epochs=args.epochs), train_vae, peer_vae),
             "diffusion": (DiffusionParams(epochs=args.epochs), train_ddpm, peer_ddpm)}
    default_threads = torch.get_num_threads()
    results = {}
    for threads in sorted({default_threads, 1}, reverse=True):
        torch.set_num_threads(threads)
        for name, (p, fn, peer) in cases.items():
            t_ours, t_peer = [], []
            for _ in range(REPEATS):
                t0 = time.perf_counter()
                ours(fn, x, p, r)
                t_ours.append(time.perf_counter() - t0)
                t0 = time.perf_counter()
                for i in range(r):
                    peer(x, p, i)
                t_peer.append(time.perf_counter() - t0)
            steps = p.epochs * math.ceil(len(x) / p.batch_size)
            row = {"threads": threads, "replicates": r, "epochs": p.epochs, "steps_per_model": steps,
                   "ours_s": min(t_ours), "loop_s": min(t_peer), "ours_all": t_ours, "loop_all": t_peer,
                   "ratio": min(t_peer) / min(t_ours)}
            results[f"{name}-threads{threads}"] = row
            print(f"{name:9s} threads={threads} R={r}: batched {row['ours_s']:.2f} s, loop "
                  f"{row['loop_s']:.2f} s, {row['ratio']:.2f}x", flush=True)
    save("images", {"code": code_version(), "machine": machine("numpy", "torch"), "results": results})


if __name__ == "__main__":
    main()
