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
            from .html import render
            text = render(result)
        write_bytes(path, text.encode("utf-8"))
    return paths
