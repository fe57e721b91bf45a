"""Image families: R replicate models trained as one batched model vs a loop over replicates.

Data: the digits corpus's real train split (1,431 images of 8x8 pixels). Same total work on
both sides: R models, each trained for EPOCHS epochs of full minibatches of the family's
default size (the last partial batch of an epoch dropped on both sides: 22 or 11 steps per
epoch) on its own shuffle, with Adam (lr 1e-3, torch's defaults otherwise).

  vae        latent 8, hidden 128, batch 64 (the family's defaults). Ours:
             ``families.images.vae.train_vae`` through ``train_groups`` (what the family
             runs): the R models' weights stacked (R, in, out), one ``baddbmm`` per layer,
             one Adam step over one flat buffer per minibatch for all R; with T threads, T
             groups of replicates on T threads. Peer: what a user writes: an ``nn.Module``
             VAE (two ``nn.Linear`` + SiLU per side) and ``torch.optim.Adam``, trained alone,
             once per replicate, in a Python loop, torch's defaults.
  vae-conv   arch = "conv" (channels 16): ours ``train_vae`` (conv.py: each 3x3 convolution
             one batched product, im2col in the encoder, product-then-shifted-sum in the
             decoder) vs an ``nn.Module`` of ``nn.Conv2d``/``nn.Linear`` with nearest
             upsampling per replicate in a loop.
  diffusion  DDPM denoiser (64 + 32 -> 256 -> 256 -> 64), 100 steps, batch 128: ours
             ``train_ddpm`` vs an ``nn.Sequential`` denoiser per replicate in a loop.

Both sides get the same threads: 1 (one core each), and 2 (the 2 cores: torch's default
here; the peer runs its ops on 2 intra-op threads, ours 2 replicate groups). Interleaved,
best of REPEATS, wall clock (and the process CPU time, less sensitive to other load).

Usage: .venv/bin/python benchmarks/bench_images.py [--replicates 8] [--epochs 5] [--threads 1,2]
       [--cases vae,vae-conv,diffusion]
Writes benchmarks/results/images.json (all cases) or images-<cases>.json.
"""

from __future__ import annotations

import argparse
import os
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
        for lo in range(0, n - p.batch_size + 1, p.batch_size):   # drop_last, as ours
            xb = x[perm[lo:lo + p.batch_size]]
            mu, logvar = enc(xb).chunk(2, dim=-1)
            z = mu + torch.exp(0.5 * logvar) * torch.randn_like(mu)
            rec = nn.functional.binary_cross_entropy_with_logits(dec(z), xb, reduction="none").sum(-1)
            kl = 0.5 * (mu * mu + logvar.exp() - 1.0 - logvar).sum(-1)
            loss = (rec + p.beta * kl).mean()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()


