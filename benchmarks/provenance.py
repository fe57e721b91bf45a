"""What a benchmark result was measured on: the commit and the machine (shared by scripts)."""

from __future__ import annotations

import importlib
import os
import platform
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def code_version() -> dict:
    """The commit the package was measured at, and any uncommitted changes under src/."""
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True,
                                text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--", "src"], cwd=ROOT,
                               capture_output=True, text=True, check=True).stdout.split("\n")
        return {"commit": commit, "src_dirty": [line.strip() for line in dirty if line.strip()]}
    except (OSError, subprocess.CalledProcessError):
        return {"commit": "unknown", "src_dirty": []}


def machine(*libraries: str) -> dict:
    """CPU count and model, Python, and the versions of the named libraries."""
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    info = {"nproc": os.cpu_count(), "cpu_model": cpu, "python": platform.python_version()}
    for name in libraries:
        info[name] = importlib.import_module(name).__version__
    return info


def save(name: str, result: dict) -> Path:
    """Write ``result`` as benchmarks/results/<name>.json and say where."""
    import json
    out = ROOT / "benchmarks" / "results" / f"{name}.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(result, indent=2))
    print(f"\nwrote {out}")
    return out
