"""The text-samples section of the HTML report: generated documents per generation.

A text cell keeps its generated documents under ``cells/<key>/samples/``, one entry per
generation: a folder of files (the loop writes ``replicates-<lo>-<hi>.jsonl.gz``), a
``.jsonl`` or ``.jsonl.gz`` file (strings, or objects with a ``"text"`` field) or a single
file. The report shows up to ``SAMPLES_PER_GENERATION`` documents per
generation, cut at ``SAMPLE_CHARS`` characters, always HTML-escaped.
"""

from __future__ import annotations

import gzip
import json
import re
from html import escape
from pathlib import Path
from typing import Any

from ..runs.store import RunStore
from ..runs.study import Study

SAMPLES_PER_GENERATION = 3
SAMPLE_CHARS = 1200


def _natural(name: str) -> list[Any]:
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", name)]


def _read_text(path: Path, limit: int = SAMPLE_CHARS * 4) -> str:
    with open(path, "rb") as fh:
        return fh.read(limit).decode("utf-8", errors="replace")


def _jsonl_documents(path: Path, k: int) -> list[str]:
    """Up to k documents of a .jsonl or .jsonl.gz file (strings, or objects with "text")."""
    docs: list[str] = []
    opener = gzip.open if path.name.endswith(".gz") else open
    with opener(path, "rb") as fh:
        for raw in fh:
            if len(docs) == k:
                break
            line = raw.decode("utf-8", errors="replace").strip()
            if not line:
                continue
            try:
                obj = json.loads(line)
            except ValueError:
                docs.append(line)
                continue
            if isinstance(obj, dict):
                obj = obj.get("text", json.dumps(obj, ensure_ascii=False))
            docs.append(obj if isinstance(obj, str) else json.dumps(obj, ensure_ascii=False))
    return docs


def _is_jsonl(path: Path) -> bool:
    return path.name.endswith((".jsonl", ".jsonl.gz"))


def _documents(entry: Path) -> list[str]:
    """Up to SAMPLES_PER_GENERATION documents of one generation's entry."""
    k = SAMPLES_PER_GENERATION
    if entry.is_dir():
        files = sorted((f for f in entry.iterdir() if f.is_file() and not f.name.startswith(".")),
                       key=lambda f: _natural(f.name))
        docs: list[str] = []
        for f in files:
            if len(docs) == k:
                break
            docs += _jsonl_documents(f, k - len(docs)) if _is_jsonl(f) else [_read_text(f)]
        return docs
    if _is_jsonl(entry):
        return _jsonl_documents(entry, k)
    return [_read_text(entry)]


def samples_section(store: RunStore, study: Study) -> str:
    parts = []
    for cell in study.cells:
        folder = store.cell_dir(cell) / "samples"
        if not folder.is_dir():
            continue
        entries = sorted((e for e in folder.iterdir() if not e.name.startswith(".")),
                         key=lambda e: _natural(e.name))
        rows = []
        for entry in entries:
            try:
                docs = _documents(entry)
            except OSError as e:
                docs = [f"(unreadable: {e})"]
            cut = [d if len(d) <= SAMPLE_CHARS else d[:SAMPLE_CHARS] + " …" for d in docs]
            tds = "".join(f"<td><pre>{escape(d)}</pre></td>" for d in cut)
            tds += "<td></td>" * (SAMPLES_PER_GENERATION - len(cut))
            rows.append(f"<tr><th>{escape(entry.stem)}</th>{tds}</tr>")
        if rows:
            head = "".join(f"<th>document {i + 1}</th>" for i in range(SAMPLES_PER_GENERATION))
            parts.append(
                f"<details><summary>{escape(study.label(cell))} "
                f"<span class=key>{escape(cell.key)}</span></summary>"
                f"<table class=samples><thead><tr><th>generation</th>{head}</tr></thead>"
                f"<tbody>{''.join(rows)}</tbody></table></details>")
    if not parts:
        return ""
    return ("<section id=samples><h2>Text samples</h2><p>Up to "
            f"{SAMPLES_PER_GENERATION} generated documents per generation (cut at "
            f"{SAMPLE_CHARS} characters).</p>" + "".join(parts) + "</section>")
