"""Write an audit: ``DIR/audit.json`` (the documented schema) and / or ``DIR/audit.html``.

Files are written atomically (:func:`modelcollapse.runs.store.write_bytes`: a temporary file,
fsync, rename), so a crash never leaves half a file; an existing audit is never replaced
unless ``overwrite`` is asked for.
"""

from __future__ import annotations

import json
from pathlib import Path

from ..errors import UserError
from ..runs.store import write_bytes
from .result import AuditResult

FORMATS = ("json", "html", "both")


def write_audit(result: AuditResult, out_dir: str | Path, format: str = "json",
                overwrite: bool = False) -> list[Path]:
    """Write the audit into ``out_dir`` (created if needed) as ``format`` ("json", "html"
    or "both"); returns the paths written. UserError when a file exists and ``overwrite``
    is False."""
    if format not in FORMATS:
        from ..errors import unknown
        raise unknown("format", str(format), FORMATS)
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise UserError(f"--out '{out}' is a file; give a folder for the audit")
    names = {"json": ["audit.json"], "html": ["audit.html"],
             "both": ["audit.json", "audit.html"]}[format]
    paths = [out / name for name in names]
    if not overwrite:
        for path in paths:
            if path.exists():
                raise UserError(f"{path} already holds an audit; choose another folder or "
                                f"pass --overwrite to replace it")
    for path in paths:
        if path.suffix == ".json":
            text = json.dumps(result.to_json(), indent=2, allow_nan=False)
        else:
            from .page import render
            text = render(result)
        write_bytes(path, text.encode("utf-8"))
    return paths


SCORE_FORMATS = (".parquet", ".jsonl")


def check_scores_path(path: str | Path) -> Path:
    """``path`` when it names a .parquet or .jsonl file in an existing folder (checked
    before the audit runs, so a bad name costs nothing)."""
    path = Path(path)
    if path.suffix not in SCORE_FORMATS:
        raise UserError(f"--scores '{path}' must end in .parquet or .jsonl")
    if path.is_dir():
        raise UserError(f"--scores '{path}' is a folder; give a file name")
    if not path.parent.exists() and str(path.parent) not in ("", "."):
        path.parent.mkdir(parents=True, exist_ok=True)
    return path


def score_rows(result: AuditResult) -> dict[str, list]:
    """One row per candidate document (all candidates, in order): the candidate's name, the
    document's 0-based index in it, every detector score and flag, the occurrence
    log-likelihood ratio (NaN for copies of reference-model documents) and its word count."""
    import numpy as np
    cols: dict[str, list] = {}
    for cand in result.candidates:
        got = cand.doc_scores or {}
        n = len(next(iter(got.values()))) if got else 0
        cols.setdefault("candidate", []).extend([cand.name] * n)
        for k, v in got.items():
            cols.setdefault(k, []).extend(np.asarray(v).tolist())
    return cols


def write_scores(result: AuditResult, path: str | Path) -> Path:
    """Write :func:`score_rows` to ``path`` (.parquet with pyarrow, or .jsonl), atomically."""
    import io
    import math
    path = check_scores_path(path)
    cols = score_rows(result)
    if path.suffix == ".jsonl":
        names = list(cols)
        n = len(cols.get("candidate", []))
        lines = []
        for i in range(n):
            row = {}
            for k in names:
                v = cols[k][i]
                row[k] = None if isinstance(v, float) and not math.isfinite(v) else v
            lines.append(json.dumps(row))
        write_bytes(path, ("\n".join(lines) + ("\n" if lines else "")).encode("utf-8"))
        return path
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError:
        raise UserError("--scores FILE.parquet needs pyarrow (pip install pyarrow); or give a "
                        ".jsonl file") from None
    buf = io.BytesIO()
    pq.write_table(pa.table(cols), buf)
    write_bytes(path, buf.getvalue())
    return path
