"""Audit of a ~1 GB JSON Lines corpus: wall time and peak memory of ``modelcollapse audit``.

The candidate: ``--size-mb`` MB (default 1024) of JSON Lines written into a temporary
folder, each line a document from a pool of 20,000 documents (half real paragraphs of the
embedded corpus, half sampled from its trigram model), prefixed with a line number so that no
two lines are identical. Writing is fast (pre-encoded lines, joined in blocks); it is not
timed. The reference: the embedded corpus.

The audit runs in a subprocess (``modelcollapse audit FILE --reference embedded --format
json``, default settings: 20,000-token samples, 200 bootstrap replicates, 50 lexical
replicates, a 20,000-document reservoir, 10,000-document chunks); its peak resident memory
is ``ru_maxrss`` as the child reports it for itself (and, as a cross-check,
``resource.getrusage(RUSAGE_CHILDREN).ru_maxrss`` here, a running maximum over the runs).
With ``--sizes`` several sizes run in one go (e.g. ``--sizes 64,1024``): a flat peak RSS
across sizes is the bounded-memory claim.

Usage: .venv/bin/python benchmarks/bench_audit.py [--sizes 1024] [--quick]
(``--quick``: 32 MB, for a check in ~half a minute). Writes benchmarks/results/audit.json.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from provenance import code_version, machine, save  # noqa: E402

POOL_DOCS = 20_000
BLOCK_LINES = 20_000


def document_pool(seed: int = 0) -> list[bytes]:
    """Half real paragraphs, half trigram samples of the embedded corpus, as JSON strings."""
    from modelcollapse.audit.reference import prepare_reference
    ref = prepare_reference("embedded", seed=seed)
    rng = np.random.default_rng(seed)
    real = [ref.texts[i] for i in rng.integers(0, len(ref.texts), POOL_DOCS // 2)]
    fake = [ref.detokenize(d) for d in ref.generate(POOL_DOCS - len(real), rng)]
    return [json.dumps(t).encode() for t in real + fake]


def write_corpus(path: Path, size_bytes: int, pool: list[bytes], seed: int = 1) -> int:
    """Write about ``size_bytes`` of JSON Lines; returns the number of lines."""
    rng = np.random.default_rng(seed)
    n = 0
    with open(path, "wb") as fh:
        written = 0
        while written < size_bytes:
            pick = rng.integers(0, len(pool), BLOCK_LINES)
            # '{"text": "<n> <document>"}': the number makes every line distinct
            block = b"".join(b'{"text": "%d %s}\n' % (n + i, pool[j][1:])
                             for i, j in enumerate(pick.tolist()))
            fh.write(block)
            written += len(block)
            n += BLOCK_LINES
    return n


# The child reports its own peak too: RUSAGE_CHILDREN is a running maximum over every
# child this process waited for, so with several sizes it bounds each run from above only.
CHILD = """import json, resource, sys
from modelcollapse.audit.cli import main
code = main(sys.argv[1:])
print(json.dumps({"maxrss_kib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}))
sys.exit(code)
"""


def run_audit(corpus: Path, out: Path) -> dict:
    """Audit in a subprocess; its wall time and peak RSS."""
    cmd = [sys.executable, "-c", CHILD, "audit", str(corpus), "--reference", "embedded",
           "--out", str(out), "--format", "json", "--quiet"]
    t = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - t
    if proc.returncode != 0:
        raise SystemExit(f"the audit failed ({proc.returncode}): {proc.stderr[-2000:]}")
    children_kib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss   # KiB on Linux
    own_kib = json.loads(proc.stdout.strip().splitlines()[-1])["maxrss_kib"]
    doc = json.loads((out / "audit.json").read_text())
    return {"wall_s": wall, "peak_rss_mib": own_kib / 1024,
            "rusage_children_maxrss_mib": children_kib / 1024,
            "n_docs": doc["candidates"][0]["n_docs"], "n_tokens": doc["candidates"][0]["n_tokens"],
            "verdict": doc["verdict"],
            "signals": {k: {"estimate": v["estimate"], "verdict": v["verdict"]}
                        for k, v in {**doc["signals"], "ai_share": doc["ai_share"]}.items()}}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="1024", help="comma-separated sizes in MB (default 1024)")
    ap.add_argument("--quick", action="store_true", help="one 32 MB file")
    args = ap.parse_args()
    sizes = [32] if args.quick else [int(s) for s in args.sizes.split(",")]
    load_start = os.getloadavg()
    pool = document_pool()
    runs = []
    with tempfile.TemporaryDirectory(prefix="bench-audit-") as tmp:
        for mb in sorted(sizes):
            corpus = Path(tmp) / f"candidate-{mb}mb.jsonl"
            t = time.perf_counter()
            lines = write_corpus(corpus, mb * 2**20, pool)
            t_write = time.perf_counter() - t
            size = corpus.stat().st_size
            print(f"wrote {size / 2**20:,.0f} MiB ({lines:,} lines) in {t_write:.1f} s")
            res = run_audit(corpus, Path(tmp) / f"out-{mb}")
            res.update(size_bytes=size, lines=lines, write_s=t_write,
                       mib_per_s=size / 2**20 / res["wall_s"])
            print(f"audit: {res['wall_s']:.1f} s ({res['mib_per_s']:.1f} MiB/s), peak RSS "
                  f"{res['peak_rss_mib']:,.0f} MiB, {res['n_tokens']:,} tokens, verdict "
                  f"{res['verdict']}")
            runs.append(res)
            corpus.unlink()
    result = {"benchmark": "audit", "code": code_version(), "machine": machine("numpy"),
              "load_average_1_5_15_min": {"start": load_start, "end": os.getloadavg()},
              "setting": {"reference": "embedded", "pool_docs": POOL_DOCS,
                          "command": "modelcollapse audit FILE --reference embedded "
                                     "--format json (default settings)",
                          "peak_rss": "ru_maxrss of the audit process itself (KiB / 1024)"},
              "runs": runs}
    save("audit", result)


if __name__ == "__main__":
    main()