class ConvVAE:
    """The conv VAE as a user writes it with torch.nn (the same layers as families/images/conv.py)."""

    def __init__(self, shape, c, latent):
        from torch import nn
        self.shape = shape
        h1 = [(s - 1) // 2 + 1 for s in shape]
        h2 = [(s - 1) // 2 + 1 for s in h1]
        self.sizes = (tuple(h1), tuple(h2))
        self.enc = nn.Sequential(nn.Conv2d(1, c, 3, 2, 1), nn.SiLU(), nn.Conv2d(c, 2 * c, 3, 2, 1), nn.SiLU(),
                                 nn.Flatten(), nn.Linear(2 * c * h2[0] * h2[1], 2 * latent))
        self.dec_in = nn.Linear(latent, 2 * c * h2[0] * h2[1])
        self.dec1 = nn.Conv2d(2 * c, c, 3, 1, 1)
        self.dec2 = nn.Conv2d(c, 1, 3, 1, 1)
        self.c = c

    def parameters(self):
        for m in (self.enc, self.dec_in, self.dec1, self.dec2):
            yield from m.parameters()

    def decode(self, z):
        from torch.nn import functional as F
        y = F.silu(self.dec_in(z)).view(len(z), 2 * self.c, *self.sizes[1])
        y = F.silu(self.dec1(F.interpolate(y, size=self.sizes[0], mode="nearest")))
        return self.dec2(F.interpolate(y, size=self.shape, mode="nearest")).flatten(1)


def peer_conv_vae(x, p, seed):
    import torch
    from torch import nn
    torch.manual_seed(seed)
    n, d = x.shape
    side = int(round(d ** 0.5))
    vae = ConvVAE((side, side), p.conv_channels, p.latent)
    opt = torch.optim.Adam(vae.parameters(), lr=p.lr)
    for _ in range(p.epochs):
        perm = torch.randperm(n)
        for lo in range(0, n - p.batch_size + 1, p.batch_size):   # drop_last, as ours
            xb = x[perm[lo:lo + p.batch_size]]
            mu, logvar = vae.enc(xb.view(-1, 1, side, side)).chunk(2, dim=-1)
            z = mu + torch.exp(0.5 * logvar) * torch.randn_like(mu)
            rec = nn.functional.binary_cross_entropy_with_logits(vae.decode(z), xb, reduction="none").sum(-1)
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
        for lo in range(0, n - p.batch_size + 1, p.batch_size):   # drop_last, as ours
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
    """The family's path: ``train_groups`` (one replicate group per torch thread)."""
    import torch
    from modelcollapse.families.images.base import train_groups
    gens = [torch.Generator().manual_seed(1000 + i) for i in range(r)]
    noise = [torch.Generator().manual_seed(2000 + i) for i in range(r)]
    rngs = [np.random.default_rng(i) for i in range(r)]
    xs = x[None].expand(r, *x.shape).contiguous()
    train_groups(train_fn, xs, p, gens, rngs, noise)


def timed(fn) -> tuple[float, float]:
    """(wall, process CPU) seconds of fn()."""
    w, c = time.perf_counter(), time.process_time()
    fn()
    return time.perf_counter() - w, time.process_time() - c


def main() -> None:
    import torch
    from modelcollapse.data.images import load_images
    from modelcollapse.families.images.diffusion import DiffusionParams, train_ddpm
    from modelcollapse.families.images.vae import VAEParams, train_vae
    ap = argparse.ArgumentParser()
    ap.add_argument("--replicates", type=int, default=8)
    ap.add_argument("--epochs", type=int, default=5)
    ap.add_argument("--threads", default="1,2")
    ap.add_argument("--cases", default="vae,vae-conv,diffusion")
    args = ap.parse_args()
    r = args.replicates
    x = torch.from_numpy(load_images().train.copy())
    cases = {"vae": (VAEParams(epochs=args.epochs), train_vae, peer_vae),
             "vae-conv": (VAEParams(epochs=args.epochs, arch="conv"), train_vae, peer_conv_vae),
             "diffusion": (DiffusionParams(epochs=args.epochs), train_ddpm, peer_ddpm)}
    chosen = args.cases.split(",")
    cases = {k: v for k, v in cases.items() if k in chosen}
    results = {"load_before": os.getloadavg()}
    for threads in [int(t) for t in args.threads.split(",")]:
        torch.set_num_threads(threads)
        for name, (p, fn, peer) in cases.items():
            t_ours, t_peer = [], []
            for _ in range(REPEATS):
                t_ours.append(timed(lambda: ours(fn, x, p, r)))
                t_peer.append(timed(lambda: [peer(x, p, i) for i in range(r)]))
            steps = p.epochs * (len(x) // p.batch_size)
            wall_o, wall_p = min(t[0] for t in t_ours), min(t[0] for t in t_peer)
            cpu_o, cpu_p = min(t[1] for t in t_ours), min(t[1] for t in t_peer)
            row = {"threads": threads, "replicates": r, "epochs": p.epochs, "steps_per_model": steps,
                   "ours_s": wall_o, "loop_s": wall_p, "ratio": wall_p / wall_o,
                   "ours_cpu_s": cpu_o, "loop_cpu_s": cpu_p, "cpu_ratio": cpu_p / cpu_o,
                   "ours_all": t_ours, "loop_all": t_peer, "load": os.getloadavg()}
            results[f"{name}-threads{threads}"] = row
            print(f"{name:9s} threads={threads} R={r}: batched {wall_o:.2f} s, loop {wall_p:.2f} s, "
                  f"{row['ratio']:.2f}x (CPU time {cpu_o:.2f} vs {cpu_p:.2f} s, {row['cpu_ratio']:.2f}x; "
                  f"load {row['load'][0]:.1f})", flush=True)
    name = "images" if len(cases) == 3 else "images-" + "-".join(cases)
    save(name, {"code": code_version(), "machine": machine("numpy", "torch"), "results": results})


if __name__ == "__main__":
    main()
