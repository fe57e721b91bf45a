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
import zlib
from html import escape
from pathlib import Path
from typing import Any

from ..errors import UserError
from ..runs.store import RunStore
from ..safepaths import open_regular
from ..runs.study import Study

SAMPLES_PER_GENERATION = 3
SAMPLE_CHARS = 1200
MAX_LINE = 1 << 20   # bytes of one sample line read (a document is shown cut anyway)


def _natural(name: str) -> list[Any]:
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", name)]


def _read_text(path: Path, limit: int = SAMPLE_CHARS * 4) -> str:
    with open_regular(path, "sample file") as fh:
        return fh.read(limit).decode("utf-8", errors="replace")


def _jsonl_documents(path: Path, k: int) -> list[str]:
    """Up to k documents of a .jsonl or .jsonl.gz file (strings, or objects with "text").
    A line is read up to MAX_LINE bytes (the rest of a longer one is skipped); a damaged
    file is one sentence naming it."""
    docs: list[str] = []
    try:
        with open_regular(path, "sample file") as raw:
            fh = gzip.GzipFile(fileobj=raw, mode="rb") if path.name.endswith(".gz") else raw
            with fh:
                while len(docs) < k:
                    chunk = fh.readline(MAX_LINE)
                    if not chunk:
                        break
                    if not chunk.endswith(b"\n"):   # skip the rest of an overlong line
                        while (more := fh.readline(MAX_LINE)) and not more.endswith(b"\n"):
                            pass
                    docs += _document(chunk)
    except (EOFError, OSError, zlib.error) as e:
        raise UserError(f"sample file {path} is damaged or truncated ({type(e).__name__}); "
                        f"delete it to write the report without it") from None
    return docs


def _document(raw: bytes) -> list[str]:
    line = raw.decode("utf-8", errors="replace").strip()
    if not line:
        return []
    try:
        obj = json.loads(line)
    except (ValueError, RecursionError):
        return [line]
    if isinstance(obj, dict):
        obj = obj.get("text", obj)
    if isinstance(obj, str):
        return [obj.encode("utf-8", "replace").decode("utf-8")]   # lone surrogates shown as '?'
    try:
        return [json.dumps(obj, ensure_ascii=False)[:SAMPLE_CHARS * 4]]
    except (ValueError, RecursionError):
        return [line]


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
            docs = _documents(entry)
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
